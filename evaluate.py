"""Evaluate a base model on the EMMA-500 Llama 3 benchmarks, per language and per resource tier.

    python evaluate.py --ckpt out/bi/hf --task flores --data data/flores200 --out results/bi.json
    python evaluate.py --ckpt out/bi/hf --task belebele --data data/belebele --out results/bi.json
    python evaluate.py --compare results/mono.json results/bi.json      # per-language/tier deltas (b - a)

One results file holds one section per task; it is rewritten atomically after every language, and a
rerun with the same settings only computes the languages still missing (resume).

--data layouts (local files only, Hugging Face field names; <lang> is whatever code names the file):
  flores       DIR/dev/<code>.dev + DIR/devtest/<code>.devtest (FLORES-200, one sentence a line,
               line-aligned across languages) or FLORES+ DIR/dev/<code>.parquet + DIR/devtest/<code>.parquet
               (column `text`). Directions centre->X and X->centre (--centre, default eng_Latn), or --pairs.
  sib200       DIR/<lang>.jsonl|.tsv|.parquet: text, category
  belebele     DIR/<lang>.*: flores_passage, question, mc_answer1..4, correct_answer_num (1-based)
  xcopa        DIR/<lang>.*: premise, choice1, choice2, question (cause|effect), label (0|1)
  xstorycloze  DIR/<lang>.*: input_sentence_1..4, sentence_quiz1, sentence_quiz2, answer_right_ending (1|2)
  xnli         DIR/<lang>.*: premise, hypothesis, label (0 entailment, 1 neutral, 2 contradiction)
  arc          DIR/<lang>.*: instruction, option_a..option_e (empty = absent), answer (A-E)   (okapi m_arc)
  mgsm         DIR/<lang>.*: question, answer_number
  ppl          DIR/<lang>.txt (one document a non-empty line), or a FLORES folder (its devtest split)

Translation: the paper's 3-shot prompt, greedy (--sample: the paper's T=0.6, top-p 0.9), stop at the first
newline (text the stop token holds before it, '.\\n', is kept); chrF++ (not plain chrF) and spBLEU (flores200
SentencePiece: --spm PATH or sacrebleu's cache; never downloaded), else BLEU 13a.
Multiple choice: log-likelihood of each full choice after its context (context encoded with BOS, each
choice on its own with its leading space), all choices in ONE forward; acc, and acc_norm per UTF-8 byte of
the choice. Prompts follow lm-evaluation-harness where the paper gives none (SIB-200's is ours).
Perplexity: bits per UTF-8 byte = total NLL (nats) / ln 2 / bytes, fair across scripts and tokenizers.
"""

import argparse
import csv
import hashlib
import importlib.util
import json
import math
import os
import random
import re
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from unittest import mock

import pyarrow.parquet as pq
import torch
import torch.nn.functional as F
from babel import Locale
from babel.core import get_global
from tqdm import tqdm

# The paper's FLORES-200 prompt (PAPER.md "Evaluation"), literally: 3 shots then the query.
FLORES_SHOT = "[{src}]: {src_text}\n[{tgt}]: {tgt_text}\n"
FLORES_QUERY = "Translate the following sentence from {src} to {tgt}\n[{src}]: {text}\n[{tgt}]:"
N_SHOTS = 3
PAPER_SAMPLING = (0.6, 0.9)  # temperature, top-p of the paper's sampled decoding

