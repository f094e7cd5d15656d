"""Evaluate a base model on the EMMA-500 Llama 3 benchmarks, per language and per resource tier.

    python evaluate.py --ckpt out/bi/hf --task flores --data data/flores200 --out results/bi.json
    python evaluate.py --ckpt out/bi/hf --task belebele --data data/belebele --out results/bi.json
    python evaluate.py --compare results/mono.json results/bi.json      # per-language/tier deltas (b - a)

One results file holds one section per task. It is rewritten atomically after every language, and a rerun
with the same settings computes only the languages still missing (resume). It records the command, the
package versions and sacrebleu's signatures; --log-samples writes every example (prompt, reference and
output, or choices and their log-likelihoods) to <out>.<task>.samples.jsonl, so any score can be
recomputed from the files alone.

Tasks and their --data layouts: the TASKS table of tasks.py (local files only, Hugging Face field names).
Translation: the paper's 3-shot prompt, greedy (--sample: the paper's T=0.6, top-p 0.9), stop at the first
newline; chrF++ and spBLEU (the flores200 SentencePiece model as --spm, never downloaded), else BLEU 13a.
Multiple choice is scored as lm-evaluation-harness 0.4 (`--model hf`) scores it on a folder this repo
exports, whose tokenizer adds BOS: the choice's tokens are those of BOS + context + " " + choice after the
context's own (trailing context whitespace moves into the choice); acc, acc_norm (log-likelihood per
character of the choice) and acc_bytes (per UTF-8 byte), as lm-eval defines them. All choices of a
question share one forward. Perplexity: bits per UTF-8 byte, fair across scripts and tokenizers.
"""

import argparse
import hashlib
import json
import math
import platform
import re
import sys
from importlib.metadata import version
from pathlib import Path

import sentencepiece
import torch
import torch.nn.functional as F
from sacrebleu.metrics import BLEU, CHRF
from sacrebleu.utils import SACREBLEU_DIR
from tqdm import tqdm

from checkpoint import load_hf
from common import HelpFormatter, write_atomic
from mix import PAPER_TIER_THRESHOLDS, tier_of
from tasks import (
    DATA_EXTS,
    N_SHOTS,
    PAPER_SAMPLING,
    TASKS,
    DataError,
    MCItem,
    find_file,
    flores_prompts,
    get,
    language_name,
    read_flores,
    read_records,
)
from tokenizer import Tokenizer

# ----------------------------------------------------------------------------- scoring

KIND_METRICS = {"choice": (["acc", "acc_norm", "acc_bytes"], "lm-eval's acc / acc_norm (per character) / "
                           "acc_bytes (per UTF-8 byte) of the choices' log-likelihoods."),
                "translate": (["chrf++"], "chrF++ and {bleu}; 3-shot, {decoding}, devtest."),
                "answer": (["acc"], "direct answer, last number exact match."),
                "nll": (["bits_per_byte"], "bits per UTF-8 byte = NLL (nats) / ln 2 / bytes.")}



def device_of(model) -> torch.device:
    return next(model.parameters()).device


def encode_choices(tok, item: MCItem) -> tuple[list[int], list[list[int]]]:
    """lm-eval's split of (context, " " + choice): trailing context whitespace joins the choice, and the
    choice's tokens are those of the whole text after the context's own tokens (BOS first in both)."""
    context = item.context.rstrip()
    moved = item.context[len(context):]
    context_ids = tok.encode(context, bos=True)
    wholes = (tok.encode(f"{context}{moved} {choice}", bos=True) for choice in item.choices)
    return context_ids, [whole[len(context_ids):] for whole in wholes]


