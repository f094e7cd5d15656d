"""The paper's Bi vs Mono experiment in miniature, on the embedded CLDR corpus, on a laptop CPU.

    python demo.py              # every stage; finished stages are reused
    python demo.py --fresh      # start over (deletes data/demo and out/demo_*)

Stages (each one is a plain command of this repository, printed before it runs):
  corpus    cldr_corpus.py                    CLDR strings -> MaLA folders + FLORES-style held-out files
  tokenizer (in demo.py)                      a BPE trained on the pseudo-documents the model will see
  prepare   prepare_mala.py                   MaLA folders -> tokens
  mix       mix.py x3                         base (six big languages), Mix 1 (Bi), Mix 2 (Mono)
  base      train.py config/demo_base.py      a tiny Llama pre-trained from scratch
  bi, mono  train.py config/demo_{bi,mono}.py continual pre-training from the base on each mix
  eval      evaluate.py --task flores         chrF++ / BLEU, eng->X and X->eng, held-out keys, on a fixed
                                              subset of 60 languages x 25 lines (EVAL_OPTIONS below)
  report    comparison table (markdown) and figures (loss curves, chrF++ per tier)
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from common import write_atomic
from evaluate import load_tiers
from mix import TIERS
from prepare_mala import Options, discover, iter_documents
from tokenizer import train_bpe

ROOT = Path(__file__).resolve().parent

# The experiment's settings; measured on 2 CPU cores (dim-128 model, 500 steps per run, 24-language subset):
# - --directions random: MaLA publishes both directions of a pair; with English always first (fwd) the
#   X->eng prompts of the evaluation are an order the Bi model never saw. --directions both doubles every
#   pair's word count, which moves every FLORES language into the "high" tier (no lower tier left to
#   compare); Bi - Mono chrF++ was the same within noise (+1.4 / +2.0 X->eng / eng->X vs +1.5 / +1.7).
# - --vocab-size 2048: the output layer is then a sixth of the dim-128 model's FLOPs instead of a third
#   (4096 ranks), and CLDR names (mostly short, rare words) are spelled in smaller pieces.
PREPARE_OPTIONS = ["--directions", "random", "--workers", "2"]
VOCAB_SIZE = 2048
# Evaluation: 219 languages x 2 directions x 50 lines is ~20 minutes per model on 2 cores; a fixed subset
# (EVAL_LANGS_PER_TIER evenly spaced FLORES languages of each tier, 60 in all) x 25 devtest lines x 2
# directions takes ~20 s per model. Names are short: 24 new tokens are plenty (generation stops at the
# newline anyway).
EVAL_OPTIONS = ["--limit", "25", "--batch-size", "64", "--max-new-tokens", "24"]
EVAL_LANGS_PER_TIER = 30

STAGE_TIMES: dict[str, float] = {}  # stage -> seconds it ran (reused stages: absent)

QUICK_LOCALES = ["en", "fr", "es", "ru", "zh", "ar", "de", "sw", "yo", "ig"]


def run_stage(name, cmd, done: Path, env=None):
    """Run one stage unless its final artefact exists (re-running the demo reuses finished work)."""
    if done.exists():
        print(f"[{name}] reusing {done}")
        return
    print(f"[{name}] $ {' '.join(map(str, cmd))}", flush=True)
    t0 = time.time()
    result = subprocess.run([str(c) for c in cmd], cwd=ROOT, env=env)
    if result.returncode != 0:
        sys.exit(f"[{name}] failed with exit code {result.returncode}; fix the error above and re-run "
                 f"(finished stages are kept)")
    if not done.exists():
        sys.exit(f"[{name}] finished but {done} is missing")
    STAGE_TIMES[name] = time.time() - t0
    print(f"[{name}] done in {STAGE_TIMES[name]:.0f}s", flush=True)


def eval_languages(data: Path, per_tier: int) -> list[str]:
    """A fixed, spread-out subset of the FLORES languages: per_tier evenly spaced codes (sorted) of each
    tier of Mix 1 (all of a smaller tier), so the lowest evaluated tier counts as much as the highest."""
    tiers = load_tiers(index=str(data / "mix_bi.json"))  # the tier of a language as evaluate.py reports it
    by_tier = {}
    for path in sorted((data / "flores" / "devtest").glob("*.devtest")):
        lang = path.name.split(".")[0]
        if lang != "eng_Latn" and lang in tiers:
            by_tier.setdefault(tiers[lang], []).append(lang)
    return sorted({langs[i * len(langs) // per_tier] for langs in by_tier.values()
                   for i in range(min(per_tier, len(langs)))})


def train_tokenizer(data: Path, vocab_size: int, path: Path) -> None:
    """A BPE trained on the demo's documents exactly as the model will see them (language tags included)."""
    opts, quiet = Options(out=str(data), tokenizer="", directions="random"), lambda *_, **__: None
    jobs = discover([str(data / "raw" / "bi"), str(data / "raw" / "mono")])
    docs = (doc for job in jobs for _, doc, _, _ in iter_documents(job, opts, quiet, quiet))
    train_bpe(docs, vocab_size, path)