# SIB-200: the dataset's 7 topics. The paper publishes no prompt: ours lists them, then "Topic:".
SIB200_TOPICS = ["science/technology", "travel", "politics", "sports", "health", "entertainment", "geography"]
SIB200_PROMPT = "Topics: " + ", ".join(SIB200_TOPICS) + ".\nText: {text}\nTopic:"
# lm-evaluation-harness's per-language words (tasks/xcopa/utils.py, tasks/xnli/utils.py); English for
# languages they lack (recorded in the results as prompt_lang).
XCOPA_CONNECTORS = {  # lang: (cause, effect)
    "en": ("because", "therefore"), "et": ("sest", "seetõttu"), "ht": ("poukisa", "donk sa"),
    "it": ("perché", "quindi"), "id": ("karena", "maka"), "qu": ("imataq", "chaymi"),
    "sw": ("kwa sababu", "kwa hiyo"), "zh": ("因为", "所以"), "ta": ("காரணமாக", "எனவே"),
    "th": ("เพราะ", "ดังนั้น"), "tr": ("çünkü", "bu yüzden"), "vi": ("bởi vì", "vì vậy"),
}
XNLI_WORDS = {  # lang: (question word, entailment, neutral, contradiction)
    "en": ("right", "Yes", "Also", "No"), "ar": ("صحيح", "نعم", "لذا", "رقم"),
    "bg": ("правилно", "да", "така", "не"), "de": ("richtig", "Ja", "Auch", "Nein"),
    "el": ("σωστός", "Ναί", "Έτσι", "όχι"), "es": ("correcto", "Sí", "Asi que", "No"),
    "fr": ("correct", "Oui", "Aussi", "Non"), "hi": ("सही", "हाँ", "इसलिए", "नहीं"),
    "ru": ("правильно", "Да", "Так", "Нет"), "sw": ("sahihi", "Ndiyo", "Hivyo", "Hapana"),
    "th": ("ถูกต้อง", "ใช่", "ดังนั้น", "ไม่"), "tr": ("doğru", "Evet", "Böylece", "Hayır"),
    "ur": ("صحیح", "جی ہاں", "اس لئے", "نہیں"), "vi": ("đúng", "Vâng", "Vì vậy", "Không"),
    "zh": ("正确", "是的", "所以", "不是的"),
}
MC_TASKS = ("sib200", "belebele", "xcopa", "xstorycloze", "xnli", "arc")
TASKS = ("flores", *MC_TASKS, "mgsm", "ppl")
DATA_EXTS = (".jsonl", ".tsv", ".parquet")
TASK_METRICS = {  # task: (metrics shown in tables, note printed above them)
    "flores": (["chrf++", "bleu"], "chrF++ and {bleu}; 3-shot, {decoding}, devtest."),
    "ppl": (["bits_per_byte"], "bits per UTF-8 byte = NLL (nats) / ln 2 / bytes."),
    "mgsm": (["acc"], "direct answer, last number exact match."),
    "mc": (["acc", "acc_norm"], "acc: argmax log-likelihood; acc_norm: the same per UTF-8 byte of choice."),
}


class DataError(ValueError):
    """Bad input (file, record, option): the CLI prints it as one line and exits non-zero."""


def read_records(path: Path) -> list[dict]:
    if path.suffix == ".parquet":
        return pq.read_table(path).to_pylist()
    with open(path, encoding="utf-8", newline="") as f:
        if path.suffix == ".tsv":
            return list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
        records = []
        for line_no, line in enumerate(f, 1):
            try:
                records += [json.loads(line)] if line.strip() else []
            except json.JSONDecodeError as e:
                raise DataError(f"{path}:{line_no}: not valid JSON ({e.msg})") from None
        return records


def task_file(data_dir: Path, lang: str) -> Path:
    for ext in DATA_EXTS:
        if (data_dir / f"{lang}{ext}").exists():
            return data_dir / f"{lang}{ext}"
    raise DataError(f"{data_dir / lang}{{{','.join(DATA_EXTS)}}}: no file for language {lang!r}")


def flores_file(data_dir: Path, split: str, code: str) -> Path:
    for path in (data_dir / split / f"{code}.{split}", data_dir / split / f"{code}.parquet"):
        if path.exists():
            return path
    raise DataError(f"{data_dir / split / code}.{split}: no such file (nor {code}.parquet) for {code!r}")


def read_flores(data_dir: Path, split: str, code: str) -> list[str]:
    path = flores_file(data_dir, split, code)
    if path.suffix == ".parquet":
        table = pq.read_table(path)
        if "text" not in table.column_names:
            raise DataError(f"{path}: no column 'text' (has {table.column_names})")
        return [str(t) for t in table.column("text").to_pylist()]
    lines = path.read_text(encoding="utf-8").split("\n")
    return lines[:-1] if lines[-1] == "" else lines