@torch.no_grad()
def score_choices(model, tok, items: list[MCItem], batch_size: int, desc: str = "") -> list[list[float]]:
    """Log-likelihood (nats) of every choice. Each question is packed as context + choice_1 + ... +
    choice_k and run through ONE forward: choice j attends to the context and causally to itself, its
    RoPE positions restart where the context ends. Questions are sorted by length, batched and right
    padded; a pad attends only to itself (no all-masked softmax row -> no NaN) and no real position
    attends to a pad, so a score never depends on its batch."""
    max_len, encoded = model.args.max_seq_len, []
    for item in items:
        context, choices = encode_choices(tok, item)
        excess = len(context) + sum(map(len, choices)) - max_len
        if excess > 0:  # keep BOS, drop the oldest context tokens (lm-eval truncates on the left too)
            if excess >= len(context) - 1:
                raise DataError(f"{desc}: the choices alone exceed max_seq_len {max_len}")
            context = context[:1] + context[1 + excess:]
        encoded.append((context, choices))
    length = [len(c) + sum(map(len, chs)) for c, chs in encoded]
    order = sorted(range(len(items)), key=lambda i: (-length[i], i))
    device, scores = device_of(model), [None] * len(items)
    for start in tqdm(range(0, len(order), batch_size), desc=desc, leave=False):
        batch, T = order[start:start + batch_size], length[order[start]]
        idx, positions = (torch.zeros(len(batch), T, dtype=torch.long) for _ in range(2))
        mask = torch.eye(T, dtype=torch.bool).repeat(len(batch), 1, 1)
        rows, cols, targets, owner = [], [], [], []  # which logit predicts which token of which choice
        for b, i in enumerate(batch):
            context, choices = encoded[i]
            n = offset = len(context)
            idx[b, :n], positions[b, :n] = torch.tensor(context), torch.arange(n)
            mask[b, :n, :n] = torch.ones(n, n, dtype=torch.bool).tril()
            for j, choice in enumerate(choices):
                m, span = len(choice), slice(offset, offset + len(choice))
                idx[b, span], positions[b, span] = torch.tensor(choice), torch.arange(n, n + m)
                mask[b, span, :n], mask[b, span, span] = True, torch.ones(m, m, dtype=torch.bool).tril()
                rows += [b] * m
                cols += [n - 1] + list(range(offset, offset + m - 1))
                targets += choice
                owner += [(b, j)] * m
                offset += m
        logits, _ = model(idx.to(device), positions=positions.to(device), mask=mask.to(device))
        logp = logits[torch.tensor(rows, device=device), torch.tensor(cols, device=device)].log_softmax(-1)
        logp = logp.gather(1, torch.tensor(targets, device=device)[:, None])[:, 0].double().cpu().tolist()
        sums = {}
        for key, value in zip(owner, logp):
            sums[key] = sums.get(key, 0.0) + value
        for b, i in enumerate(batch):
            scores[i] = [sums[(b, j)] for j in range(len(encoded[i][1]))]
    return scores


def mc_metrics(items: list[MCItem], scores: list[list[float]]) -> dict:
    """lm-eval's acc, acc_norm (per character of the choice) and acc_bytes (per UTF-8 byte); ties: first."""
    argmax = lambda xs: max(range(len(xs)), key=lambda j: (xs[j], -j))
    hits = {"acc": 0, "acc_norm": 0, "acc_bytes": 0}
    for item, s in zip(items, scores):
        hits["acc"] += argmax(s) == item.label
        hits["acc_norm"] += argmax([ll / len(c) for ll, c in zip(s, item.choices)]) == item.label
        hits["acc_bytes"] += argmax([ll / len(c.encode()) for ll, c in zip(s, item.choices)]) == item.label
    return {k: v / len(items) for k, v in hits.items()} | {"n": len(items)}


def newline_stop_ids(tok) -> list[int]:
    """Ids whose text contains a newline (generation stops there), plus end of text/turn."""
    newline = {i for i in range(tok.n_base) if "\n" in tok.decode([i])}
    return sorted(newline | {tok.eos_id, tok.eot_id})


