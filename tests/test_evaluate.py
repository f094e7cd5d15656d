"""evaluate.py and tasks.py: one-forward multiple-choice scoring vs plain forwards, batch invariance, the
paper's FLORES prompt in both layouts, sacrebleu parity, spBLEU from a local SentencePiece model (never
downloaded), newline stop handling, bits per byte, errors, compare, tiers from index.json and mix.json,
resume, per-example samples, and a task registered from outside."""

import dataclasses
import hashlib
import json
import math
import random
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sacrebleu
import torch

import evaluate
import tasks
from checkpoint import save_hf
from model import PRESETS, Llama
from tokenizer import train_bpe

ROOT = Path(__file__).resolve().parent.parent


class ByteTokenizer:
    """Byte-level stand-in with the tokenizer.py interface (ids 0..255 = bytes, then 3 specials)."""

    n_base, bos_id, eos_id, eot_id, n_vocab, sha256, path = 256, 256, 257, 258, 259, "bytes-v1", "bytes"

    def encode(self, s, bos=False, eos=False):
        return [self.bos_id] * bos + list(s.encode()) + [self.eos_id] * eos

    def decode(self, ids):
        return bytes(i for i in ids if i < 256).decode("utf-8", errors="replace")


def tiny_model(vocab_size, cls=Llama, seed=0):
    torch.manual_seed(seed)
    model = cls(dataclasses.replace(PRESETS["tiny"], vocab_size=vocab_size))
    model.init_weights()
    with torch.no_grad():
        model.output.weight.mul_(20)  # peaked distributions: choices differ clearly in likelihood
    return model.eval()


class PrefersB(Llama):
    """Same forward signature, output rigged so that the byte 'B' always wins."""

    def forward(self, idx, targets=None, *, positions=None, mask=None):
        logits, loss = super().forward(idx, targets, positions=positions, mask=mask)
        logits[..., ord("B")] += 30.0
        return logits, loss


def run_eval(task, data, out, model=None, tok=None, **options):
    """evaluate.evaluate with a tiny byte-level model unless one is given."""
    tok = tok or ByteTokenizer()
    model = model or tiny_model(tok.n_vocab)
    return evaluate.evaluate(model, tok, task, data, out, checkpoint="ckpt", **options)


def write_jsonl(path, records):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), encoding="utf-8")


def belebele_records(n, answer):
    return [
        {
            "flores_passage": f"Passage {i} about Bern and Basel.",
            "question": f"Which city {i}? ",
            "mc_answer1": "Bern",
            "mc_answer2": "Basel",
            "mc_answer3": "Genf",
            "mc_answer4": "Chur",
            "correct_answer_num": str(answer),
        }
        for i in range(n)
    ]


FLORES = {  # 6 dev + 3 devtest lines per language, line-aligned
    "eng_Latn": [f"English sentence {i}." for i in range(9)],
    "fra_Latn": [f"Phrase française {i}." for i in range(9)],
    "zho_Hant": [f"繁體中文句子{i}。" for i in range(9)],
}


def write_flores(root, layout, langs=FLORES):
    for split, lines in (("dev", slice(0, 6)), ("devtest", slice(6, 9))):
        (root / split).mkdir(parents=True, exist_ok=True)
        for code, sentences in langs.items():
            if layout == "text":
                (root / split / f"{code}.{split}").write_text(
                    "\n".join(sentences[lines]) + "\n", encoding="utf-8"
                )
            else:  # FLORES+ parquet: more columns than text
                table = pa.table({"id": list(range(len(sentences[lines]))), "text": sentences[lines]})
                pq.write_table(table, root / split / f"{code}.parquet")
    return root


# ----------------------------------------------------------------------------- multiple choice


def mc_fixture_items():
    return [
        tasks.MCItem(
            f"Context {i}: " + "abc " * (i % 5) + "?" + " " * (i % 2),  # odd items end in a space
            ["yes", "no way", "maybe" * (1 + i % 3), "ok"][: 2 + i % 3],
            i % 2,
        )
        for i in range(11)
    ]


def test_choice_loglik_equals_plain_forward_and_is_batch_invariant():
    tok, model = ByteTokenizer(), tiny_model(ByteTokenizer.n_vocab)
    items = mc_fixture_items()
    plain = []
    with torch.no_grad():
        for item in items:  # lm-eval's request: the trailing space of the context goes with the choice
            context, row = tok.encode(item.context.rstrip(), bos=True), []
            for choice in item.choices:
                continuation = tok.encode(item.context[len(item.context.rstrip()):] + " " + choice)
                logp = model(torch.tensor([context + continuation]))[0][0].log_softmax(-1)
                row.append(sum(logp[len(context) - 1 + k, t].item() for k, t in enumerate(continuation)))
            plain.append(row)
    by_batch = {bs: evaluate.score_choices(model, tok, items, bs) for bs in (1, 3, 8)}
    for scores in by_batch.values():
        assert [len(s) for s in scores] == [len(it.choices) for it in items]
        for got, want in zip(scores, plain):
            assert got == pytest.approx(want, abs=1e-5)
    metrics = [evaluate.mc_metrics(items, s) for s in by_batch.values()]
    assert metrics[0] == metrics[1] == metrics[2]
    assert min(abs(a - b) for r in plain for a, b in zip(r, r[1:])) > 0.1  # choices really differ


