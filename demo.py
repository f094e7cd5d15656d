"""The paper's Bi vs Mono experiment in miniature, on the embedded CLDR corpus, on a laptop CPU.

    python demo.py                 # every stage, 2 CPT seeds per mix (make demo); finished stages are reused
    python demo.py --seeds 3       # three seeds per mix
    python demo.py --fresh         # start over (deletes data/demo and out/demo_*)
    python demo.py --quick         # seconds, tiny model: checks the plumbing, not the result

Stages, each a plain command of this repository (printed before it runs):
  corpus     cldr_corpus.py                  a compositional parallel corpus of ~290 languages from CLDR
  tokenizer  (demo.py)                       a 2048-rank BPE trained on the pseudo-documents
  prepare    prepare_mala.py                 pseudo-documents of 10 pairs -> tokens
  mix        mix.py x3                       the base's data (the high tier), Mix 1 (Bi), Mix 2 (Mono)
  base       train.py config/demo_base.py    the base model from scratch, on its six languages
  cpt        train.py config/demo_{bi,mono}.py --seed=S   continued pre-training, two runs at a time
  eval       evaluate.py --task flores --log-samples      the base and every CPT run, both directions,
                                             a fixed subset of languages per tier, one zero-shot pair
  report     out/demo_report.md (+ .json, .png): every number recomputable from the samples
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import sacrebleu

from cldr_corpus import BASE_LANGUAGES
from common import HelpFormatter, write_atomic
from evaluate import load_tiers
from mix import TIERS, load_config, tier_of
from prepare_mala import Options, iter_documents
from sources import discover
from tokenizer import train_bpe

ROOT = Path(__file__).resolve().parent
# --val-docs 1: the second document of each source is its validation data (the corpus puts the held-out
# items' covers last, so they stay in training); --directions random: X->eng as often as eng->X
PREPARE_OPTIONS = ["--directions", "random", "--val-docs", "1", "--val-share", "0", "--workers", "2"]
VOCAB_SIZE = 2048
# The languages trained on (choose_languages): the base languages, and per lower tier PER_TIER of those with
# FLORES-style files (all evaluated) and VERY_LOW of the smallest. All ~290 of the corpus (--all-languages)
# leave a ~1M-parameter model too few tokens per language in 15 minutes to learn any (see the README).
PER_TIER, VERY_LOW = 6, 4
EVAL_OPTIONS = ["--lang-names", "code", "--batch-size", "64", "--max-new-tokens", "40", "--log-samples"]
QUICK_LOCALES = ["en", "fr", "es", "de", "ru", "zh", "ar", "pt", "ja", "hi", "sw", "yo", "ha", "ig", "so"]
TIMES: dict[str, float] = {}  # stage -> seconds, this invocation


def stage(name: str, commands: list[list], done: list[Path], threads: int = 2, log_dir: Path | None = None):
    """Run one stage's commands (several at a time with one thread each, their output to log files) unless
    every `done` file exists: a rerun of the demo reuses finished work."""
    if all(p.exists() for p in done):
        return print(f"[{name}] reusing {', '.join(os.path.relpath(p, ROOT) for p in done)}")
    t0, env = time.time(), {**os.environ, "OMP_NUM_THREADS": str(threads)}
    for cmd in commands:
        print(f"[{name}] $ {' '.join(map(str, cmd))}", flush=True)
    logs = [log_dir / f"{name}_{i}.log" for i in range(len(commands))] if log_dir else [None] * len(commands)
    procs = [subprocess.Popen(list(map(str, cmd)), cwd=ROOT, env=env, stdout=open(log, "w") if log else None,
                              stderr=subprocess.STDOUT if log else None) for cmd, log in zip(commands, logs)]
    shown = time.time()
    while any(p.poll() is None for p in procs):  # progress of parallel runs: each one's last step line
        time.sleep(0.5)
        if log_dir and time.time() - shown > 15 and any(p.poll() is None for p in procs):
            shown = time.time()
            last = [next((ln for ln in reversed(log.read_text().splitlines()) if ln.startswith("step ")), "")
                    for log in logs]
            print(f"[{name}] " + " || ".join(line[:60] for line in last), flush=True)
    for cmd, proc, log in zip(commands, procs, logs):
        if proc.returncode != 0:
            tail = log.read_text()[-2000:] if log else ""
            sys.exit(f"{tail}\n[{name}] {cmd[1]} failed with exit code {proc.returncode}; fix the error "
                     "above and re-run (finished stages are kept)")
    if missing := [p for p in done if not p.exists()]:
        sys.exit(f"[{name}] finished but {missing[0]} is missing")
    TIMES[name] = time.time() - t0
    print(f"[{name}] done in {TIMES[name]:.0f}s", flush=True)


def choose_languages(data: Path, per_tier: int, very_low: int, every: bool) -> dict[str, list[str]]:
    """{tier: codes} the demo trains on: the base languages (the high tier), per lower tier `per_tier`
    languages with FLORES-style files evenly spaced by bitext volume, and `very_low` of the smallest (too
    small for a FLORES file: trained on, not evaluated). Tiers by mix.py's rule and the demo's thresholds
    on the corpus's word counts (prepare_mala.py counts the same words). every: all ~290 languages."""
    info = json.loads((data / "flores" / "languages.json").read_text())
    thresholds = load_config(ROOT / "config" / "mix_demo_base.py")["tier_thresholds"]
    chosen: dict[str, list[str]] = {}
    for tier in TIERS:
        langs = sorted((c for c, v in info.items() if v["n_bi"] and c not in BASE_LANGUAGES
                        and tier_of(v["n_words"], thresholds) == tier),
                       key=lambda c: (info[c]["n_words"], c))
        flores = [c for c in langs if info[c]["in_flores"]]
        pool, k = (flores, per_tier) if flores else (langs, very_low)
        spread = lambda xs, k: [xs[round(i * (len(xs) - 1) / max(k - 1, 1))] for i in range(min(k, len(xs)))]
        chosen[tier] = langs if every else sorted(set(spread(pool, k)))
    base = {c for c in BASE_LANGUAGES if c in info and c != "eng_Latn"}  # English is every pair's other side
    chosen["high"] = sorted(set(chosen["high"]) | base)
    return {tier: langs for tier, langs in chosen.items() if langs}