def generate_lines(model, tok, prompts: list[str], max_new_tokens: int, batch_size: int = 8,
                   temperature: float = 0.0, top_p: float = 1.0, seed_key: str = "", desc: str = ""):
    """First line of each continuation; prompts batched by length (order restored); greedy unless
    temperature > 0, then seeded by seed_key so a direction's samples are reproducible. The stop token is
    kept and the text cut at its newline: Llama 3's split regex merges punctuation with the newline
    ('.\\n' is one token), so cutting before the token would lose the final period."""
    stop_ids, room = newline_stop_ids(tok), model.args.max_seq_len - max_new_tokens
    if room < 2:
        raise DataError(f"--max-new-tokens {max_new_tokens} leaves no room for a prompt in max_seq_len "
                        f"{model.args.max_seq_len}")
    encoded = [ids[:1] + ids[len(ids) - room + 1:] if len(ids) > room else ids  # keep BOS, cut the oldest
               for ids in (tok.encode(p, bos=True) for p in prompts)]
    order = sorted(range(len(prompts)), key=lambda i: (-len(encoded[i]), i))
    generator = None
    if temperature > 0:
        generator = torch.Generator(device_of(model))
        generator.manual_seed(int(hashlib.sha256(seed_key.encode()).hexdigest()[:15], 16))
    lines = [""] * len(prompts)
    for start in tqdm(range(0, len(order), batch_size), desc=desc, leave=False):
        batch = order[start:start + batch_size]
        outputs = model.generate([encoded[i] for i in batch], max_new_tokens, temperature, top_p, stop_ids,
                                 generator, include_stop=True)
        for i, out in zip(batch, outputs):
            if out and out[-1] in (tok.eos_id, tok.eot_id):  # no text of their own
                out = out[:-1]
            lines[i] = tok.decode(out).split("\n", 1)[0].strip()
    return lines


@torch.no_grad()
def nll_bytes(model, tok, texts: list[str], batch_size: int, desc: str = "") -> dict:
    """Total NLL of every document (BOS + text), in non-overlapping windows of max_seq_len tokens."""
    L, windows = model.args.max_seq_len, []
    for ids in (tok.encode(text, bos=True) for text in texts):
        windows += [ids[s:s + L + 1] for s in range(0, len(ids) - 1, L)]
    windows.sort(key=len, reverse=True)
    device, nll = device_of(model), 0.0
    for start in tqdm(range(0, len(windows), batch_size), desc=desc, leave=False):
        batch = windows[start:start + batch_size]
        idx = torch.zeros(len(batch), len(batch[0]) - 1, dtype=torch.long)
        targets = torch.full_like(idx, -1)
        for b, w in enumerate(batch):
            idx[b, :len(w) - 1], targets[b, :len(w) - 1] = torch.tensor(w[:-1]), torch.tensor(w[1:])
        logits, _ = model(idx.to(device))  # right padding: causal attention never sees it
        nll += F.cross_entropy(logits.float().flatten(0, 1), targets.to(device).flatten(), ignore_index=-1,
                               reduction="sum").item()
    n_bytes, n_tokens = sum(len(t.encode()) for t in texts), sum(len(w) - 1 for w in windows)
    return {"bits_per_byte": nll / math.log(2) / n_bytes, "ppl_token": math.exp(nll / n_tokens),
            "nll": nll, "bytes": n_bytes, "tokens": n_tokens, "n": len(texts)}


class TranslationMetrics:
    """chrF++ (word_order=2), and spBLEU given the flores200 SentencePiece model (--spm, or sacrebleu's cache
    copy): the texts are cut into its pieces exactly as sacrebleu's "flores200" tokenizer does, then BLEU
    runs with tokenize="none". Without the model: BLEU 13a. Nothing is ever downloaded."""

    def __init__(self, spm: str | None):
        cached = Path(SACREBLEU_DIR) / "models" / "flores200sacrebleuspm"
        path = spm or (str(cached) if cached.is_file() else None)
        if spm is not None and not Path(spm).is_file():
            raise DataError(f"{spm}: no such SentencePiece model (--spm)")
        self.sp = sentencepiece.SentencePieceProcessor(model_file=path) if path else None
        self.bleu_name = "spbleu" if path else "bleu"
        self.chrf, self.bleu = CHRF(word_order=2), BLEU(tokenize="none" if path else "13a")
        self.spm_sha256 = hashlib.sha256(Path(path).read_bytes()).hexdigest() if path else None

    def scores(self, hyps: list[str], refs: list[str]) -> dict:
        pieces = lambda texts: (
            [" ".join(ps) for ps in self.sp.encode(texts, out_type=str)] if self.sp else texts)
        bleu = self.bleu.corpus_score(pieces(hyps), [pieces(refs)]).score
        return {"chrf++": self.chrf.corpus_score(hyps, [refs]).score, self.bleu_name: bleu, "n": len(hyps)}

    def signatures(self) -> dict:
        spm = f"|spm:flores200 sha256 {self.spm_sha256[:12]}" if self.sp else ""
        return {"chrf++": str(self.chrf.get_signature()), self.bleu_name: f"{self.bleu.get_signature()}{spm}"}