def test_rigged_model_gets_every_B_right(tmp_path):
    data = tmp_path / "belebele"
    write_jsonl(data / "fra_Latn.jsonl", belebele_records(5, answer=2))
    records = belebele_records(3, answer=2)
    pq.write_table(pa.Table.from_pylist(records), data / "deu_Latn.parquet")
    (data / "ita_Latn.tsv").write_text(
        "\t".join(records[0]) + "\n" + "".join("\t".join(r.values()) + "\n" for r in records),
        encoding="utf-8",
    )
    write_jsonl(tmp_path / "all_a" / "fra_Latn.jsonl", belebele_records(4, answer=1))
    model, tok = tiny_model(ByteTokenizer.n_vocab, cls=PrefersB), ByteTokenizer()
    results = run_eval("belebele", data, tmp_path / "r.json", model, tok, batch_size=2)
    scores = results["tasks"]["belebele"]["scores"]
    assert sorted(scores) == ["deu_Latn", "fra_Latn", "ita_Latn"]
    assert all(s["acc"] == 1.0 and s["acc_norm"] == 1.0 for s in scores.values())
    assert [scores[k]["n"] for k in sorted(scores)] == [3, 5, 3]
    wrong = run_eval("belebele", tmp_path / "all_a", tmp_path / "a.json", model, tok)
    assert wrong["tasks"]["belebele"]["scores"]["fra_Latn"]["acc"] == 0.0
    assert "acc_bytes (per UTF-8 byte)" in (tmp_path / "r.md").read_text()


def test_task_prompts_follow_lm_eval(tmp_path):
    item = lambda task, record, lang: tasks.TASKS[task].item(record, lang, "x.jsonl: record 1")
    xcopa = {"premise": "Mees jäi haigeks.", "choice1": "Ta sõi liiga palju.", "choice2": "Ta jooksis.",
             "question": "cause", "label": 0}
    it = item("xcopa", xcopa, "est_Latn")
    assert (it.prompt_lang, it.context, it.choices) == ("et", "Mees jäi haigeks sest",
                                                       ["ta sõi liiga palju.", "ta jooksis."])
    it = item("xnli", {"premise": "Er schläft", "hypothesis": "Er ist wach", "label": 2}, "de")
    assert (it.prompt_lang, it.context, it.label) == ("de", "Er schläft, richtig?", 2)
    assert it.choices == ["Ja, Er ist wach", "Auch, Er ist wach", "Nein, Er ist wach"]
    arc = {"instruction": "2+2?", "option_a": "3", "option_b": "4", "option_c": "5", "option_d": "",
           "option_e": None, "answer": "B"}
    it = item("arc", arc, "de")
    assert (it.context, it.choices, it.label) == ("Question: 2+2?\nAnswer:", ["3", "4", "5"], 1)
    it = item("sib200", {"text": "Der Ball ist rund.", "category": "sports"}, "deu_Latn")
    assert it.context.endswith("Text: Der Ball ist rund.\nTopic:") and it.label == 3
    assert len(it.choices) == 7 and it.choices[3] == "sports"


def test_a_multiple_choice_task_is_one_table_entry(tmp_path, monkeypatch):
    """A task added from outside: its item function and one TASKS entry; reading, scoring, resume,
    tables and samples need nothing else."""
    def yes_no_item(record, lang, where):
        return tasks.MCItem(f"{record['q']}\nAnswer:", ["yes", "no"], int(record["gold"]))

    monkeypatch.setitem(tasks.TASKS, "yesno", tasks.Task("choice", "DIR/<lang>.jsonl: q, gold", yes_no_item))
    write_jsonl(tmp_path / "yn" / "deu_Latn.jsonl", [{"q": f"Is {i} even?", "gold": i % 2} for i in range(4)])
    results = run_eval("yesno", tmp_path / "yn", tmp_path / "r.json", log_samples=True)
    score = results["tasks"]["yesno"]["scores"]["deu_Latn"]
    assert score["n"] == 4 and set(score) >= {"acc", "acc_norm", "acc_bytes"}
    samples = [json.loads(line) for line in (tmp_path / "r.yesno.samples.jsonl").read_text().splitlines()]
    assert [s["label"] for s in samples] == [0, 1, 0, 1]
    assert all(len(s["loglikelihoods"]) == 2 for s in samples)
    assert "| deu_Latn |" in (tmp_path / "r.md").read_text()


# ----------------------------------------------------------------------------- translation