def check_aligned(data_dir: Path, codes: list[str]) -> None:
    """FLORES is line-aligned across languages; a mismatch means a corrupt or foreign file."""
    for split in ("dev", "devtest"):
        counts = {code: len(read_flores(data_dir, split, code)) for code in codes}
        for code, n in counts.items():
            if n != counts[codes[0]]:
                first = flores_file(data_dir, split, codes[0])
                raise DataError(f"{flores_file(data_dir, split, code)}: {n} lines, but {first} has "
                                f"{counts[codes[0]]}: not line-aligned")


def read_json(path) -> dict:
    try:
        return json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise DataError(f"{path}: not valid JSON ({e})") from None


def get(record: dict, key: str, where: str):
    if record.get(key) is None:
        raise DataError(f"{where}: missing field {key!r}")
    return record[key]


def label_index(value, n_choices: int, where: str, offset: int = 0, names: list | None = None) -> int:
    """value: an index (+ offset: 1-based fields), or one of `names` (SIB-200 topics, ARC letters)."""
    label = (names.index(value) if value in names else -1) if names else \
        int(value) - offset if str(value).isdigit() else -1
    if not 0 <= label < n_choices:
        raise DataError(f"{where}: label {value!r} outside the {n_choices} choices")
    return label


def language_name(code: str, style: str = "cldr") -> str:
    """CLDR English name ("French", "Chinese (Traditional)"); the script is named when it is not the
    language's CLDR-likely one (or that is unknown). Unknown languages fall back to the code."""
    if style == "code":
        return code
    lang, _, script = code.partition("_")
    english = Locale("en")
    base = (get_global("language_aliases").get(lang) or lang).split("_")[0]
    name = english.languages.get(base) or english.languages.get(lang)
    if not name:
        return code
    likely = get_global("likely_subtags").get(base, "").split("_")
    return name + (f" ({english.scripts.get(script, script)})" if script and likely[1:2] != [script] else "")


def flores_prompts(src_dev, tgt_dev, src_test, src_name, tgt_name, seed, src, tgt) -> list[str]:
    """Shots come from dev, drawn by a per-sentence seed: a prompt never depends on the batch."""
    if len(src_dev) < N_SHOTS:
        raise DataError(f"FLORES dev of {src} has {len(src_dev)} lines: {N_SHOTS} shots needed")
    prompts = []
    for i, text in enumerate(src_test):
        shots = random.Random(f"{seed}-{src}-{tgt}-{i}").sample(range(len(src_dev)), N_SHOTS)
        prompts.append("".join(FLORES_SHOT.format(src=src_name, tgt=tgt_name, src_text=src_dev[j],
                                                  tgt_text=tgt_dev[j]) for j in shots)
                       + FLORES_QUERY.format(src=src_name, tgt=tgt_name, text=text))
    return prompts


@dataclass
class MCItem:
    context: str
    choices: list[str]  # continuations exactly as scored (leading space included)
    label: int