def last_number(text: str) -> float | None:
    numbers = re.findall(r"-?\d[\d,]*(?:\.\d+)?", text)
    return float(numbers[-1].replace(",", "")) if numbers else None


# ----------------------------------------------------------------------------- units: languages, directions


def task_units(task: str, data_dir: Path, langs=None, pairs=None, centre: str = "eng_Latn") -> list[dict]:
    """What gets one score each (FLORES directions, else languages), every file read and checked now,
    before minutes go into loading the model."""
    kind = TASKS[task].kind
    flores_layout = kind == "translate" or (kind == "nll" and (data_dir / "devtest").is_dir())
    exts = (".txt",) if task == "ppl" else DATA_EXTS
    found = ({p.name.split(".")[0] for p in (data_dir / "devtest").glob("*.*")} if flores_layout
             else {p.stem for p in data_dir.glob("*") if p.suffix in exts})
    langs = langs or ([] if pairs else sorted(found))
    if not langs and not pairs:
        raise DataError(f"{data_dir}: no data files for task {task}")
    if kind == "translate":  # centre->X and X->centre for every language, then the explicit pairs
        others = [lang for lang in langs if lang != centre]
        pairs = [(centre, x) for x in others] + [(x, centre) for x in others] + [
            tuple(p.split("-", 1)) for p in pairs or []]
        for split in ("dev", "devtest"):  # line-aligned across languages, or a corrupt / foreign file
            counts = {code: len(read_flores(data_dir, split, code)) for pair in pairs for code in pair}
            if len(set(counts.values())) > 1:
                raise DataError(f"{data_dir / split}: not line-aligned: {counts}")
        return [{"key": f"{src}-{tgt}", "src": src, "tgt": tgt,
                 "lang": tgt if src == centre else src if tgt == centre else f"{src}-{tgt}",
                 "direction": f"{centre}->X" if src == centre else f"X->{centre}" if tgt == centre else ""}
                for src, tgt in pairs]
    units = [{"key": lang, "lang": lang, "path": find_file(data_dir, lang, "devtest") if flores_layout else
              data_dir / f"{lang}.txt" if task == "ppl" else find_file(data_dir, lang)} for lang in langs]
    for unit in units:
        unit_inputs(task, unit, data_dir)  # parses every record: a bad label fails now, not after hours
    return units


def unit_inputs(task: str, unit: dict, data_dir: Path, limit=None, seed: int = 0, lang_names="cldr") -> dict:
    kind = TASKS[task].kind
    if kind == "translate":
        src, tgt = unit["src"], unit["tgt"]
        sources = read_flores(data_dir, "devtest", src)[:limit]
        names = language_name(src, lang_names), language_name(tgt, lang_names)
        dev = read_flores(data_dir, "dev", src), read_flores(data_dir, "dev", tgt)
        prompts = flores_prompts(*dev, sources, *names, seed, src, tgt)
        return {"prompts": prompts, "sources": sources, "refs": read_flores(data_dir, "devtest", tgt)[:limit]}
    path = unit["path"]
    if kind == "nll":
        if path.suffix != ".txt":
            return {"texts": read_flores(data_dir, "devtest", unit["lang"])[:limit]}
        if not path.is_file():
            raise DataError(f"{path}: no file for language {unit['lang']!r}")
        return {"texts": [t for t in path.read_text(encoding="utf-8-sig").split("\n") if t.strip()][:limit]}
    records = read_records(path)[:limit]
    where = [f"{path}: record {i + 1}" for i in range(len(records))]
    if kind == "answer":
        try:
            gold = [float(str(get(r, "answer_number", w)).replace(",", "")) for r, w in zip(records, where)]
        except ValueError as e:
            raise DataError(f"{path}: answer_number is not a number ({e})") from None
        return {"prompts": [f"Question: {get(r, 'question', w)}\nAnswer:" for r, w in zip(records, where)],
                "gold": gold}
    return {"items": [TASKS[task].item(r, unit["lang"], w) for r, w in zip(records, where)]}