def empty_sacrebleu_dir(tmp_path, monkeypatch):
    """sacrebleu's folder (models are cached and downloaded there) -> an empty one, for evaluate.py and for
    sacrebleu itself (the oracle); sacrebleu downloading anything fails the test."""
    from sacrebleu.tokenizers import tokenizer_spm

    home = tmp_path / "sacrebleu_home"
    home.mkdir()
    monkeypatch.setattr(evaluate, "SACREBLEU_DIR", str(home))
    monkeypatch.setattr(tokenizer_spm, "SACREBLEU_DIR", str(home))
    monkeypatch.setattr(tokenizer_spm, "download_file", lambda *a, **k: pytest.fail(f"download {a}"))
    return home


def test_metrics_equal_sacrebleu_corpus_scores(tmp_path, monkeypatch):
    empty_sacrebleu_dir(tmp_path, monkeypatch)  # no flores200 model anywhere: BLEU 13a
    hyps = ["The cat sat on the mat.", "A quick brown fox jumps", "Hello there, world!"]
    refs = ["The cat is sitting on the mat.", "The quick brown fox jumped.", "Hello, world!"]
    metrics = evaluate.TranslationMetrics(None)
    scores = metrics.scores(hyps, refs)
    chrf_pp = sacrebleu.corpus_chrf(hyps, [refs], word_order=2).score
    assert scores["chrf++"] == pytest.approx(chrf_pp, abs=1e-9)
    assert abs(chrf_pp - sacrebleu.corpus_chrf(hyps, [refs]).score) > 0.1  # chrF++ is not plain chrF
    assert metrics.bleu_name == "bleu"
    bleu_13a = sacrebleu.corpus_bleu(hyps, [refs], tokenize="13a").score
    assert scores["bleu"] == pytest.approx(bleu_13a, abs=1e-9)
    assert "nw:2" in metrics.signatures()["chrf++"] and "tok:13a" in metrics.signatures()["bleu"]
    with pytest.raises(tasks.DataError, match="nowhere.model"):
        evaluate.TranslationMetrics("/nowhere.model")


def test_flores_prompts_are_the_papers_template_in_both_layouts(tmp_path):
    prompts = {}
    for layout in ("text", "parquet"):
        data = write_flores(tmp_path / layout, layout)
        units = evaluate.task_units("flores", data)
        assert [u["key"] for u in units] == ["eng_Latn-fra_Latn", "eng_Latn-zho_Hant", "fra_Latn-eng_Latn",
                                             "zho_Hant-eng_Latn"]
        prompts[layout] = {u["key"]: evaluate.unit_inputs("flores", u, data) for u in units}
    assert prompts["text"] == prompts["parquet"]
    eng, fra = FLORES["eng_Latn"], FLORES["fra_Latn"]
    shots = random.Random("0-eng_Latn-fra_Latn-1").sample(range(6), 3)

    def paper_prompt(s, t):  # the paper's template (docs/method.md), written out independently
        return "".join(f"[{s}]: {eng[j]}\n[{t}]: {fra[j]}\n" for j in shots) + (
            f"Translate the following sentence from {s} to {t}\n[{s}]: {eng[7]}\n[{t}]:"
        )

    inputs = prompts["text"]["eng_Latn-fra_Latn"]
    assert inputs["prompts"][1] == paper_prompt("English", "French") and inputs["refs"] == fra[6:9]
    assert inputs["sources"] == eng[6:9]
    zh = prompts["text"]["zho_Hant-eng_Latn"]["prompts"][0]
    assert zh.endswith(
        f"from Chinese (Traditional) to English\n[Chinese (Traditional)]: {FLORES['zho_Hant'][6]}\n[English]:"
    )
    coded = evaluate.task_units("flores", tmp_path / "text")[0]
    coded_prompts = evaluate.unit_inputs("flores", coded, tmp_path / "text", limit=2, lang_names="code")
    assert coded_prompts["prompts"][1] == paper_prompt("eng_Latn", "fra_Latn")
    assert len(coded_prompts["prompts"]) == 2


class ScriptedModel(torch.nn.Module):
    """generate() streams reply(prompt) and cuts it at the first stop token as Llama.generate does
    (include_stop: the stop token stays last). reply: a fixed token list, or a function of the prompt."""

    def __init__(self, reply):
        super().__init__()
        self.anchor = torch.nn.Parameter(torch.zeros(1))
        self.args = SimpleNamespace(max_seq_len=512)
        self.reply, self.calls = reply, []

    def generate(self, prompts, max_new_tokens, temperature=0.0, top_p=1.0, stop_tokens=(), generator=None,
                 include_stop=False):
        self.calls.append({"stop_tokens": list(stop_tokens), "include_stop": include_stop})
        rows = []
        for prompt in prompts:
            stream = (self.reply(prompt) if callable(self.reply) else list(self.reply))[:max_new_tokens]
            cut = next((j for j, t in enumerate(stream) if t in stop_tokens), None)
            rows.append(stream if cut is None else stream[:cut + include_stop])
        return rows