def mc_items(task: str, records: list[dict], lang: str, path: Path) -> tuple[list[MCItem], str]:
    """The items, and the language whose prompt words were used (XCOPA/XNLI; else lang)."""
    items, prompt_lang = [], lang
    iso639_1 = (get_global("language_aliases").get(lang.split("_")[0]) or lang.split("_")[0]).split("_")[0]
    for i, r in enumerate(records):
        where = f"{path}: record {i + 1}"
        if task == "sib200":
            context, choices = SIB200_PROMPT.format(text=get(r, "text", where)), SIB200_TOPICS
            label = label_index(get(r, "category", where), len(SIB200_TOPICS), where, names=SIB200_TOPICS)
        elif task == "belebele":
            answers = [get(r, f"mc_answer{k}", where) for k in range(1, 5)]
            context = (f"P: {get(r, 'flores_passage', where)}\nQ: {str(get(r, 'question', where)).strip()}\n"
                       + "".join(f"{letter}: {a}\n" for letter, a in zip("ABCD", answers)) + "Answer:")
            choices = ["A", "B", "C", "D"]
            label = label_index(get(r, "correct_answer_num", where), 4, where, offset=1)
        elif task == "xcopa":
            prompt_lang = iso639_1 if iso639_1 in XCOPA_CONNECTORS else "en"
            question = get(r, "question", where)
            if question not in ("cause", "effect"):
                raise DataError(f"{where}: question {question!r} is neither 'cause' nor 'effect'")
            connector = XCOPA_CONNECTORS[prompt_lang][question == "effect"]
            context = f"{str(get(r, 'premise', where)).strip()[:-1]} {connector}"  # no full stop (lm-eval)
            choices = [c[:1].lower() + c[1:] for c in (get(r, "choice1", where), get(r, "choice2", where))]
            label = label_index(get(r, "label", where), 2, where)
        elif task == "xstorycloze":
            context = " ".join(str(get(r, f"input_sentence_{k}", where)) for k in range(1, 5))
            choices = [get(r, "sentence_quiz1", where), get(r, "sentence_quiz2", where)]
            label = label_index(get(r, "answer_right_ending", where), 2, where, offset=1)
        elif task == "xnli":
            prompt_lang = iso639_1 if iso639_1 in XNLI_WORDS else "en"
            question, *answers = XNLI_WORDS[prompt_lang]
            context = f"{get(r, 'premise', where)}, {question}?"
            choices = [f"{a}, {get(r, 'hypothesis', where)}" for a in answers]
            label = label_index(get(r, "label", where), 3, where)
        elif task == "arc":
            choices = [o for o in (r.get(f"option_{k}") for k in "abcde") if o not in (None, "")]
            context = f"Question: {get(r, 'instruction', where)}\nAnswer:"
            label = label_index(str(get(r, "answer", where)).strip(), len(choices), where, names=[*"ABCDE"])
        else:
            raise DataError(f"unknown task {task!r}")
        items.append(MCItem(context, [" " + str(c) for c in choices], label))
    return items, prompt_lang


def device_of(model) -> torch.device:
    return next(model.parameters()).device


@torch.no_grad()
def score_choices(model, tok, items: list[MCItem], batch_size: int, desc: str = "") -> list[list[float]]:
    """Log-likelihood (nats) of every choice. Each question is packed as context + choice_1 + ... +
    choice_k and run through ONE forward: choice j attends to the context and causally to itself, its
    RoPE positions restart where the context ends. Questions are sorted by length, batched and right
    padded; a pad attends only to itself (no all-masked softmax row -> no NaN) and no real position
    attends to a pad, so a score never depends on its batch."""
    max_len, encoded = model.args.max_seq_len, []
    for item in items:
        context, choices = tok.encode(item.context, bos=True), [tok.encode(c) for c in item.choices]
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
    argmax = lambda xs: max(range(len(xs)), key=lambda j: (xs[j], -j))  # ties: the first choice
    acc = sum(argmax(s) == it.label for it, s in zip(items, scores))
    acc_norm = sum(argmax([ll / len(c.encode()) for ll, c in zip(s, it.choices)]) == it.label
                   for it, s in zip(items, scores))
    return {"acc": acc / len(items), "acc_norm": acc_norm / len(items), "n": len(items)}


def newline_stop_ids(tok) -> list[int]:
    """Ids whose text contains a newline (generation stops there), plus end of text/turn."""
    newline = {i for i in range(tok.n_base) if "\n" in tok.decode([i])}
    return sorted(newline | {tok.eos_id, getattr(tok, "eot_id", tok.eos_id)})


_NEWLINE_STOPS: dict[str, list[int]] = {}