def score_unit(task: str, unit: dict, inputs: dict, model, tok, metrics, decoding: dict, batch_size: int):
    """(scores, per-example samples) of one unit."""
    kind, desc = TASKS[task].kind, f"{task} {unit['key']}"
    if kind in ("translate", "answer"):
        outputs = generate_lines(model, tok, inputs["prompts"], batch_size=batch_size, desc=desc,
                                 seed_key=f"{decoding['seed']}-{unit['key']}", **{
                                     k: decoding[k] for k in ("max_new_tokens", "temperature", "top_p")})
        if kind == "translate":
            samples = [{"src_lang": unit["src"], "tgt_lang": unit["tgt"], "prompt": p, "source": s,
                        "reference": r, "hypothesis": h}
                       for p, s, r, h in zip(inputs["prompts"], inputs["sources"], inputs["refs"], outputs)]
            return metrics.scores(outputs, inputs["refs"]), samples
        preds = [last_number(a) for a in outputs]
        samples = [{"prompt": p, "output": o, "pred": pr, "gold": g}
                   for p, o, pr, g in zip(inputs["prompts"], outputs, preds, inputs["gold"])]
        acc = sum(p == g for p, g in zip(preds, inputs["gold"])) / len(preds)
        return {"acc": acc, "n": len(preds)}, samples
    if kind == "nll":
        return nll_bytes(model, tok, inputs["texts"], batch_size, desc), []
    items = inputs["items"]
    lls = score_choices(model, tok, items, batch_size, desc)
    samples = [{"context": it.context, "choices": it.choices, "label": it.label, "loglikelihoods": ll}
               for it, ll in zip(items, lls)]
    prompt_lang = {"prompt_lang": items[0].prompt_lang} if items and items[0].prompt_lang else {}
    return mc_metrics(items, lls) | prompt_lang, samples