def test_newline_stop_keeps_text_merged_into_the_stop_token(tmp_path):
    tok = train_bpe(
        ["Le chat dort.\nLe chien court.\n"] * 20 + ["Bonjour le monde.\n"] * 20, 270, tmp_path / "tok.model"
    )
    period_newline = tok.encode(".\n")
    assert len(period_newline) == 1  # the merge Llama 3 also has: '.\n' is one token
    stop_ids = evaluate.newline_stop_ids(tok)
    assert period_newline[0] in stop_ids and 10 in stop_ids and tok.eos_id in stop_ids
    assert tok.encode("Le chat")[0] not in stop_ids
    reply, tail = tok.encode(" Bonjour le monde"), tok.encode("Le chat dort")
    for ending, line in (
        (period_newline[0], "Bonjour le monde."),  # the period lives in the stop token
        (10, "Bonjour le monde"),
        (tok.eos_id, "Bonjour le monde"),  # end of text: no '<|end_of_text|>' in the line
    ):
        model = ScriptedModel(reply + [ending] + tail)
        assert evaluate.generate_lines(model, tok, ["a", "bb", "c"], 16, batch_size=4) == [line] * 3
        assert model.calls == [{"stop_tokens": stop_ids, "include_stop": True}]
    budget = len(reply) + 2  # no stop within the budget: the whole continuation
    assert evaluate.generate_lines(ScriptedModel(reply + tail), tok, ["a"], budget) == [
        tok.decode((reply + tail)[:budget]).strip()]


def test_flores_end_to_end_is_batch_invariant_and_logs_every_sample(tmp_path):
    data = write_flores(tmp_path / "flores", "text")
    model, tok = tiny_model(ByteTokenizer.n_vocab), ByteTokenizer()
    runs = []
    for bs in (1, 3):
        options = dict(lang_names="code", max_new_tokens=6, batch_size=bs, langs=["eng_Latn", "fra_Latn"])
        unit = evaluate.task_units("flores", data, options["langs"])[0]
        prompts = evaluate.unit_inputs("flores", unit, data, lang_names="code")["prompts"]
        runs.append((evaluate.generate_lines(model, tok, prompts, 6, batch_size=bs),
                     run_eval("flores", data, tmp_path / f"r{bs}.json", model, tok, log_samples=True,
                              tiers={"fra_Latn": "high"}, **options)))
    assert runs[0][0] == runs[1][0] and all(len(line) > 0 for line in runs[0][0])
    section = runs[0][1]["tasks"]["flores"]
    assert section["scores"] == runs[1][1]["tasks"]["flores"]["scores"]
    assert sorted(section["scores"]) == ["eng_Latn-fra_Latn", "fra_Latn-eng_Latn"]
    assert section["scores"]["eng_Latn-fra_Latn"]["direction"] == "eng_Latn->X"
    assert "chrf++" in section["signatures"] and section["config"]["tokenizer_sha256"] == "bytes-v1"
    assert set(runs[0][1]["versions"]) == {"python", "torch", "sacrebleu", "tiktoken"}
    # every example, and the scores recomputed from the samples alone with sacrebleu
    samples = [json.loads(line) for line in (tmp_path / "r1.flores.samples.jsonl").read_text().splitlines()]
    assert len(samples) == 6 and samples[0]["hypothesis"] == runs[0][0][0]
    assert set(samples[0]) == {"task", "unit", "lang", "tier", "src_lang", "tgt_lang", "prompt", "source",
                               "reference", "hypothesis"}
    assert samples[0]["tier"] == "high" and samples[0]["source"] == FLORES["eng_Latn"][6]
    for key, score in section["scores"].items():
        rows = [s for s in samples if s["unit"] == key]
        chrf = sacrebleu.corpus_chrf([r["hypothesis"] for r in rows], [[r["reference"] for r in rows]],
                                     word_order=2).score
        assert score["chrf++"] == pytest.approx(chrf, abs=1e-9)


def train_spm(tmp_path, lines):
    """A tiny SentencePiece model standing in for the flores200 one (same format, ~1 s to train)."""
    import sentencepiece

    (tmp_path / "spm.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    sentencepiece.SentencePieceTrainer.train(
        input=str(tmp_path / "spm.txt"), model_prefix=str(tmp_path / "tiny_spm"), vocab_size=120,
        character_coverage=1.0, hard_vocab_limit=False, num_threads=1, minloglevel=2,
    )
    return tmp_path / "tiny_spm.model"