def generate_lines(model, tok, prompts: list[str], args, seed_key: str, desc: str = "") -> list[str]:
    """First line of each continuation; prompts batched by length (order restored); greedy unless
    args.temperature > 0, then seeded by (seed, seed_key) so a direction's samples are reproducible.
    The stop token is kept and the text cut at its newline: Llama 3's split regex merges punctuation
    with the newline ('.\\n' is one token), so cutting before the token would lose the final period."""
    if tok.sha256 not in _NEWLINE_STOPS:  # once per tokenizer: one pass over the vocabulary
        _NEWLINE_STOPS[tok.sha256] = newline_stop_ids(tok)
    room = model.args.max_seq_len - args.max_new_tokens
    if room < 2:
        raise DataError(f"--max-new-tokens {args.max_new_tokens} leaves no room for a prompt in max_seq_len "
                        f"{model.args.max_seq_len}")
    encoded = [ids[:1] + ids[len(ids) - room + 1:] if len(ids) > room else ids  # keep BOS, cut the oldest
               for ids in (tok.encode(p, bos=True) for p in prompts)]
    order = sorted(range(len(prompts)), key=lambda i: (-len(encoded[i]), i))
    generator = None
    if args.temperature > 0:
        generator = torch.Generator(device_of(model))
        generator.manual_seed(int(hashlib.sha256(f"{args.seed}-{seed_key}".encode()).hexdigest()[:15], 16))
    lines = [""] * len(prompts)
    for start in tqdm(range(0, len(order), args.batch_size), desc=desc, leave=False):
        batch = order[start:start + args.batch_size]
        outputs = model.generate([encoded[i] for i in batch], args.max_new_tokens, args.temperature,
                                 args.top_p, _NEWLINE_STOPS[tok.sha256], generator, include_stop=True)
        for i, out in zip(batch, outputs):
            if out and out[-1] in (tok.eos_id, getattr(tok, "eot_id", tok.eos_id)):  # no text of their own
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


def translation_metrics(spm: str | None):
    """chrF++ always; spBLEU when sentencepiece and the flores200 SentencePiece model are local, else
    BLEU 13a. sacrebleu 2.6 reads that model from SACREBLEU_DIR/models/flores200sacrebleuspm
    (tokenizers/tokenizer_spm.py) and downloads it when absent, so --spm PATH is linked there from a
    temporary SACREBLEU_DIR while the metric is built, and its download_file is replaced by an error."""
    from sacrebleu.metrics import BLEU, CHRF
    from sacrebleu.tokenizers import tokenizer_spm

    have_spm = importlib.util.find_spec("sentencepiece") is not None
    cached = Path(tokenizer_spm.SACREBLEU_DIR) / "models" / "flores200sacrebleuspm"
    if spm is not None and not (Path(spm).is_file() and have_spm):
        raise DataError(f"{spm}: --spm needs this SentencePiece model file and the sentencepiece package")
    if spm is None and not (have_spm and cached.is_file()):
        return CHRF(word_order=2), BLEU(tokenize="13a"), "bleu"

    def no_download(url, path, *_, **__):
        raise DataError(f"sacrebleu wants to download {url} to {path}: give the model as --spm")

    home = tokenizer_spm.SACREBLEU_DIR
    with tempfile.TemporaryDirectory() as tmp, mock.patch.object(tokenizer_spm, "download_file", no_download):
        if spm is not None:
            home = tmp
            (Path(tmp) / "models").mkdir()
            (Path(tmp) / "models" / cached.name).symlink_to(Path(spm).resolve())
        with mock.patch.object(tokenizer_spm, "SACREBLEU_DIR", home):
            return CHRF(word_order=2), BLEU(tokenize="flores200"), "spbleu"


def translation_scores(hyps: list[str], refs: list[str], metrics) -> dict:
    chrf, bleu, bleu_name = metrics
    return {"chrf++": chrf.corpus_score(hyps, [refs]).score, bleu_name: bleu.corpus_score(hyps, [refs]).score,
            "n": len(hyps)}


def last_number(text: str) -> float | None:
    numbers = re.findall(r"-?\d[\d,]*(?:\.\d+)?", text)
    return float(numbers[-1].replace(",", "")) if numbers else None


def load_tiers(args) -> dict[str, str]:
    """--tier-map {lang: tier}, or from --index: a language's tier is that of its bilingual source paired
    with the centre, as mix.py put it in a mix.json (the mix config's thresholds: the demo's scaled ones),
    or for an index.json by the paper's thresholds."""
    if args.tier_map:
        return read_json(args.tier_map)
    if not args.index:
        return {}
    from mix import PAPER_TIER_THRESHOLDS, tier_of  # the paper's thresholds live in mix.py

    sources = read_json(args.index).get("sources")
    if isinstance(sources, list):  # mix.py's mix.json: every source with its tier
        tier = lambda s, where: get(s, "tier", where)
    elif isinstance(sources, dict):  # prepare_mala.py's index.json: word counts only
        sources = [{"name": name, **s} for name, s in sources.items()]
        tier = lambda s, where: tier_of(get(s, "n_words", where), PAPER_TIER_THRESHOLDS)
    else:
        raise DataError(f"{args.index}: no 'sources' list (mix.py's mix.json) or dict (an index.json)")
    tiers = {}
    for source in sources:
        langs = source.get("langs", [])
        if source.get("kind") == "bi" and args.centre in langs and len(langs) == 2:
            other = langs[1 - langs.index(args.centre)]
            tiers.setdefault(other, tier(source, f"{args.index}: source {source.get('name')!r}"))
    return tiers