def evaluate(model, tok, task: str, data_dir, out, *, units=None, langs=None, pairs=None, centre="eng_Latn",
             tiers=None, lang_names="cldr", spm=None, batch_size=8, max_new_tokens=256, temperature=0.0,
             top_p=1.0, seed=0, limit=None, log_samples=False, checkpoint="", command="") -> dict:
    """Scores every unit still missing from `out`, rewriting it atomically after each one; with
    log_samples, the unit's examples go to <out>.<task>.samples.jsonl first."""
    data_dir, out, kind, tiers = Path(data_dir), Path(out), TASKS[task].kind, tiers or {}
    units = units if units is not None else task_units(task, data_dir, langs, pairs, centre)
    metrics = TranslationMetrics(spm) if kind == "translate" else None
    decoding = {"max_new_tokens": max_new_tokens, "temperature": temperature, "top_p": top_p, "seed": seed}
    config = {"task": task, "checkpoint": checkpoint, "tokenizer_sha256": tok.sha256, "limit": limit,
              **(decoding if kind in ("translate", "answer") else {}),
              **({"lang_names": lang_names, "shots": N_SHOTS, "bleu": metrics.bleu_name} if metrics else {})}
    results = read_json(out) if out.exists() else {"format": 1, "checkpoint": checkpoint, "tasks": {}}
    if "tasks" not in results or results.get("checkpoint") != checkpoint:
        raise DataError(f"{out}: not a results file of {checkpoint!r}; use another --out")
    section = results["tasks"].get(task) or {"config": config, "scores": {}}
    if section["config"] != config:
        old = section["config"]
        changed = sorted(k for k in {**config, **old} if config.get(k) != old.get(k))
        raise DataError(f"{out}: holds {task} scores with other settings ({', '.join(changed)}); "
                        "use another --out")
    results["versions"] = {"python": platform.python_version(), **{p: version(p) for p in (
        "torch", "sacrebleu", "tiktoken")}}
    results["command"], results["tokenizer"] = command, {"path": str(tok.path), "sha256": tok.sha256}
    section["tiers"] = {u["lang"]: tiers[u["lang"]] for u in units if u["lang"] in tiers}
    section["metrics"], note = KIND_METRICS[kind]
    if metrics:
        section["metrics"] = ["chrf++", metrics.bleu_name]
        note = note.format(bleu="spBLEU (flores200)" if metrics.sp else "BLEU 13a",
                           decoding="greedy" if temperature == 0 else "sampled")
    section["notes"], results["tasks"][task] = [note], section
    samples_path = out.with_name(f"{out.name.removesuffix('.json')}.{task}.samples.jsonl")
    if log_samples:  # samples of units not in the results (a killed run's last unit) are dropped
        kept = [line for line in (samples_path.read_text().splitlines() if samples_path.exists() else [])
                if json.loads(line)["unit"] in section["scores"]]
        write_atomic(samples_path, "".join(line + "\n" for line in kept))
    todo = [u for u in units if u["key"] not in section["scores"]]
    for unit in tqdm(todo, desc=task, disable=len(todo) < 2):
        inputs = unit_inputs(task, unit, data_dir, limit, seed, lang_names)
        score, samples = score_unit(task, unit, inputs, model, tok, metrics, decoding, batch_size)
        if log_samples:
            extra = {"task": task, "unit": unit["key"], "lang": unit["lang"], "tier": tiers.get(unit["lang"])}
            with open(samples_path, "a", encoding="utf-8") as f:
                f.writelines(json.dumps(extra | s, ensure_ascii=False) + "\n" for s in samples)
        section["scores"][unit["key"]] = dict(lang=unit["lang"], direction=unit.get("direction", ""), **score)
        if metrics:  # sacrebleu knows its signature (number of references...) only after scoring
            section["signatures"] = metrics.signatures()
        write_atomic(out, json.dumps(results, indent=1, ensure_ascii=False))
    write_atomic(out, json.dumps(results, indent=1, ensure_ascii=False))
    write_atomic(out.with_suffix(".md"), results_markdown(results))
    return results


# ----------------------------------------------------------------------------- tables, compare, tiers


def read_json(path) -> dict:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as e:
        raise DataError(f"{path}: cannot read JSON ({e})") from None


def columns_of(section: dict) -> dict[str, dict[str, float]]:
    """lang -> {column: value}; FLORES directions become 'eng_Latn->X chrf++' columns of the X row."""
    rows = {}
    for key, score in section["scores"].items():
        prefix = f"{score['direction']} " if score.get("direction") else ""
        rows.setdefault(score.get("lang", key), {}).update(
            {prefix + m: score[m] for m in section["metrics"] if m in score})
    return rows


