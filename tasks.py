"""The benchmarks of the paper as data: how each task's files are laid out and read, and how a record
becomes a prompt (translation) or a context with choices (multiple choice). One TASKS entry per task;
evaluate.py reads only this table. A new multiple-choice task is an item function and one entry:

    def my_item(record, lang, where):  # where: "file: record N", for errors
        return MCItem(f"Question: {record['q']}\nAnswer:", record["options"], int(record["gold"]))
    TASKS["my_task"] = Task("choice", "DIR/<lang>.jsonl: q, options, gold", my_item)

Prompts follow lm-evaluation-harness where the paper gives none (SIB-200's is ours); the FLORES prompt
is the paper's (docs/method.md).
"""

import csv
import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pyarrow.parquet as pq
from babel import Locale
from babel.core import get_global

# The paper's FLORES-200 prompt (docs/method.md), literally: 3 shots then the query.
FLORES_SHOT = "[{src}]: {src_text}\n[{tgt}]: {tgt_text}\n"
FLORES_QUERY = "Translate the following sentence from {src} to {tgt}\n[{src}]: {text}\n[{tgt}]:"
N_SHOTS = 3
PAPER_SAMPLING = (0.6, 0.9)  # temperature, top-p of the paper's sampled decoding
# SIB-200: the dataset's 7 topics. The paper publishes no prompt: ours lists them, then "Topic:".
SIB200_TOPICS = ["science/technology", "travel", "politics", "sports", "health", "entertainment", "geography"]
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
DATA_EXTS = (".jsonl", ".tsv", ".parquet")


class DataError(ValueError):
    """Bad input (file, record, option): evaluate.py prints it as one line and exits non-zero."""


# ----------------------------------------------------------------------------- multiple-choice items


@dataclass
class MCItem:
    context: str
    choices: list[str]  # as lm-eval's doc_to_choice gives them: scored after a " " delimiter
    label: int
    prompt_lang: str = ""  # the language of the prompt words (XCOPA, XNLI), when not the item's


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


def iso639_1(lang: str) -> str:
    return (get_global("language_aliases").get(lang.split("_")[0]) or lang.split("_")[0]).split("_")[0]


def sib200_item(r: dict, lang: str, where: str) -> MCItem:
    context = "Topics: " + ", ".join(SIB200_TOPICS) + f".\nText: {get(r, 'text', where)}\nTopic:"
    label = label_index(get(r, "category", where), 7, where, names=SIB200_TOPICS)
    return MCItem(context, SIB200_TOPICS, label)


def belebele_item(r: dict, lang: str, where: str) -> MCItem:
    answers = [get(r, f"mc_answer{k}", where) for k in range(1, 5)]
    context = (f"P: {get(r, 'flores_passage', where)}\nQ: {str(get(r, 'question', where)).strip()}\n"
               + "".join(f"{letter}: {a}\n" for letter, a in zip("ABCD", answers)) + "Answer:")
    return MCItem(context, [*"ABCD"], label_index(get(r, "correct_answer_num", where), 4, where, offset=1))


def xcopa_item(r: dict, lang: str, where: str) -> MCItem:
    prompt_lang = iso639_1(lang) if iso639_1(lang) in XCOPA_CONNECTORS else "en"
    question = get(r, "question", where)
    if question not in ("cause", "effect"):
        raise DataError(f"{where}: question {question!r} is neither 'cause' nor 'effect'")
    connector = XCOPA_CONNECTORS[prompt_lang][question == "effect"]
    context = f"{str(get(r, 'premise', where)).strip()[:-1]} {connector}"  # no full stop (lm-eval)
    choices = [c[:1].lower() + c[1:] for c in (get(r, "choice1", where), get(r, "choice2", where))]
    return MCItem(context, choices, label_index(get(r, "label", where), 2, where), prompt_lang)


def xstorycloze_item(r: dict, lang: str, where: str) -> MCItem:
    context = " ".join(str(get(r, f"input_sentence_{k}", where)) for k in range(1, 5))
    choices = [get(r, "sentence_quiz1", where), get(r, "sentence_quiz2", where)]
    return MCItem(context, choices, label_index(get(r, "answer_right_ending", where), 2, where, offset=1))