def write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


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


def task_units(args, data_dir: Path) -> list[dict]:
    """What gets one score each (FLORES directions, else languages). Every file is read and checked
    here, before minutes go into loading the model."""
    flores_layout = args.task == "flores" or (args.task == "ppl" and (data_dir / "devtest").is_dir())
    exts = (".txt",) if args.task == "ppl" else DATA_EXTS
    found = ({p.name.split(".")[0] for p in (data_dir / "devtest").glob("*.*")} if flores_layout
             else {p.stem for p in data_dir.glob("*") if p.suffix in exts})
    langs = args.langs or sorted(found)
    if not langs:
        raise DataError(f"{data_dir}: no data files for task {args.task}")
    c = args.centre
    if args.task == "flores":
        others = [lang for lang in langs if lang != c]
        pairs = ([tuple(p.split("-", 1)) for p in args.pairs] if args.pairs else
                 [(c, x) for x in others] + [(x, c) for x in others])
        check_aligned(data_dir, sorted({code for pair in pairs for code in pair}))
        return [{"key": f"{src}-{tgt}", "src": src, "tgt": tgt,
                 "lang": tgt if src == c else src if tgt == c else f"{src}-{tgt}",
                 "direction": f"{c}->X" if src == c else f"X->{c}" if tgt == c else ""} for src, tgt in pairs]
    units = [{"key": lang, "lang": lang, "path": flores_file(data_dir, "devtest", lang) if flores_layout else
              data_dir / f"{lang}.txt" if args.task == "ppl" else task_file(data_dir, lang)}
             for lang in langs]
    for unit in units:
        unit_inputs(unit, args, data_dir)  # parses every record: a bad label fails now, not after hours
    return units


def unit_inputs(unit: dict, args, data_dir: Path) -> dict:
    if args.task == "flores":
        src, tgt = unit["src"], unit["tgt"]
        prompts = flores_prompts(read_flores(data_dir, "dev", src), read_flores(data_dir, "dev", tgt),
                                 read_flores(data_dir, "devtest", src)[: args.limit],
                                 language_name(src, args.lang_names), language_name(tgt, args.lang_names),
                                 args.seed, src, tgt)
        return {"prompts": prompts, "refs": read_flores(data_dir, "devtest", tgt)[: len(prompts)]}
    path = unit["path"]
    if args.task == "ppl":
        if path.suffix != ".txt":
            return {"texts": read_flores(data_dir, "devtest", unit["lang"])[: args.limit]}
        if not path.is_file():
            raise DataError(f"{path}: no file for language {unit['lang']!r}")
        return {"texts": [t for t in path.read_text(encoding="utf-8").split("\n") if t.strip()][: args.limit]}
    records = read_records(path)[: args.limit]
    if args.task == "mgsm":
        where = [f"{path}: record {i + 1}" for i in range(len(records))]
        try:
            gold = [float(str(get(r, "answer_number", w)).replace(",", "")) for r, w in zip(records, where)]
        except ValueError as e:
            raise DataError(f"{path}: answer_number is not a number ({e})") from None
        return {"prompts": [f"Question: {get(r, 'question', w)}\nAnswer:" for r, w in zip(records, where)],
                "gold": gold}
    items, prompt_lang = mc_items(args.task, records, unit["lang"], path)
    return {"items": items, "prompt_lang": prompt_lang}