def train_tokenizer(inputs: list[Path], vocab_size: int, path: Path) -> None:
    """A BPE trained on the demo's documents exactly as the model will see them (language tags included)."""
    opts, quiet = Options(out="", tokenizer="", directions="random"), lambda *_, **__: None
    docs = (doc for job in discover(list(map(str, inputs))) for _, doc, _, _ in iter_documents(
        job, opts, quiet, quiet))
    train_bpe(docs, vocab_size, path)


def eval_languages(data: Path, chosen: dict) -> dict[str, list[str]]:
    """{tier: codes} evaluated: the chosen languages that have FLORES-style files, by Mix 1's tiers as
    evaluate.py reports them."""
    tiers = load_tiers(index=str(data / "mix_bi.json"))
    flores = {p.name.split(".")[0] for p in (data / "flores" / "devtest").glob("*.devtest")}
    out: dict[str, list[str]] = {}
    for code in sorted(c for langs in chosen.values() for c in langs if c in flores):
        out.setdefault(tiers[code], []).append(code)
    return {tier: out[tier] for tier in TIERS if tier in out}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    p.add_argument("--seeds", type=int, default=2, help="CPT seeds per mix")
    p.add_argument("--fresh", action="store_true", help="delete previous demo data and runs first")
    p.add_argument("--data", default="data/demo", help="data folder")
    p.add_argument("--out", default="out", help="runs and the report")
    p.add_argument("--quick", action="store_true", help="a seconds-long smoke run (tiny model, few steps)")
    p.add_argument("--all-languages", action="store_true", help="train on every language of the corpus, not "
                   f"the base ones, {PER_TIER} per lower tier and {VERY_LOW} very low")
    args = p.parse_args(argv)
    data, out, py, t_start = ROOT / args.data, ROOT / args.out, sys.executable, time.time()
    if args.fresh:
        shutil.rmtree(data, ignore_errors=True)
        for run in out.glob("demo_*"):
            shutil.rmtree(run) if run.is_dir() else run.unlink()
    (out / "logs").mkdir(parents=True, exist_ok=True)
    quick = ["--model='tiny'", "--max_steps=4", "--eval_interval=2", "--eval_sequences=4",
             "--ckpt_interval=4", "--warmup_steps=1", "--compile=False"] if args.quick else []
    stage("corpus", [[py, "cldr_corpus.py", data, *(["--locales", *QUICK_LOCALES] if args.quick else [])]],
          [data / "flores" / "languages.json"])
    chosen = choose_languages(data, *((2, 1) if args.quick else (PER_TIER, VERY_LOW)), args.all_languages)
    chosen_file = data / "demo_languages.json"
    if chosen_file.exists() and json.loads(chosen_file.read_text()) != chosen:
        sys.exit(f"{data} was prepared for other languages (another --all-languages or --quick): use --fresh")
    write_atomic(chosen_file, json.dumps(chosen, indent=1))
    codes = sorted({c for langs in chosen.values() for c in langs})
    inputs = [data / "raw" / "bi" / f"eng_Latn-{c}" for c in codes] + [
        data / "raw" / "mono" / c for c in ["eng_Latn", *codes]]
    tokenizer = data / "tokenizer.model"
    if not tokenizer.exists():
        print(f"[tokenizer] a {VOCAB_SIZE}-rank BPE on the pseudo-documents -> {tokenizer}", flush=True)
        t0 = time.time()
        train_tokenizer(inputs, 512 if args.quick else VOCAB_SIZE, tokenizer)
        TIMES["tokenizer"] = time.time() - t0
    stage("prepare", [[py, "prepare_mala.py", "--input", *inputs, "--out", data, "--tokenizer", tokenizer,
                       *PREPARE_OPTIONS]], [data / "index.json"])
    mixes = {m: data / f"mix_{m}.json" for m in ("base", "bi", "mono")}
    stage("mix", [[py, "mix.py", data, "--config", f"config/mix_demo_{m}.py", "--out", path]
                  for m, path in mixes.items()], list(mixes.values()))
    base = out / "demo_base"
    stage("base", [[py, "train.py", "config/demo_base.py", f"--out_dir='{base}'", f"--mix='{mixes['base']}'",
                    *quick]], [base / "hf" / "model.safetensors"], log_dir=out / "logs")
    runs = {"base": (base, None)} | {f"{mix}_s{seed}": (out / f"demo_{mix}_s{seed}", seed)
                                     for seed in range(args.seeds) for mix in ("bi", "mono")}
    for seed in range(args.seeds):  # Bi and Mono of one seed side by side, one core each
        stage(f"cpt seed {seed}", [[py, "train.py", f"config/demo_{mix}.py", f"--mix='{mixes[mix]}'",
                                    f"--out_dir='{runs[f'{mix}_s{seed}'][0]}'", f"--init='{base / 'hf'}'",
                                    f"--seed={seed}", *quick] for mix in ("bi", "mono")],
              [runs[f"{mix}_s{seed}"][0] / "hf" / "model.safetensors" for mix in ("bi", "mono")], threads=1,
              log_dir=out / "logs")
    langs = eval_languages(data, chosen)
    every = sorted({c for ls in langs.values() for c in ls} | {"eng_Latn"})
    middle = langs.get("medium") or langs[list(langs)[len(langs) // 2]]
    zero_shot = middle[:2] if len(middle) > 1 else every[1:3]  # X->Y and back, no bitext has either pair
    options = [*EVAL_OPTIONS, *(["--limit", "4", "--max-new-tokens", "8"] if args.quick else [])]
    evals = {name: [py, "evaluate.py", "--ckpt", run / "hf", "--task", "flores", "--data", data / "flores",
                    "--index", mixes["bi"], *options, "--out", run / "results.json", "--langs", *every,
                    "--pairs", "-".join(zero_shot), "-".join(zero_shot[::-1])]
             for name, (run, _) in runs.items()}
    names = list(runs)
    for i in range(0, len(names), 2):  # two at a time, one core each; results.md is written last
        group = names[i:i + 2]
        stage(f"eval {' '.join(group)}", [evals[n] for n in group],
              [runs[n][0] / "results.md" for n in group], threads=1)
    TIMES["total"] = time.time() - t_start
    report(runs, langs, zero_shot, out / "demo_report", args)
    print(f"demo finished in {TIMES['total']:.0f}s")



# ----------------------------------------------------------------------------- the report


def read_samples(run: Path) -> dict[str, list[dict]]:
    """evaluate.py's samples of a run, by unit (a direction: eng_Latn-fra_Latn, fra_Latn-eng_Latn, A-B)."""
    units: dict[str, list[dict]] = {}
    for line in (run / "results.flores.samples.jsonl").read_text(encoding="utf-8").splitlines():
        sample = json.loads(line)
        units.setdefault(sample["unit"], []).append(sample)
    return units


def unit_scores(units: dict[str, list[dict]], copy: bool = False) -> dict[str, dict]:
    """chrF++ and BLEU per unit from the samples alone (copy: the source as the hypothesis)."""
    chrf, bleu = sacrebleu.CHRF(word_order=2), sacrebleu.BLEU()
    scores = {}
    for unit, rows in units.items():
        hyps, refs = [r["source" if copy else "hypothesis"] for r in rows], [[r["reference"] for r in rows]]
        scores[unit] = {"chrf++": chrf.corpus_score(hyps, refs).score,
                        "bleu": bleu.corpus_score(hyps, refs).score}
    return scores


def cell(values: list[float], digits: int = 1) -> str:
    """Mean over seeds, with min-max when there are several."""
    mean = sum(values) / len(values)
    spread = f" [{min(values):.{digits}f}, {max(values):.{digits}f}]" if len(values) > 1 else ""
    return f"{mean:.{digits}f}{spread}"


def report(runs: dict, langs: dict, zero_shot: list, stem: Path, args) -> None:
    """The comparison the paper makes (Bi vs Mono per direction and tier, with copy and base baselines),
    the base on its own languages, forgetting, one zero-shot pair, and the targets, as markdown and JSON."""
    samples = {name: read_samples(run) for name, (run, _) in runs.items()}
    scores = {name: unit_scores(units) for name, units in samples.items()} | {
        "copy": unit_scores(samples["base"], copy=True)}
    seeds = sorted({seed for _, seed in runs.values() if seed is not None})
    groups = {"eng_Latn->X": lambda c: f"eng_Latn-{c}", "X->eng_Latn": lambda c: f"{c}-eng_Latn"}
    tiers = [t for t in TIERS if t in langs] + ["all"]
    members = {**langs, "all": sorted({c for ls in langs.values() for c in ls})}

    def mean_of(name: str, direction: str, tier: str, metric: str = "chrf++") -> float:
        return sum(scores[name][groups[direction](c)][metric] for c in members[tier]) / len(members[tier])

    table, lines = {}, []
    for metric in ("chrf++", "bleu"):
        lines += [f"### {'chrF++' if metric == 'chrf++' else 'BLEU (13a)'}, mean over languages; Mono and "
                  f"Bi: mean over {len(seeds)} CPT seed(s) [min, max]", "",
                  "| direction | tier | languages | copy | base | Mono | Bi | Bi - Mono |",
                  "|---|---|---:|---:|---:|---:|---:|---:|"]
        for direction in groups:
            for tier in tiers:
                row = {name: mean_of(name, direction, tier, metric) for name in ("copy", "base")}
                for mix in ("mono", "bi"):
                    row[mix] = [mean_of(f"{mix}_s{s}", direction, tier, metric) for s in seeds]
                row["gap"] = [b - m for b, m in zip(row["bi"], row["mono"])]
                table[f"{metric} {direction} {tier}"] = row
                lines.append(f"| {direction} | {tier} | {len(members[tier])} | {row['copy']:.1f} | "
                             f"{row['base']:.1f} | {cell(row['mono'])} | {cell(row['bi'])} | "
                             f"{cell(row['gap'])} |")
        lines.append("")
    # the base model on its own languages, and how much of it each CPT run keeps (forgetting)
    share = lambda a, b: a / b if b > 0 else 0.0  # of the base's score (a --quick base scores 0)
    kept = {f"{mix}_s{s}": min(share(mean_of(f"{mix}_s{s}", d, "high"), mean_of("base", d, "high"))
                               for d in groups) for mix in ("mono", "bi") for s in seeds}
    lines += ["### The base on its own languages (the high tier) and what CPT keeps of it (chrF++)", "",
              "| direction | base | Mono | Bi | Mono / base | Bi / base |", "|---|---:|---:|---:|---:|---:|"]
    for d in groups:
        base, mono, bi = (table[f"chrf++ {d} high"][k] for k in ("base", "mono", "bi"))
        lines.append(f"| {d} | {base:.1f} | {cell(mono)} | {cell(bi)} | "
                     f"{cell([share(m, base) for m in mono], 2)} | {cell([share(b, base) for b in bi], 2)} |")
    # zero-shot: neither side English, no bitext of this pair anywhere
    pair = [f"{zero_shot[0]}-{zero_shot[1]}", f"{zero_shot[1]}-{zero_shot[0]}"]
    lines += ["", "### Beyond the paper: a zero-shot pair (no bitext has it; chrF++)", "",
              "| direction | copy | base | Mono | Bi |", "|---|---:|---:|---:|---:|"]
    for unit in pair:
        mono, bi = ([scores[f"{mix}_s{s}"][unit]["chrf++"] for s in seeds] for mix in ("mono", "bi"))
        table[f"zero-shot {unit}"] = {"copy": scores["copy"][unit]["chrf++"], "base": scores["base"][unit][
            "chrf++"], "mono": mono, "bi": bi}
        lines.append(f"| {unit.replace('-', '->')} | {scores['copy'][unit]['chrf++']:.1f} | "
                     f"{scores['base'][unit]['chrf++']:.1f} | {cell(mono)} | {cell(bi)} |")
    lines += ["", *forgetting(runs, seeds), "", *targets(table, langs, seeds, kept, tiers)]
    lines += ["", "### Stage times (this invocation; reused stages are not listed)", "",
              "| stage | seconds |", "|---|---:|"] + [f"| {k} | {v:.0f} |" for k, v in TIMES.items()]
    text = "\n".join(lines) + "\n"
    write_atomic(stem.with_suffix(".md"), text)
    rel = lambda p: os.path.relpath(p, ROOT)  # relative to the repository root
    write_atomic(stem.with_suffix(".json"), json.dumps({
        "runs": [{"name": name.split("_s")[0], "seed": seed, "results": rel(run / "results.json"),
                  "samples": rel(run / "results.flores.samples.jsonl")}
                 for name, (run, seed) in runs.items()],
        "base_languages": BASE_LANGUAGES, "eval_languages": langs, "zero_shot": zero_shot,
        "metrics": "chrF++ (sacrebleu CHRF word_order=2) and BLEU (sacrebleu 13a) of each direction's "
                   "samples, then the mean over languages; copy: the source as the hypothesis",
        "tables": table, "kept_of_base": kept, "seconds": TIMES, "quick": args.quick}, indent=1))
    print(text)
    plot(table, tiers, stem.with_suffix(".png"))


def forgetting(runs: dict, seeds: list) -> list[str]:
    """Validation loss per tier and for English: the base (each CPT run's step 0) and after CPT."""
    logs = {name: [json.loads(x) for x in (run / "log.jsonl").read_text().splitlines()]
            for name, (run, _) in runs.items() if name != "base"}
    val = {name: [r["val"] for r in rows if "val" in r] for name, rows in logs.items()}
    first = val[f"bi_s{seeds[0]}"][0]
    lines = ["### Validation loss (nats/token) per tier and for English: forgetting and learning", "",
             "| group | base | Mono | Bi |", "|---|---:|---:|---:|"]
    for group in sorted(first, key=lambda g: TIERS.index(g) if g in TIERS else len(TIERS)):
        mono, bi = ([val[f"{mix}_s{s}"][-1][group] for s in seeds] for mix in ("mono", "bi"))
        lines.append(f"| {group} | {first[group]:.3f} | {cell(mono, 3)} | {cell(bi, 3)} |")
    return lines


def targets(table: dict, langs: dict, seeds: list, kept: dict, tiers: list) -> list[str]:
    """The demo's targets, each measured here (so a reader sees which hold and by how much)."""
    get = lambda d, t, k: table[f"chrf++ {d} {t}"][k]
    dirs = ["eng_Latn->X", "X->eng_Latn"]
    base_own = sum(get(d, "high", "base") for d in dirs) / 2
    big = [t for t in tiers[:-1] if len(langs[t]) >= 5]
    mean = lambda xs: sum(xs) / len(xs)
    checks = [
        (f"the base on its own languages: chrF++ >= 50 (mean of both directions: {base_own:.1f})",
         base_own >= 50),
        (f">= 5 tiers with >= 5 evaluated languages ({len(big)}: {', '.join(big)})", len(big) >= 5),
        ("Bi beats copying the source and the base, all languages, both directions ("
         + "; ".join(f"{d}: Bi {mean(get(d, 'all', 'bi')):.1f}, copy {get(d, 'all', 'copy'):.1f}, base "
                     f"{get(d, 'all', 'base'):.1f}" for d in dirs) + ")",
         all(mean(get(d, "all", "bi")) > max(get(d, "all", "copy"), get(d, "all", "base")) for d in dirs)),
        (f"every CPT run keeps >= 70% of the base's chrF++ on its languages (lowest: "
         f"{min(kept.values()):.0%})", min(kept.values()) >= 0.7),
        (f"Bi - Mono >= +5 chrF++ in every seed and direction (lowest: "
         f"{min(g for d in dirs for g in get(d, 'all', 'gap')):+.1f})",
         all(g >= 5 for d in dirs for g in get(d, "all", "gap"))),
        ("Bi > Mono in every tier with >= 5 languages, both directions (mean over seeds)",
         all(mean(get(d, t, "gap")) > 0 for d in dirs for t in big)),
    ]
    gains = {t: mean([mean(get(d, t, "gap")) / max(mean(get(d, t, "mono")), 1e-9) for d in dirs])
             for t in big}
    best = max(gains, key=gains.get) if gains else "-"
    lines = ["### Targets", ""] + [f"- {'yes' if ok else 'NO '} {text}" for text, ok in checks]
    where = "lower" if best in TIERS[4:] else "higher"
    lines += ["", "Relative gain of Bi over Mono per tier ((Bi - Mono) / Mono, both directions): "
              + ", ".join(f"{t} {g:+.0%}" for t, g in gains.items()) + f". Largest: {best}. The paper found "
              f"the largest relative gains in the low tiers; here the {where} tiers gain most."]
    return lines


def plot(table: dict, tiers: list, path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return print("matplotlib not installed: no figure (the tables have the numbers)")
    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), sharey=True)
    for ax, direction in zip(axes, ("eng_Latn->X", "X->eng_Latn")):
        for j, name in enumerate(("copy", "base", "mono", "bi")):
            values = [table[f"chrf++ {direction} {t}"][name] for t in tiers]
            values = [sum(v) / len(v) if isinstance(v, list) else v for v in values]
            ax.bar([i + 0.2 * j for i in range(len(tiers))], values, 0.2, label=name)
        ax.set_xticks([i + 0.3 for i in range(len(tiers))], tiers, rotation=20)
        ax.set(title=f"chrF++ {direction}", ylabel="chrF++")
    axes[0].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    print(f"figure: {path}")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    main()