def test_spbleu_with_a_local_model_never_downloads(tmp_path, monkeypatch):
    home = empty_sacrebleu_dir(tmp_path, monkeypatch)
    rng = random.Random(0)
    words = {"eng_Latn": "the cat dog house river city green small quick sleeps near over".split(),
             "fra_Latn": "le chat chien maison rivière ville vert petit rapide dort près sur".split()}
    langs = {code: [" ".join(rng.choice(w) for _ in range(8)).capitalize() + "." for _ in range(9)]
             for code, w in words.items()}
    data = write_flores(tmp_path / "flores", "text", langs)
    spm = train_spm(tmp_path, [" ".join(rng.choice(w) for _ in range(10)) for w in words.values()
                               for _ in range(150)])
    hyps = {}  # the "model" answers a devtest line's reference with its 3rd word changed, then a newline
    for src, tgt in (("eng_Latn", "fra_Latn"), ("fra_Latn", "eng_Latn")):
        for text, ref in zip(langs[src][6:], langs[tgt][6:]):
            hyps[text] = " ".join(ref.split()[:2] + ["xyz"] + ref.split()[3:])
    tok = ByteTokenizer()
    model = ScriptedModel(lambda p: tok.encode(" " + hyps[tok.decode(p).split("\n")[-2].split(": ", 1)[1]]
                                               + "\n[x]: more"))
    section = run_eval("flores", data, tmp_path / "r.json", model, tok, lang_names="code",
                       spm=str(spm))["tasks"]["flores"]
    score = section["scores"]["eng_Latn-fra_Latn"]
    refs, got = langs["fra_Latn"][6:], [hyps[t] for t in langs["eng_Latn"][6:]]
    assert list(home.iterdir()) == []  # nothing downloaded nor cached into sacrebleu's folder
    (home / "models").mkdir()
    (home / "models" / "flores200sacrebleuspm").symlink_to(spm)
    bleu = sacrebleu.BLEU(tokenize="flores200")  # reads the linked file
    assert score["spbleu"] == pytest.approx(bleu.corpus_score(got, [refs]).score, abs=1e-9)
    assert abs(score["spbleu"] - sacrebleu.corpus_bleu(got, [refs], tokenize="13a").score) > 1  # not 13a
    assert 0 < score["spbleu"] < 100 and "bleu" not in score
    assert "tok:none" in section["signatures"]["spbleu"]
    assert "spm:flores200" in section["signatures"]["spbleu"]
    assert section["config"]["bleu"] == "spbleu"
    assert section["metrics"] == ["chrf++", "spbleu"] and "spBLEU (flores200)" in section["notes"][0]
    # the model in sacrebleu's own folder is used without --spm; an empty folder gives BLEU 13a
    cached = run_eval("flores", data, tmp_path / "c.json", model, tok, lang_names="code")
    assert cached["tasks"]["flores"]["scores"]["eng_Latn-fra_Latn"]["spbleu"] == score["spbleu"]
    for path in (home / "models").iterdir():
        path.unlink()
    plain = run_eval("flores", data, tmp_path / "p.json", model, tok, lang_names="code")
    plain = plain["tasks"]["flores"]
    assert plain["scores"]["eng_Latn-fra_Latn"]["bleu"] == pytest.approx(
        sacrebleu.corpus_bleu(got, [refs], tokenize="13a").score, abs=1e-9)
    assert "BLEU 13a" in plain["notes"][0] and "tok:13a" in plain["signatures"]["bleu"]


# ----------------------------------------------------------------------------- perplexity, mgsm


def test_bits_per_byte_equals_plain_cross_entropy(tmp_path):
    model, tok = tiny_model(ByteTokenizer.n_vocab), ByteTokenizer()
    texts = ["Hello world", "Grüße aus Zürich", "x"]
    nll = 0.0
    for t in texts:
        ids = tok.encode(t, bos=True)
        logits = model(torch.tensor([ids[:-1]]))[0][0]
        nll += torch.nn.functional.cross_entropy(logits, torch.tensor(ids[1:]), reduction="sum").item()
    n_bytes = sum(len(t.encode()) for t in texts)
    for bs in (1, 2):
        got = evaluate.nll_bytes(model, tok, texts, bs)
        assert got["bytes"] == n_bytes == 31 and got["tokens"] == 31  # 1 byte = 1 token
        assert got["bits_per_byte"] == pytest.approx(nll / math.log(2) / n_bytes, rel=1e-5)
    (tmp_path / "ppl").mkdir()
    (tmp_path / "ppl" / "deu_Latn.txt").write_text("\n".join(texts) + "\n\n", encoding="utf-8")
    results = run_eval("ppl", tmp_path / "ppl", tmp_path / "p.json", model, tok)
    assert results["tasks"]["ppl"]["scores"]["deu_Latn"]["bits_per_byte"] == pytest.approx(
        got["bits_per_byte"]
    )
    flores = run_eval("ppl", write_flores(tmp_path / "fl", "parquet"), tmp_path / "f.json", model, tok)
    assert sorted(flores["tasks"]["ppl"]["scores"]) == sorted(FLORES)


def test_mgsm_last_number(tmp_path):
    assert evaluate.last_number("So 3 apples, answer: 1,234.") == 1234.0
    assert evaluate.last_number("minus -2.5 then") == -2.5 and evaluate.last_number("none") is None
    write_jsonl(tmp_path / "mgsm" / "fr.jsonl", [{"question": "2+2?", "answer_number": 4}] * 3)
    results = run_eval("mgsm", tmp_path / "mgsm", tmp_path / "m.json", max_new_tokens=4)
    assert results["tasks"]["mgsm"]["scores"]["fr"]["n"] == 3