def xnli_item(r: dict, lang: str, where: str) -> MCItem:
    prompt_lang = iso639_1(lang) if iso639_1(lang) in XNLI_WORDS else "en"
    question, *answers = XNLI_WORDS[prompt_lang]
    choices = [f"{a}, {get(r, 'hypothesis', where)}" for a in answers]
    return MCItem(f"{get(r, 'premise', where)}, {question}?", choices, label_index(get(r, "label", where), 3,
                                                                                   where), prompt_lang)


def arc_item(r: dict, lang: str, where: str) -> MCItem:
    choices = [o for o in (r.get(f"option_{k}") for k in "abcde") if o not in (None, "")]
    label = label_index(str(get(r, "answer", where)).strip(), len(choices), where, names=[*"ABCDE"])
    return MCItem(f"Question: {get(r, 'instruction', where)}\nAnswer:", choices, label)


# ----------------------------------------------------------------------------- the tasks: one entry each


@dataclass(frozen=True)
class Task:
    kind: str  # "choice" (log-likelihood of choices), "translate", "answer" (a number), "nll" (bits/byte)
    layout: str  # what --data holds
    item: Callable[[dict, str, str], MCItem] | None = None  # choice tasks: (record, lang, where) -> MCItem


PER_LANG = "DIR/<lang>.jsonl|.tsv|.parquet:"
TASKS = {  # a new multiple-choice task: its item function and one entry here
    "flores": Task("translate", "DIR/{dev,devtest}/<code>.{dev,devtest} (FLORES-200, one sentence a line, "
                   "line-aligned) or DIR/{dev,devtest}/<code>.parquet with `text` (FLORES+)"),
    "sib200": Task("choice", f"{PER_LANG} text, category", sib200_item),
    "belebele": Task("choice", f"{PER_LANG} flores_passage, question, mc_answer1..4, correct_answer_num",
                     belebele_item),
    "xcopa": Task("choice", f"{PER_LANG} premise, choice1, choice2, question, label", xcopa_item),
    "xstorycloze": Task("choice", f"{PER_LANG} input_sentence_1..4, sentence_quiz1/2, answer_right_ending",
                        xstorycloze_item),
    "xnli": Task("choice", f"{PER_LANG} premise, hypothesis, label (0 entail., 1 neutral, 2 contra.)",
                 xnli_item),
    "arc": Task("choice", f"{PER_LANG} instruction, option_a..option_e, answer (A-E), as okapi m_arc",
                arc_item),
    "mgsm": Task("answer", f"{PER_LANG} question, answer_number"),
    "ppl": Task("nll", "DIR/<lang>.txt (a document a non-empty line), or a FLORES folder (devtest)"),
}
# ----------------------------------------------------------------------------- data files


def read_records(path: Path) -> list[dict]:
    if path.suffix == ".parquet":
        return pq.read_table(path).to_pylist()
    with open(path, encoding="utf-8-sig", newline="") as f:  # -sig: a byte order mark is not data
        if path.suffix == ".tsv":
            return list(csv.DictReader(f, delimiter="\t", quoting=csv.QUOTE_NONE))
        records = []
        for line_no, line in enumerate(f, 1):
            try:
                records += [json.loads(line)] if line.strip() else []
            except json.JSONDecodeError as e:
                raise DataError(f"{path}:{line_no}: not valid JSON ({e.msg})") from None
        return records


def find_file(data_dir: Path, lang: str, split: str | None = None) -> Path:
    """DIR/<lang>.{jsonl,tsv,parquet}, or for a FLORES split DIR/split/<lang>.{split,parquet}."""
    names = [f"{split}/{lang}.{split}", f"{split}/{lang}.parquet"] if split else [lang + e for e in DATA_EXTS]
    if path := next((data_dir / n for n in names if (data_dir / n).exists()), None):
        return path
    raise DataError(f"{data_dir / names[0]}: no such file (nor {', '.join(names[1:])}) for {lang!r}")


def read_flores(data_dir: Path, split: str, code: str) -> list[str]:
    path = find_file(data_dir, code, split)
    if path.suffix == ".parquet":
        table = pq.read_table(path)
        if "text" not in table.column_names:
            raise DataError(f"{path}: no column 'text' (has {table.column_names})")
        return [str(t) for t in table.column("text").to_pylist()]
    lines = path.read_text(encoding="utf-8-sig").split("\n")
    return lines[:-1] if lines[-1] == "" else lines


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