def score_unit(unit: dict, model, tok, args, data_dir: Path, metrics) -> dict:
    inputs, desc = unit_inputs(unit, args, data_dir), f"{args.task} {unit['key']}"
    if args.task == "flores":
        hyps = generate_lines(model, tok, inputs["prompts"], args, unit["key"], desc)
        return translation_scores(hyps, inputs["refs"], metrics)
    if args.task == "ppl":
        return nll_bytes(model, tok, inputs["texts"], args.batch_size, desc)
    if args.task == "mgsm":
        answers, gold = generate_lines(model, tok, inputs["prompts"], args, unit["key"], desc), inputs["gold"]
        return {"acc": sum(last_number(a) == g for a, g in zip(answers, gold)) / len(gold), "n": len(gold)}
    scores = mc_metrics(inputs["items"], score_choices(model, tok, inputs["items"], args.batch_size, desc))
    return {**scores, "prompt_lang": inputs["prompt_lang"]} if args.task in ("xcopa", "xnli") else scores


def evaluate(args, model, tok, ckpt: str = "", units: list[dict] | None = None) -> dict:
    """Scores every unit still missing from args.out, rewriting it atomically after each one."""
    data_dir, out = Path(args.data), Path(args.out)
    units = units if units is not None else task_units(args, data_dir)
    metrics = translation_metrics(args.spm) if args.task == "flores" else None
    config = {"task": args.task, "checkpoint": ckpt, "tokenizer_sha256": tok.sha256, "limit": args.limit}
    if args.task in ("flores", "mgsm"):  # everything a score depends on: resume only when unchanged
        config.update(max_new_tokens=args.max_new_tokens, temperature=args.temperature, top_p=args.top_p,
                      seed=args.seed, **({"lang_names": args.lang_names, "shots": N_SHOTS, "bleu": metrics[2]}
                                         if metrics else {}))
    tiers = load_tiers(args)
    results = read_json(out) if out.exists() else {"format": 1, "checkpoint": ckpt, "tasks": {}}
    if "tasks" not in results or "checkpoint" not in results:
        raise DataError(f"{out}: not an evaluate.py results file; use another --out")
    if (results["checkpoint"], results.get("tokenizer", {}).get("sha256", tok.sha256)) != (ckpt, tok.sha256):
        raise DataError(f"{out}: holds scores of {results['checkpoint']!r} or of another tokenizer; "
                        "use another --out")
    results["tokenizer"] = {"path": str(getattr(tok, "path", "")), "sha256": tok.sha256}
    section = results["tasks"].get(args.task) or {"config": config, "scores": {}}
    if section["config"] != config:
        old = section["config"]
        changed = sorted(k for k in {**config, **old} if config.get(k) != old.get(k))
        raise DataError(f"{out}: holds {args.task} scores with other settings ({', '.join(changed)}); "
                        "use another --out")
    section["tiers"] = {u["lang"]: tiers[u["lang"]] for u in units if u["lang"] in tiers}
    section["metrics"], note = TASK_METRICS.get(args.task, TASK_METRICS["mc"])
    if args.task == "flores":
        section["metrics"] = ["chrf++", metrics[2]]
        note = note.format(bleu="spBLEU (flores200)" if metrics[2] == "spbleu" else "BLEU 13a",
                           decoding="greedy" if args.temperature == 0 else "sampled")
    section["notes"], results["tasks"][args.task] = [note], section
    todo = [u for u in units if u["key"] not in section["scores"]]
    for unit in tqdm(todo, desc=args.task, disable=len(todo) < 2):
        score = score_unit(unit, model, tok, args, data_dir, metrics)
        section["scores"][unit["key"]] = {"lang": unit["lang"], "direction": unit.get("direction", ""),
                                          **score}
        if metrics:  # sacrebleu knows its signature (number of references...) only after scoring
            section["signatures"] = {"chrf++": str(metrics[0].get_signature()),
                                     metrics[2]: str(metrics[1].get_signature())}
        write_atomic(out, json.dumps(results, indent=1, ensure_ascii=False))
    write_atomic(out, json.dumps(results, indent=1, ensure_ascii=False))
    write_atomic(out.with_suffix(".md"), results_markdown(results))
    return results