# ----------------------------------------------------------------------------- bad input


def test_bad_input_names_the_file(tmp_path):
    data = tmp_path / "bb"
    write_jsonl(data / "fra_Latn.jsonl", belebele_records(2, answer=1))
    out = str(tmp_path / "r.json")
    base = ["--ckpt", "nowhere", "--out", out]
    with pytest.raises(SystemExit, match=r"xxx_Latn.jsonl: no such file \(nor xxx_Latn.tsv, xxx_Latn.parq"):
        evaluate.main([*base, "--task", "belebele", "--data", str(data), "--langs", "fra_Latn", "xxx_Latn"])
    write_jsonl(data / "deu_Latn.jsonl", belebele_records(1, answer=1) + belebele_records(1, answer=5))
    with pytest.raises(SystemExit, match=r"deu_Latn.jsonl: record 2: label '5' outside the 4 choices"):
        evaluate.main([*base, "--task", "belebele", "--data", str(data)])
    write_jsonl(tmp_path / "sib" / "en.jsonl", [{"text": "x", "category": "cooking"}])
    with pytest.raises(SystemExit, match=r"en.jsonl: record 1: label 'cooking' outside the 7 choices"):
        evaluate.main([*base, "--task", "sib200", "--data", str(tmp_path / "sib")])
    flores = write_flores(tmp_path / "fl", "text")
    (flores / "devtest" / "fra_Latn.devtest").write_text("only one line\n", encoding="utf-8")
    with pytest.raises(SystemExit, match=r"devtest: not line-aligned: .*'fra_Latn': 1"):
        evaluate.main([*base, "--task", "flores", "--data", str(flores)])
    assert not Path(out).exists()  # nothing half-written
    cli = lambda *argv: subprocess.run([sys.executable, "evaluate.py", *argv], cwd=ROOT, capture_output=True,
                                       text=True)
    result = cli(*base, "--task", "translate", "--data", str(data))
    assert result.returncode == 2 and "invalid choice: 'translate'" in result.stderr  # argparse's own
    # a checkpoint that cannot be read, a tokenizer that is not one: one line naming the file, exit 1
    save_hf(tiny_model(ByteTokenizer.n_vocab), tmp_path / "ckpt")
    weights = tmp_path / "ckpt" / "model.safetensors"
    (tmp_path / "ckpt" / "tokenizer.model").write_text("this is not a tiktoken file\n")
    result = cli("--ckpt", str(tmp_path / "ckpt"), "--out", out, "--task", "belebele", "--data", str(data),
                 "--langs", "fra_Latn")
    assert result.returncode == 1 and result.stderr.count("\n") == 1
    assert result.stderr.startswith(f"evaluate.py: error: {tmp_path}/ckpt/tokenizer.model:1: malformed")
    train_bpe(["a b c"], 256, tmp_path / "ckpt" / "tokenizer.model")
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    result = cli("--ckpt", str(tmp_path / "ckpt"), "--out", out, "--task", "belebele", "--data", str(data),
                 "--langs", "fra_Latn")
    assert result.returncode == 1 and result.stderr.count("\n") == 1
    assert result.stderr.startswith(f"evaluate.py: error: {weights}: cannot read")
    assert not Path(out).exists()


def test_cli_end_to_end_with_saved_checkpoint(tmp_path):
    save_hf(tiny_model(270 + 256), tmp_path / "ckpt")
    tok = train_bpe(["Le chat dort. The cat sleeps. Die Katze schläft."] * 10, 270,
                    tmp_path / "ckpt" / "tokenizer.model")
    write_jsonl(
        tmp_path / "xcopa" / "it.jsonl",
        [
            {
                "premise": "Il gatto dorme.",
                "choice1": "Era stanco.",
                "choice2": "Era felice.",
                "question": "cause",
                "label": 0,
            }
        ]
        * 3,
    )
    out = tmp_path / "res" / "r.json"
    evaluate.main(
        [
            "--ckpt",
            str(tmp_path / "ckpt"),
            "--task",
            "xcopa",
            "--data",
            str(tmp_path / "xcopa"),
            "--out",
            str(out),
        ]
    )
    results = json.loads(out.read_text())
    assert results["tokenizer"]["sha256"] == tok.sha256 and results["checkpoint"] == str(tmp_path / "ckpt")
    assert results["tasks"]["xcopa"]["scores"]["it"]["prompt_lang"] == "it"
    assert "| it | - |" in out.with_suffix(".md").read_text()


# ----------------------------------------------------------------------------- compare, tiers, resume


def results_file(path, chrf, tiers):
    scores = {
        f"eng_Latn-{lang}": {"lang": lang, "direction": "eng_Latn->X", "chrf++": c, "bleu": c / 2}
        for lang, c in chrf.items()
    }
    scores["fra_Latn-eng_Latn"] = {
        "lang": "fra_Latn",
        "direction": "X->eng_Latn",
        "chrf++": chrf["fra_Latn"] + 10,
    }
    path.write_text(
        json.dumps(
            {
                "format": 1,
                "checkpoint": path.stem,
                "tasks": {"flores": {"metrics": ["chrf++", "bleu"], "tiers": tiers, "scores": scores}},
            }
        )
    )
    return str(path)