def read_log(path: Path):
    """train.py's log.jsonl -> (train rows, eval rows)."""
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [r for r in rows if "loss" in r], [r for r in rows if "val" in r]


def flores_means(results_path: Path) -> dict:
    """evaluate.py's flores results -> {(direction, metric, tier or "all"): mean over languages}."""
    section = json.loads(results_path.read_text())["tasks"]["flores"]
    groups = {}
    for score in section["scores"].values():
        for metric in section["metrics"]:
            for group in ("all", section["tiers"].get(score["lang"], "-")):
                groups.setdefault((score["direction"], metric, group), []).append(score[metric])
    return {key: sum(v) / len(v) for key, v in groups.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fresh", action="store_true", help="delete previous demo data and runs first")
    parser.add_argument("--data", default="data/demo")
    parser.add_argument("--out", default="out")
    parser.add_argument("--quick", action="store_true",
                        help="a seconds-long smoke run (tiny model, few steps): checks the plumbing only")
    args = parser.parse_args()
    data, out = ROOT / args.data, ROOT / args.out
    if args.fresh:
        shutil.rmtree(data, ignore_errors=True)
        for run in ("demo_base", "demo_bi", "demo_mono"):
            shutil.rmtree(out / run, ignore_errors=True)
    py = sys.executable
    t_start = time.time()
    overrides = [] if not args.quick else ["--model='tiny'", "--max_steps=4", "--eval_interval=2",
                                           "--eval_sequences=4", "--ckpt_interval=4", "--warmup_steps=1"]
    # --quick: the base mix's six languages and a few others, and a tokenizer to match that small corpus
    quick_corpus = ["--locales", *QUICK_LOCALES] if args.quick else []
    vocab_size = 512 if args.quick else VOCAB_SIZE
    run_stage("corpus", [py, "cldr_corpus.py", data, *quick_corpus], data / "flores" / "languages.json")
    tokenizer = data / "tokenizer.model"
    if not tokenizer.exists():
        print(f"[tokenizer] training a {vocab_size}-rank BPE on the demo's pseudo-documents -> {tokenizer}")
        train_tokenizer(data, vocab_size, tokenizer)
    run_stage("prepare", [py, "prepare_mala.py", "--input", data / "raw" / "bi", data / "raw" / "mono",
                          "--out", data, "--tokenizer", tokenizer, *PREPARE_OPTIONS], data / "index.json")
    for mix in ("base", "bi", "mono"):
        run_stage(f"mix {mix}", [py, "mix.py", data, "--config", f"config/mix_demo_{mix}.py",
                                 "--out", data / f"mix_{mix}.json", "--plot", data / f"mix_{mix}.png"],
                  data / f"mix_{mix}.json")
    runs = {}
    for run in ("base", "bi", "mono"):
        run_dir = out / f"demo_{run}"
        init = [] if run == "base" else [f"--init='{out / 'demo_base' / 'hf'}'"]
        run_stage(run, [py, "train.py", f"config/demo_{run}.py", f"--out_dir='{run_dir}'",
                        f"--mix='{data / f'mix_{run}.json'}'", *init, *overrides],
                  run_dir / "hf" / "model.safetensors")
        runs[run] = run_dir
    langs = eval_languages(data, 2 if args.quick else EVAL_LANGS_PER_TIER)
    eval_options = EVAL_OPTIONS if not args.quick else ["--limit", "2", "--batch-size", "8",
                                                        "--max-new-tokens", "8"]
    for run in ("base", "bi", "mono"):
        run_stage(f"eval {run}", [py, "evaluate.py", "--ckpt", runs[run] / "hf", "--task", "flores",
                                  "--data", data / "flores", "--lang-names", "code",
                                  "--index", data / "mix_bi.json", *eval_options, "--langs", *langs,
                                  "--out", runs[run] / "flores.json"],
                  runs[run] / "flores.json")
    total = time.time() - t_start
    report(runs, out / "demo_report.md", {**STAGE_TIMES, "total": total})
    print(f"demo finished in {total:.0f}s")


def report(runs: dict, path: Path, stage_times: dict):
    """The comparison the paper makes (Bi vs Mono, per direction and tier) plus the forgetting check."""
    tier_order = {t: i for i, t in enumerate(TIERS)}
    scores = {run: flores_means(d / "flores.json") for run, d in runs.items()}
    keys = sorted(scores["bi"], key=lambda k: (k[1] != "chrf++", k[0], k[2] != "all",
                                               tier_order.get(k[2], 99)))
    n_langs = tier_sizes(runs["bi"] / "flores.json")
    lines = ["## FLORES-style translation of held-out CLDR strings (mean over languages)", "",
             "| metric | direction | languages | base | Mono | Bi | Bi - Mono |",
             "|---|---|---|---:|---:|---:|---:|"]
    for key in keys:
        base, mono, bi = (scores[r].get(key, float("nan")) for r in ("base", "mono", "bi"))
        lines.append(f"| {key[1]} | {key[0]} | {key[2]} ({n_langs.get(key[2], '?')}) | {base:.2f} "
                     f"| {mono:.2f} | {bi:.2f} | {bi - mono:+.2f} |")
    logs = {run: read_log(d / "log.jsonl") for run, d in runs.items()}
    first_eval = logs["bi"][1][0]["val"]  # step 0 of a CPT run = the base model
    groups = sorted(first_eval, key=lambda g: tier_order.get(g, 99))
    lines += ["", "## Validation loss (nats/token) per tier and for English: forgetting", "",
              "| group | base | Mono | Bi |", "|---|---:|---:|---:|"]
    for group in groups:
        mono, bi = logs["mono"][1][-1]["val"].get(group), logs["bi"][1][-1]["val"].get(group)
        lines.append(f"| {group} | {first_eval[group]:.3f} | {mono:.3f} | {bi:.3f} |")
    lines += ["", "## Stage times (this invocation; reused stages are not listed)", "",
              "| stage | seconds |", "|---|---:|"] + [f"| {k} | {v:.0f} |" for k, v in stage_times.items()]
    text = "\n".join(lines) + "\n"
    write_atomic(path, text)
    print(text)
    plot(logs, scores, path.with_suffix(".png"))


def tier_sizes(results_path: Path) -> dict:
    tiers = json.loads(results_path.read_text())["tasks"]["flores"]["tiers"]
    sizes = {"all": len(tiers)}
    for tier in tiers.values():
        sizes[tier] = sizes.get(tier, 0) + 1
    return sizes


def plot(logs, scores, path: Path):
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib not installed: no figures (the table above has the numbers)")
        return
    fig, (ax_loss, ax_chrf) = plt.subplots(1, 2, figsize=(12, 4.5))
    for run in ("bi", "mono"):
        train_rows, _ = logs[run]
        ax_loss.plot([r["step"] for r in train_rows], [r["loss"] for r in train_rows], label=run)
    ax_loss.set(xlabel="step", ylabel="train loss", title="CPT loss, Bi vs Mono")
    ax_loss.legend()
    tiers = [t for t in TIERS if ("eng_Latn->X", "chrf++", t) in scores["bi"]]
    directions = sorted({k[0] for k in scores["bi"]})
    width = 0.8 / (2 * len(directions))
    for j, direction in enumerate(directions):
        for r, run in enumerate(("mono", "bi")):
            xs = [t + (2 * j + r) * width for t in range(len(tiers))]
            ax_chrf.bar(xs, [scores[run].get((direction, "chrf++", t), 0) for t in tiers], width,
                        label=f"{run} {direction}")
    ax_chrf.set_xticks([t + 0.4 - width / 2 for t in range(len(tiers))], tiers, rotation=20)
    ax_chrf.set(ylabel="chrF++", title="chrF++ per resource tier")
    ax_chrf.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    print(f"figures: {path}")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