def markdown_table(rows: dict, tiers: dict, fmt=lambda v: f"{v:.2f}") -> str:
    """One row per language, then the mean of each tier and of all languages."""
    columns = list(dict.fromkeys(c for row in rows.values() for c in row))  # first seen: centre->X first
    lines = ["| lang | tier | " + " | ".join(columns) + " |", "|---|---|" + "---:|" * len(columns)]
    groups = {}
    for lang in sorted(rows):
        groups.setdefault(tiers.get(lang, "-"), []).append(lang)
        cells = [fmt(rows[lang][c]) if c in rows[lang] else "" for c in columns]
        lines.append(f"| {lang} | {tiers.get(lang, '-')} | " + " | ".join(cells) + " |")
    summaries = [(f"**{t}** ({len(g)})", g) for t, g in sorted(groups.items()) if t != "-" or len(groups) > 1]
    for name, langs in summaries + [(f"**all** ({len(rows)})", list(rows))]:
        values = [[rows[lang][c] for lang in langs if c in rows[lang]] for c in columns]
        cells = [fmt(sum(v) / len(v)) if v else "" for v in values]
        lines.append(f"| {name} | mean | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def results_markdown(results: dict) -> str:
    parts = [f"# {results['checkpoint']}"]
    for task, section in results["tasks"].items():
        table = markdown_table(columns_of(section), section["tiers"])
        parts += [f"\n## {task}\n", *section["notes"], "", table]
    return "\n".join(parts) + "\n"


def compare(path_a: str, path_b: str) -> str:
    """Per-language deltas b - a of every shared task and column, with their per-tier means."""
    a, b = (read_json(p) for p in (path_a, path_b))
    for path, results in ((path_a, a), (path_b, b)):
        if "tasks" not in results:
            raise DataError(f"{path}: no 'tasks' (not an evaluate.py results file)")
    parts = [f"# {path_b} - {path_a}"]
    for task in [t for t in a["tasks"] if t in b["tasks"]]:
        rows_a, rows_b = columns_of(a["tasks"][task]), columns_of(b["tasks"][task])
        deltas = {lang: {c: v - rows_a[lang][c] for c, v in row.items() if c in rows_a[lang]}
                  for lang, row in rows_b.items() if lang in rows_a}
        tiers = {**a["tasks"][task]["tiers"], **b["tasks"][task]["tiers"]}
        parts += [f"\n## {task} (b - a)\n", markdown_table(deltas, tiers, fmt=lambda v: f"{v:+.2f}")]
    return "\n".join(parts) + "\n"


def load_tiers(index: str | None = None, tier_map: str | None = None, centre: str = "eng_Latn") -> dict:
    """{lang: tier} from a tier map, or from --index: a language's tier is that of its bilingual source with
    the centre, as mix.py put it in a mix.json (the mix config's thresholds: the demo's scaled ones), or for
    an index.json by the paper's thresholds."""
    if tier_map or not index:
        return read_json(tier_map) if tier_map else {}
    sources = read_json(index).get("sources")
    if isinstance(sources, list):  # mix.py's mix.json: every source with its tier
        tier = lambda s, where: get(s, "tier", where)
    elif isinstance(sources, dict):  # prepare_mala.py's index.json: word counts only
        sources = [{"name": name, **s} for name, s in sources.items()]
        tier = lambda s, where: tier_of(get(s, "n_words", where), PAPER_TIER_THRESHOLDS)
    else:
        raise DataError(f"{index}: no 'sources' list (mix.py's mix.json) or dict (an index.json)")
    tiers = {}
    for source in sources:
        langs = source.get("langs", [])
        if source.get("kind") == "bi" and centre in langs and len(langs) == 2:
            where = f"{index}: source {source.get('name')!r}"
            tiers.setdefault(langs[1 - langs.index(centre)], tier(source, where))
    return tiers


def load_model(ckpt: str, tokenizer: str | None = None, device: str | None = None, dtype: str | None = None):
    """(model, tokenizer) of a HF / Meta folder; the tokenizer is --tokenizer, else the folder's
    tokenizer.model, original/tokenizer.model or tokenizer.json (a folder saved by transformers)."""
    folder = Path(ckpt)
    names = ["tokenizer.model", "original/tokenizer.model", "tokenizer.json"]
    candidates = [Path(tokenizer)] if tokenizer else [folder / n for n in names]
    tok_path = next((p for p in candidates if p.is_file()), None)
    if tok_path is None:
        raise DataError(f"{folder}: none of {', '.join(names)} (give --tokenizer)")
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    try:
        tok = Tokenizer(tok_path)
        model = load_hf(folder, device=device, dtype=getattr(torch, dtype or (
            "bfloat16" if device == "cuda" else "float32"))).eval()
    except (OSError, ValueError) as e:  # CheckpointError and the tokenizer's errors name the file
        raise DataError(str(e)) from None
    if model.args.vocab_size < tok.n_vocab:
        raise DataError(f"{tok_path}: {tok.n_vocab} tokens, more than the model's {model.args.vocab_size}")
    return model, tok


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    p.add_argument("--compare", nargs=2, metavar=("A_JSON", "B_JSON"), help="print deltas b - a and exit")
    p.add_argument("--ckpt", help="Hugging Face (or Meta) checkpoint folder")
    p.add_argument("--task", choices=list(TASKS), help="; ".join(f"{k}: {t.layout}" for k, t in
                                                                 TASKS.items()))
    p.add_argument("--data", help="data folder (layouts: see --task)")
    p.add_argument("--out", help="results JSON (a .md table is written next to it)")
    p.add_argument("--log-samples", action="store_true", help="every example to <out>.<task>.samples.jsonl")
    p.add_argument("--tokenizer", help="default: the checkpoint's tokenizer.model / tokenizer.json")
    p.add_argument("--langs", nargs="+", help="languages (default: every file in --data)")
    p.add_argument("--pairs", nargs="+", help="flores: src-tgt directions, besides the centre's of --langs")
    p.add_argument("--centre", default="eng_Latn", help="flores: evaluate centre->X and X->centre")
    p.add_argument("--lang-names", choices=("cldr", "code"), default="cldr", help="flores prompt names")
    p.add_argument("--index", metavar="JSON", help="tier of a language = tier of its pair with --centre, "
                   "from a mix.json (mix.py's tiers) or an index.json (the paper's thresholds)")
    p.add_argument("--tier-map", help="JSON {lang: tier} instead of --index")
    p.add_argument("--spm", help="flores200 SentencePiece model for spBLEU (default: sacrebleu's cache copy)")
    p.add_argument("--batch-size", type=int, default=8, help="prompts (or questions) per forward")
    p.add_argument("--max-new-tokens", type=int, default=256, help="generation budget per prompt")
    p.add_argument("--sample", action="store_true", help="the paper's sampling: temperature 0.6, top-p 0.9")
    p.add_argument("--temperature", type=float, help="default 0 (greedy), 0.6 with --sample")
    p.add_argument("--top-p", type=float, help="default 1, 0.9 with --sample")
    p.add_argument("--seed", type=int, default=0, help="shots and sampling")
    p.add_argument("--limit", type=int, help="first N examples per language (smoke runs)")
    p.add_argument("--device", help="default: cuda if available, else cpu")
    p.add_argument("--dtype", help="default: bfloat16 on cuda, float32 on cpu")
    args = p.parse_args(argv)
    temperature, top_p = PAPER_SAMPLING if args.sample else (0.0, 1.0)
    args.temperature = temperature if args.temperature is None else args.temperature
    args.top_p = top_p if args.top_p is None else args.top_p
    if not args.compare:
        if missing := [f"--{k}" for k in ("ckpt", "task", "data", "out") if getattr(args, k) is None]:
            raise DataError(f"missing {', '.join(missing)} (or use --compare A B)")
        if not Path(args.data).is_dir():
            raise DataError(f"{args.data}: no such data folder")
    return args


def main(argv=None) -> None:
    try:
        args = parse_args(argv)
        if args.compare:
            print(compare(*args.compare))
            return
        data = Path(args.data)
        units = task_units(args.task, data, args.langs, args.pairs, args.centre)  # bad data fails first
        tiers = load_tiers(args.index, args.tier_map, args.centre)
        model, tok = load_model(args.ckpt, args.tokenizer, args.device, args.dtype)
        command = " ".join(["python", "evaluate.py", *(sys.argv[1:] if argv is None else argv)])
        results = evaluate(model, tok, args.task, data, args.out, units=units, centre=args.centre,
                           tiers=tiers,
                           lang_names=args.lang_names, spm=args.spm, batch_size=args.batch_size,
                           max_new_tokens=args.max_new_tokens, temperature=args.temperature, top_p=args.top_p,
                           seed=args.seed, limit=args.limit, log_samples=args.log_samples,
                           checkpoint=str(Path(args.ckpt)),
                           command=command)
        print(results_markdown(results))
    except (DataError, FileNotFoundError) as e:
        raise SystemExit(f"evaluate.py: error: {e}") from None


if __name__ == "__main__":
    main(sys.argv[1:])