def table_rows(markdown):
    rows = [
        [c.strip() for c in line.strip("|").split("|")]
        for line in markdown.splitlines()
        if line.startswith("|")
    ]
    return {r[0]: dict(zip(rows[0], r)) for r in rows[2:]}


def test_compare_deltas(tmp_path, capsys):
    tiers = {"fra_Latn": "high", "deu_Latn": "high", "wol_Latn": "low"}
    a = results_file(tmp_path / "a.json", {"fra_Latn": 50.0, "deu_Latn": 40.0, "wol_Latn": 10.0}, tiers)
    b = results_file(tmp_path / "b.json", {"fra_Latn": 52.5, "deu_Latn": 39.0, "wol_Latn": 14.0}, tiers)
    evaluate.main(["--compare", a, b])
    rows = table_rows(capsys.readouterr().out)
    assert (
        rows["fra_Latn"]["eng_Latn->X chrf++"] == "+2.50"
        and rows["fra_Latn"]["X->eng_Latn chrf++"] == "+2.50"
    )
    assert rows["deu_Latn"]["eng_Latn->X bleu"] == "-0.50" and rows["deu_Latn"]["X->eng_Latn chrf++"] == ""
    assert rows["wol_Latn"]["tier"] == "low" and rows["wol_Latn"]["eng_Latn->X chrf++"] == "+4.00"
    assert rows["**high** (2)"]["eng_Latn->X chrf++"] == "+0.75"  # (2.5 - 1) / 2
    assert rows["**low** (1)"]["eng_Latn->X chrf++"] == "+4.00"
    assert rows["**all** (3)"]["eng_Latn->X chrf++"] == "+1.83"  # (2.5 - 1 + 4) / 3


def test_tiers_from_index_use_mix_thresholds(tmp_path):
    data = tmp_path / "bb"
    for lang in ("fra_Latn", "wol_Latn"):
        write_jsonl(data / f"{lang}.jsonl", belebele_records(2, answer=1))
    index = {
        "sources": {
            "eng_Latn-fra_Latn": {"kind": "bi", "langs": ["eng_Latn", "fra_Latn"], "n_words": 2e9},
            "wol_Latn-eng_Latn": {"kind": "bi", "langs": ["wol_Latn", "eng_Latn"], "n_words": 5e6},
            "wol_Latn": {"kind": "mono", "langs": ["wol_Latn"], "n_words": 9e12},
        }
    }
    (tmp_path / "index.json").write_text(json.dumps(index))
    tiers = evaluate.load_tiers(tmp_path / "index.json")
    results = run_eval("belebele", data, tmp_path / "r.json", tiers=tiers)
    assert results["tasks"]["belebele"]["tiers"] == {"fra_Latn": "high", "wol_Latn": "low"}
    rows = table_rows((tmp_path / "r.md").read_text())
    assert rows["fra_Latn"]["tier"] == "high" and "**low** (1)" in rows


def test_tiers_from_a_mix_json_use_its_thresholds(tmp_path):
    """mix.py's tiers (the demo config's thresholds, scaled down) vs the paper's, from the same data dir."""
    import mix

    data = tmp_path / "data"
    data.mkdir()
    sources = {"eng_Latn-fra_Latn": ("bi", ["eng_Latn", "fra_Latn"], 2000),
               "wol_Latn-eng_Latn": ("bi", ["wol_Latn", "eng_Latn"], 50),
               "deu_Latn-wol_Latn": ("bi", ["deu_Latn", "wol_Latn"], 5000),  # not paired with the centre
               "wol_Latn": ("mono", ["wol_Latn"], 9000)}
    (data / "tokenizer.model").write_bytes(b"bytes-v1\n")
    index = {"format": 2, "dtype": "uint32", "complete": True, "sources": {},
             "tokenizer": {"file": "tokenizer.model", "sha256": hashlib.sha256(b"bytes-v1\n").hexdigest()}}
    for name, (kind, langs, n_words) in sources.items():
        (data / f"{name}.bin").write_bytes(bytes(4 * 10))
        (data / f"{name}.val.bin").write_bytes(bytes(4 * 2))
        index["sources"][name] = {"kind": kind, "langs": langs, "n_words": n_words, "n_tokens": 10,
                                  "bin": f"{name}.bin", "val_bin": f"{name}.val.bin", "val": {"n_tokens": 2}}
    (data / "index.json").write_text(json.dumps(index))
    thresholds = {"very_high": 10_000, "high": 1_000, "medium_high": 500, "medium": 100, "medium_low": 10,
                  "low": 1, "very_low": 0}
    (tmp_path / "mix_cfg.py").write_text(
        f"tier_thresholds = {thresholds}\ntier_rates = {{t: 1.0 for t in {list(thresholds)}}}\n"
        "kinds = ['bi', 'mono']\ntotal_tokens = 1000\n")
    mix.main([str(data), "--config", str(tmp_path / "mix_cfg.py"), "--out", str(tmp_path / "mix.json")])
    bb = tmp_path / "bb"
    for lang in ("fra_Latn", "wol_Latn", "deu_Latn"):
        write_jsonl(bb / f"{lang}.jsonl", belebele_records(1, answer=1))
    model, tok = tiny_model(ByteTokenizer.n_vocab), ByteTokenizer()
    tiers = {}
    for name in ("mix.json", "data/index.json"):
        results = run_eval("belebele", bb, tmp_path / f"r_{name[:3]}.json", model, tok,
                           tiers=evaluate.load_tiers(tmp_path / name))
        tiers[name] = results["tasks"]["belebele"]["tiers"]
    assert tiers["mix.json"] == {"fra_Latn": "high", "wol_Latn": "medium_low"}
    assert tiers["data/index.json"] == {"fra_Latn": "very_low", "wol_Latn": "very_low"}  # paper: < 1M words
    assert "| wol_Latn | medium_low |" in (tmp_path / "r_mix.md").read_text()
    bad = json.loads((tmp_path / "mix.json").read_text())
    del bad["sources"][1]["tier"]
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    with pytest.raises(SystemExit, match=r"bad.json: source 'wol_Latn-eng_Latn': missing field 'tier'"):
        evaluate.main(["--ckpt", "c", "--task", "belebele", "--data", str(bb), "--out", str(tmp_path / "x"),
                       "--index", str(tmp_path / "bad.json")])
    (tmp_path / "bad.json").write_text(json.dumps({"sources": 3}))
    with pytest.raises(tasks.DataError, match=r"bad.json: no 'sources' list \(mix.py's mix.json\) or"):
        evaluate.load_tiers(tmp_path / "bad.json")