def load_model(args):
    from model import load_hf
    from tokenizer import Tokenizer

    ckpt = Path(args.ckpt)
    if not (ckpt / "config.json").exists() and not (ckpt / "params.json").exists():
        raise DataError(f"{ckpt}: no config.json or params.json (not a checkpoint folder)")
    candidates = [Path(args.tokenizer)] if args.tokenizer else [ckpt / "tokenizer.model",
                                                                 ckpt / "original" / "tokenizer.model"]
    tok_path = next((p for p in candidates if p.is_file()), None)
    if tok_path is None:
        raise DataError(f"{candidates[0]}: no tokenizer.model (give --tokenizer)")
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    dtype = getattr(torch, args.dtype or ("bfloat16" if device == "cuda" else "float32"))
    model, tok = load_hf(ckpt, device=device, dtype=dtype).eval(), Tokenizer(tok_path)
    if model.args.vocab_size < tok.n_vocab:
        raise DataError(f"{tok_path}: {tok.n_vocab} tokens, more than the model's {model.args.vocab_size}")
    return model, tok


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--compare", nargs=2, metavar=("A_JSON", "B_JSON"), help="print deltas b - a and exit")
    p.add_argument("--ckpt", help="Hugging Face (or Meta) checkpoint folder")
    p.add_argument("--task", help="|".join(TASKS))
    p.add_argument("--data", help="data folder (layouts in the module docstring)")
    p.add_argument("--out", help="results JSON (a .md table is written next to it)")
    p.add_argument("--tokenizer", help="default: <ckpt>/tokenizer.model, else <ckpt>/original/...")
    p.add_argument("--langs", nargs="+", help="languages (default: every file in --data)")
    p.add_argument("--pairs", nargs="+", help="flores: explicit src-tgt directions instead of the centre's")
    p.add_argument("--centre", default="eng_Latn", help="flores: evaluate centre->X and X->centre")
    p.add_argument("--lang-names", choices=("cldr", "code"), default="cldr", help="flores prompt names")
    p.add_argument("--index", metavar="JSON", help="tier of a language = tier of its pair with --centre, "
                   "from a mix.json (mix.py's tiers, by its config's thresholds: the demo's scaled ones) or "
                   "an index.json (the paper's thresholds); detected by content")
    p.add_argument("--tier-map", help="JSON {lang: tier} instead of --index")
    p.add_argument("--spm", help="flores200 SentencePiece model for spBLEU (default: sacrebleu's cache)")
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--max-new-tokens", type=int, default=256)
    p.add_argument("--sample", action="store_true", help="the paper's sampling: temperature 0.6, top-p 0.9")
    p.add_argument("--temperature", type=float, default=None)
    p.add_argument("--top-p", type=float, default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--limit", type=int, default=None, help="first N examples per language (smoke runs)")
    p.add_argument("--device", default=None)
    p.add_argument("--dtype", default=None, help="bfloat16 on cuda, float32 on cpu by default")
    args = p.parse_args(argv)
    temperature, top_p = PAPER_SAMPLING if args.sample else (0.0, 1.0)
    args.temperature = temperature if args.temperature is None else args.temperature
    args.top_p = top_p if args.top_p is None else args.top_p
    if not args.compare:
        missing = [f"--{k}" for k in ("ckpt", "task", "data", "out") if getattr(args, k) is None]
        if missing:
            raise DataError(f"missing {', '.join(missing)} (or use --compare A B)")
        if args.task not in TASKS:
            raise DataError(f"unknown task {args.task!r}: choose from {', '.join(TASKS)}")
        if not Path(args.data).is_dir():
            raise DataError(f"{args.data}: no such data folder")
    return args


def main(argv=None) -> None:
    try:
        args = parse_args(argv)
        if args.compare:
            print(compare(*args.compare))
            return
        units = task_units(args, Path(args.data))  # bad data or tiers fail before the model loads
        load_tiers(args)
        model, tok = load_model(args)
        print(results_markdown(evaluate(args, model, tok, ckpt=str(Path(args.ckpt)), units=units)))
    except (DataError, FileNotFoundError) as e:
        raise SystemExit(f"evaluate.py: error: {e}") from None


if __name__ == "__main__":
    main(sys.argv[1:])