def test_resume_completes_a_partial_results_file(tmp_path, monkeypatch):
    data = tmp_path / "bb"
    for lang in ("deu_Latn", "fra_Latn", "ita_Latn"):
        write_jsonl(data / f"{lang}.jsonl", belebele_records(3, answer=2))
    model, tok = tiny_model(ByteTokenizer.n_vocab), ByteTokenizer()
    out = tmp_path / "r.json"
    run_eval("belebele", data, out, model, tok, langs=["fra_Latn"], log_samples=True)
    first = json.loads(out.read_text())["tasks"]["belebele"]["scores"]["fra_Latn"]
    samples = out.with_name("r.belebele.samples.jsonl")
    with open(samples, "a") as f:  # a killed run's samples of a unit that never reached the results
        f.write(json.dumps({"unit": "ita_Latn", "lang": "ita_Latn"}) + "\n")
    scored = []
    real = evaluate.score_unit
    monkeypatch.setattr(evaluate, "score_unit", lambda task, unit, *a: scored.append(unit["key"]) or real(
        task, unit, *a))
    results = run_eval("belebele", data, out, model, tok, log_samples=True)
    assert scored == ["deu_Latn", "ita_Latn"]
    assert results["tasks"]["belebele"]["scores"]["fra_Latn"] == first
    units = [json.loads(line)["unit"] for line in samples.read_text().splitlines()]
    assert units == ["fra_Latn"] * 3 + ["deu_Latn"] * 3 + ["ita_Latn"] * 3  # the stale line is gone
    run_eval("belebele", data, out, model, tok)
    assert scored == ["deu_Latn", "ita_Latn"]  # complete: nothing recomputed
    with pytest.raises(tasks.DataError, match=r"r.json: holds belebele scores with other settings \(limit\)"):
        run_eval("belebele", data, out, model, tok, limit=2)


def test_language_names():
    assert tasks.language_name("fra_Latn") == "French"
    assert tasks.language_name("zho_Hans") == "Chinese"
    assert tasks.language_name("zho_Hant") == "Chinese (Traditional)"
    assert tasks.language_name("kas_Deva") == "Kashmiri (Devanagari)"
    assert tasks.language_name("qqq_Latn") == "qqq_Latn"
    assert tasks.language_name("fra_Latn", "code") == "fra_Latn"


def test_sampling_is_seeded_per_direction():
    model, tok = tiny_model(ByteTokenizer.n_vocab), ByteTokenizer()
    prompts = ["[eng_Latn]: a\n[fra_Latn]:", "[eng_Latn]: bb\n[fra_Latn]:", "[eng_Latn]: c\n[fra_Latn]:"]
    sample = lambda key: evaluate.generate_lines(model, tok, prompts, 8, batch_size=2, temperature=0.6,
                                                 top_p=0.9, seed_key=key)
    first = sample("0-eng_Latn-fra_Latn")
    assert sample("0-eng_Latn-fra_Latn") == first
    others = [sample(f"{s}-eng_Latn-fra_Latn") for s in (1, 2, 3)]
    assert any(o != first for o in others)
    assert evaluate.parse_args(["--compare", "a", "b", "--sample"]).temperature == 0.6
