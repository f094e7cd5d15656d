"""prepare_mala.py: every input format -> exact token streams, drop counts, errors, resume, determinism."""

import gzip
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import prepare_mala as pm
from tokenizer import Tokenizer, train_bpe

ROOT = Path(__file__).resolve().parent.parent
WORDS = {"Latn": "cat dog house river tree sun moon star city bread water fire".split(),
         "Cyrl": "кошка собака дом река дерево солнце луна звезда город хлеб вода огонь".split()}


def sentence(script: str, i: int, tag: str) -> str:
    w = WORDS[script]
    return f"{tag} {w[i % 12]} {w[(i * 7 + 3) % 12]} {i}."


def make_pairs(src: str, tgt: str, n: int) -> list[tuple[str, str]]:
    return [(sentence(src[-4:], i, src[:3]), sentence(tgt[-4:], i, tgt[:3])) for i in range(n)]


def write_jsonl(path: Path, rows, gz=False) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode()
    path.write_bytes(gzip.compress(data, mtime=0) if gz else data)


def build_inputs(root: Path) -> dict:
    """One source per supported format; returns {source: (kind, langs, expected cleaned records)}."""
    expected = {}
    # MaLA parquet (pyarrow, small row groups so the reader crosses batches); messy whitespace + NFD text,
    # and one row listed in the opposite direction (row codes swapped) which is turned back
    pairs = make_pairs("eng_Latn", "fra_Latn", 13)
    rows = [{"src_text": a, "tgt_text": b, "src_lang": "eng_Latn", "tgt_lang": "fra_Latn"} for a, b in pairs]
    rows[2] = {"src_text": "  Le  chat\u00a0e\u0301te\u0301\t ", "tgt_text": "The\n cat   summer ",
               "src_lang": "fra_Latn", "tgt_lang": "eng_Latn"}
    pairs[2] = ("The cat summer", "Le chat \u00e9t\u00e9")
    folder = root / "bi" / "eng_Latn-fra_Latn"
    folder.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(rows), folder / "part-0.parquet", row_group_size=4)
    expected["eng_Latn-fra_Latn"] = ("bi", pairs)
    # MaLA jsonl.gz
    pairs = make_pairs("eng_Latn", "deu_Latn", 8)
    write_jsonl(root / "bi" / "eng_Latn-deu_Latn" / "train.jsonl.gz",
                [{"src_text": a, "tgt_text": b} for a, b in pairs], gz=True)
    expected["eng_Latn-deu_Latn"] = ("bi", pairs)
    # MaLA-OPUS <pair>/<pair>_<N>.jsonl.gz, shards read in natural order (_2 before _10)
    pairs = make_pairs("eng_Latn", "rus_Cyrl", 12)
    opus = [{"source_text": a, "target_text": b, "source_lang": "eng_Latn", "target_lang": "rus_Cyrl"}
            for a, b in pairs]
    write_jsonl(root / "bi" / "eng_Latn-rus_Cyrl" / "eng_Latn-rus_Cyrl_2.jsonl.gz", opus[:7], gz=True)
    write_jsonl(root / "bi" / "eng_Latn-rus_Cyrl" / "eng_Latn-rus_Cyrl_10.jsonl.gz", opus[7:], gz=True)
    expected["eng_Latn-rus_Cyrl"] = ("bi", pairs)
    # Moses
    pairs = make_pairs("eng_Latn", "spa_Latn", 7)
    folder = root / "bi" / "eng_Latn-spa_Latn"
    folder.mkdir()
    (folder / "train.eng_Latn").write_text("".join(a + "\n" for a, _ in pairs))
    (folder / "train.spa_Latn").write_text("".join(b + "\r\n" for _, b in pairs))
    expected["eng_Latn-spa_Latn"] = ("bi", pairs)
    # TSV
    pairs = make_pairs("ita_Latn", "ukr_Cyrl", 9)
    folder = root / "bi" / "ita_Latn-ukr_Cyrl"
    folder.mkdir()
    (folder / "data.tsv").write_text("".join(f"{a}\t{b}\n" for a, b in pairs))
    expected["ita_Latn-ukr_Cyrl"] = ("bi", pairs)
    # MaLA monolingual: documents keep their lines (cleaned); validation.jsonl is not ours to train on
    docs = [f"{sentence('Latn', i, 'fra')}\n\n  {sentence('Latn', i + 1, 'fra')}  " for i in range(9)]
    write_jsonl(root / "mono" / "fra_Latn" / "train.jsonl", [{"text": d} for d in docs])
    write_jsonl(root / "mono" / "fra_Latn" / "validation.jsonl", [{"text": "held by MaLA"}])
    expected["fra_Latn"] = ("mono", [(f"{sentence('Latn', i, 'fra')}\n{sentence('Latn', i + 1, 'fra')}",)
                                     for i in range(9)])
    return expected


@pytest.fixture(scope="module")
def small_tok(tmp_path_factory) -> Path:
    texts = [f"[{a}]: {sentence(a[-4:], i, a[:3])}" for i in range(40) for a in ("eng_Latn", "rus_Cyrl")]
    path = tmp_path_factory.mktemp("tok") / "tokenizer.model"
    train_bpe(texts * 3, 320, path)
    return path


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("inputs")
    return root, build_inputs(root)


def run(inputs_root, out, tok, *extra):
    return pm.main(["--input", str(inputs_root), "--out", str(out), "--tokenizer", str(tok),
                    "--group-size", "3", "--val-share", "0", *map(str, extra)])


def expected_documents(name, kind, records, group_size=3):
    """The pseudo-documents as the contract describes them, built independently of prepare_mala."""
    if kind == "mono":
        return [(g, r[0], 1) for g, r in enumerate(records)]
    src, tgt = name.split("-")
    groups = [records[i:i + group_size] for i in range(0, len(records), group_size)]
    return [(g, "\n".join(f"[{src}]: {a}\n[{tgt}]: {b}" for a, b in group), len(group))
            for g, group in enumerate(groups)]


def read_tokens(path: Path) -> np.ndarray:
    return np.fromfile(path, dtype="<u4")


def test_every_format_gives_the_exact_token_stream(inputs, small_tok, tmp_path):
    root, expected = inputs
    out = tmp_path / "out"
    run(root, out, small_tok)
    tok = Tokenizer(small_tok)
    index = json.loads((out / "index.json").read_text())
    assert index["format"] == 2 and index["dtype"] == "uint32" and index["complete"] is True
    assert index["tokenizer"] == {"file": "tokenizer.model", "sha256": tok.sha256, "n_vocab": tok.n_vocab,
                                  "bos_id": tok.bos_id, "eos_id": tok.eos_id,
                                  "made_from": str(small_tok.resolve())}
    assert (out / "tokenizer.model").read_bytes() == small_tok.read_bytes()  # the folder's own copy
    assert sorted(index["sources"]) == sorted(expected)
    for name, (kind, records) in expected.items():
        entry = index["sources"][name]
        assert entry["kind"] == kind and entry["langs"] == name.split("-")
        assert entry["dropped"] == dict.fromkeys(pm.DROP_REASONS, 0), name
        docs = expected_documents(name, kind, records)
        held = {1, 3}  # --val-docs 2 (default) with --val-share 0: the first two odd groups
        for split, file_name, stats, want in (
                ("train", entry["bin"], entry, [d for d in docs if d[0] not in held]),
                ("val", entry["val_bin"], entry["val"], [d for d in docs if d[0] in held])):
            data = (out / file_name).read_bytes()
            ids = read_tokens(out / file_name)
            ref = [t for _, text, _ in want for t in [tok.bos_id, *tok.encode(text), tok.eos_id]]
            assert ids.tolist() == ref, (name, split)
            # the same seen from the file: documents split at BOS decode to the expected texts
            starts = np.flatnonzero(ids == tok.bos_id).tolist()
            decoded = [tok.decode(ids[s + 1:e - 1]) for s, e in zip(starts, starts[1:] + [len(ids)])]
            assert decoded == [text for _, text, _ in want]
            assert all(ids[e - 1] == tok.eos_id for e in starts[1:] + [len(ids)])
            assert stats["n_tokens"] == len(data) // 4 == len(ids)
            assert stats["n_docs"] == int((ids == tok.bos_id).sum()) == len(want)
            assert stats["sha256"] == hashlib.sha256(data).hexdigest()
            units = sum(n for _, _, n in want)
            assert (stats["n_pairs"], stats["n_lines"]) == ((units, 0) if kind == "bi" else (0, units))
            assert stats["n_words"] == sum(len(r.split()) for _, text, _ in want
                                           for r in (text.split("\n") if kind == "mono" else
                                                     [line.split(": ", 1)[1] for line in text.split("\n")]))
        if kind == "bi":  # group size and tags: every train document is 3 pairs (the last may be shorter)
            first = tok.decode(read_tokens(out / entry["bin"])[1:]).split("\n")
            assert [line.split(": ")[0] for line in first[:6]] == [f"[{c}]" for c in name.split("-")] * 3
    # train and held-out documents are disjoint
    fra_train = tok.decode(read_tokens(out / "eng_Latn-fra_Latn.bin"))
    fra_val = tok.decode(read_tokens(out / "eng_Latn-fra_Latn.val.bin"))
    assert fra_val and not set(fra_val.split("\n")) & set(fra_train.split("\n"))


def test_directions_template_and_seed(tmp_path, small_tok):
    pairs = make_pairs("eng_Latn", "rus_Cyrl", 40)
    write_jsonl(tmp_path / "in" / "eng_Latn-rus_Cyrl" / "train.jsonl",
                [{"src_text": a, "tgt_text": b} for a, b in pairs])
    tok = Tokenizer(small_tok)

    def docs(directions, seed=0, template="[{code}]: {text}"):
        out = tmp_path / f"{directions}-{seed}-{len(template)}"
        run(tmp_path / "in", out, small_tok, "--directions", directions, "--seed", seed,
            "--template", template, "--group-size", 2, "--val-docs", 0)
        return tok.decode(read_tokens(out / "eng_Latn-rus_Cyrl.bin")).split("<|begin_of_text|>")[1:]

    fwd = docs("fwd")
    assert len(fwd) == 20 and fwd[0] == f"[eng_Latn]: {pairs[0][0]}\n[rus_Cyrl]: {pairs[0][1]}\n" \
                                       f"[eng_Latn]: {pairs[1][0]}\n[rus_Cyrl]: {pairs[1][1]}<|end_of_text|>"
    both = docs("both")
    assert len(both) == 40 and both[0] == fwd[0]
    assert both[1] == f"[rus_Cyrl]: {pairs[0][1]}\n[eng_Latn]: {pairs[0][0]}\n" \
                      f"[rus_Cyrl]: {pairs[1][1]}\n[eng_Latn]: {pairs[1][0]}<|end_of_text|>"
    rand = docs("random")
    assert rand == docs("random") and rand != docs("random", seed=1)
    assert 0 < sum(d.startswith("[eng_Latn]") for d in rand) < 20
    assert all(d in (fwd[g], both[2 * g + 1]) for g, d in enumerate(rand))
    assert docs("fwd", template="<{code}> {text}")[0].startswith(f"<eng_Latn> {pairs[0][0]}\n<rus_Cyrl> ")


def test_bad_lines_are_skipped_and_counted(tmp_path, small_tok, capsys):
    folder = tmp_path / "in" / "eng_Latn-fra_Latn"
    good = [{"src_text": f"good {i}", "tgt_text": f"bon {i}"} for i in range(3)]
    lines = [json.dumps(good[0]),
             '{"src_text": "broken", ',                                           # 2 malformed
             json.dumps({"src_text": "", "tgt_text": "vide"}),                   # 3 empty
             json.dumps({"src_text": "x" * 51, "tgt_text": "long"}),             # 4 too_long
             json.dumps({"src_text": "Привет мир", "tgt_text": "Bonjour"}),      # 5 script_mismatch
             json.dumps(good[0]),                                                # 6 duplicate
             json.dumps({"src_text": 5, "tgt_text": "cinq"}),                   # 7 malformed (type)
             json.dumps({"src_text": "a", "tgt_text": "b", "src_lang": "deu_Latn"}),  # 8 malformed: codes
             "[1, 2]",                                                           # 9 malformed
             json.dumps(good[1]), json.dumps({"text": "mono line in a pair file"}),  # 11 malformed
             json.dumps({"src_text": "good  2 ", "tgt_text": "bon 2"})]          # 12 kept
    folder.mkdir(parents=True)
    data = "\n".join(lines).encode() + b'\n{"src_text": "bad \xff byte", "tgt_text": "x"}\n'  # 13 bad_utf8
    (folder / "train.jsonl").write_bytes(data)
    moses = tmp_path / "in" / "eng_Latn-spa_Latn"
    moses.mkdir()
    (moses / "m.eng_Latn").write_bytes(b"one\ntwo \xc3\x28\nthree\n")
    (moses / "m.spa_Latn").write_bytes(b"uno\ndos\ntres\n")
    tsv = tmp_path / "in" / "eng_Latn-ita_Latn"
    tsv.mkdir()
    (tsv / "a.tsv").write_text("one\tuno\ntwo\tdue\textra\n\tvuoto\n")
    unknown = tmp_path / "in" / "eng_Latn-abc_Qaaa"  # Qaaa: a script suffix the table does not know
    write_jsonl(unknown / "train.jsonl", [{"src_text": f"w {i}", "tgt_text": f"Ѯ {i}"} for i in range(4)])
    sources = run(tmp_path / "in", tmp_path / "out", small_tok, "--max-chars", 50)
    zero = dict.fromkeys(pm.DROP_REASONS, 0)
    assert sources["eng_Latn-fra_Latn"]["dropped"] == {**zero, "empty": 1, "bad_utf8": 1, "malformed": 5,
                                                       "script_mismatch": 1, "too_long": 1, "duplicate": 1}
    fra = sources["eng_Latn-fra_Latn"]
    assert fra["n_pairs"] + fra["val"]["n_pairs"] == 3
    assert sources["eng_Latn-spa_Latn"]["dropped"] == {**zero, "bad_utf8": 1}
    assert sources["eng_Latn-spa_Latn"]["n_pairs"] + sources["eng_Latn-spa_Latn"]["val"]["n_pairs"] == 2
    assert sources["eng_Latn-ita_Latn"]["dropped"] == {**zero, "malformed": 1, "empty": 1}
    assert sources["eng_Latn-abc_Qaaa"]["dropped"] == zero
    assert sources["eng_Latn-abc_Qaaa"]["n_pairs"] + sources["eng_Latn-abc_Qaaa"]["val"]["n_pairs"] == 4
    err = capsys.readouterr().err
    jsonl = folder / "train.jsonl"
    for where in [f"{jsonl}:2: malformed JSON", f"{jsonl}:7: expected string",
                  f"{jsonl}: row codes deu_Latn-None", f"{moses / 'm.eng_Latn'}:2: invalid",
                  f"{tsv / 'a.tsv'}:2: expected 2 tab-separated fields, found 3"]:
        assert where in err
    assert "unknown script Qaaa (code abc_Qaaa): script check skipped for 4 texts, nothing dropped" in err
    assert "more warnings suppressed" in err  # 7 warnings for one source: the rest are only counted


def error_of(*argv) -> str:
    with pytest.raises(SystemExit) as e:
        pm.main([str(a) for a in argv])
    assert isinstance(e.value.code, str) and "\n" not in e.value.code
    return e.value.code


def test_bad_input_stops_with_an_error_naming_it(tmp_path, small_tok):
    moses = tmp_path / "moses" / "eng_Latn-spa_Latn"
    moses.mkdir(parents=True)
    (moses / "x.eng_Latn").write_text("a\nb\nc\n")
    (moses / "x.spa_Latn").write_text("a\nb\n")
    out = tmp_path / "out"
    # CLI: non-zero exit, one line on stderr, no output for the failed source
    proc = subprocess.run([sys.executable, str(ROOT / "prepare_mala.py"), "--input", str(tmp_path / "moses"),
                           "--out", str(out), "--tokenizer", str(small_tok)], capture_output=True, text=True)
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines()[-1] == (
        f"prepare_mala.py: error: Moses files differ in line count: {moses / 'x.eng_Latn'} has 3 lines, "
        f"{moses / 'x.spa_Latn'} has 2")
    index = json.loads((out / "index.json").read_text())
    assert index["sources"] == {} and index["complete"] is False and index["pending"] == ["eng_Latn-spa_Latn"]
    assert sorted(p.name for p in out.iterdir()) == ["index.json", "tokenizer.model"]

    (moses / "x.spa_Latn").unlink()
    msg = error_of("--input", tmp_path / "moses", "--out", out, "--tokenizer", small_tok)
    assert f"Moses file {moses / 'x.eng_Latn'} has no partner {moses / 'x.spa_Latn'}" in msg

    bad_parquet = tmp_path / "pq" / "eng_Latn-fra_Latn" / "a.parquet"
    bad_parquet.parent.mkdir(parents=True)
    pq.write_table(pa.table({"src_text": ["x"], "target": ["y"]}), bad_parquet)
    msg = error_of("--input", tmp_path / "pq", "--out", out, "--tokenizer", small_tok)
    assert msg == f"prepare_mala.py: error: {bad_parquet}: missing column tgt_text (has: src_text, target)"

    bad_code = tmp_path / "codes" / "eng_Latn-french"
    write_jsonl(bad_code / "train.jsonl", [{"src_text": "a", "tgt_text": "b"}])
    msg = error_of("--input", tmp_path / "codes", "--out", out, "--tokenizer", small_tok)
    assert f"folder {bad_code} holds data files but its name is not a language code or pair" in msg

    args = ["--input", tmp_path, "--out", out, "--tokenizer", small_tok]
    assert "--shard 2/2: expected i/n" in error_of(*args, "--shard", "2/2")
    for bad in (["--workers", 0], ["--group-size", 0]):
        assert "--group-size and --workers must be >= 1" in error_of(*args, *bad)
    assert "--tokenizer nope.model: no such file" in error_of("--input", tmp_path, "--out", out,
                                                              "--tokenizer", "nope.model")


def tree(folder: Path) -> dict[str, bytes]:
    """Every file of an output folder; index.json without the command line that made it."""
    files = {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}
    for name in [n for n in files if n.startswith("index")]:
        index = json.loads(files[name])
        files[name] = json.dumps({k: v for k, v in index.items() if k != "command"}).encode()
    return files


# The fault injection lives here, not in prepare_mala.py: a wrapper that slows every written document
# down. Spawned workers run the wrapper's module-level code too (as __mp_main__), so they are slow as well.
SLOW_PREPARE = """
import sys, time
sys.path.insert(0, {root!r})
import prepare_mala
add = prepare_mala.TokenFile.add
prepare_mala.TokenFile.add = lambda self, *a: (time.sleep({delay}), add(self, *a))
if __name__ == "__main__":
    prepare_mala.main(sys.argv[1:])
"""


def slow_prepare(tmp_path: Path, delay: float, *argv) -> subprocess.Popen:
    script = tmp_path / "slow_prepare.py"
    script.write_text(SLOW_PREPARE.format(root=str(ROOT), delay=delay))
    return subprocess.Popen([sys.executable, str(script), *map(str, argv)], stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)


def test_kill_and_rerun_is_byte_identical(inputs, small_tok, tmp_path):
    root, _ = inputs
    ref = tmp_path / "ref"
    run(root, ref, small_tok)
    out = tmp_path / "out"
    args = ["--input", root, "--out", out, "--tokenizer", small_tok, "--group-size", "3", "--val-share", "0"]
    cmd = [sys.executable, str(ROOT / "prepare_mala.py"), *map(str, args)]
    proc = slow_prepare(tmp_path, 0.25, *args)  # sources take ~1 s each
    deadline = time.time() + 30
    while time.time() < deadline:
        index = out / "index.json"
        # killed inside a source: one finished, the next one's tmp file open
        if index.exists() and json.loads(index.read_text())["sources"] and any(out.glob("*.tmp")):
            break
        time.sleep(0.05)
    assert proc.poll() is None, "finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done = json.loads((out / "index.json").read_text())["sources"]
    assert 1 <= len(done) < 6
    half = [p.name for p in out.glob("*.tmp")]  # the source it was killed in: only a tmp file, no entry
    assert half and all(name.removesuffix(".tmp").removesuffix(".val.bin").removesuffix(".bin") not in done
                        for name in half)
    # the next stage refuses the half-made folder, naming what is missing and the command that finishes it
    mix_cmd = [sys.executable, str(ROOT / "mix.py"), str(out), "--config", str(ROOT / "config" / "mix_bi.py"),
               "--out", str(tmp_path / "mix.json")]
    refused = subprocess.run(mix_cmd, capture_output=True, text=True)
    assert refused.returncode == 1 and not (tmp_path / "mix.json").exists()
    message = refused.stderr.strip()
    assert "\n" not in message and f"prepare_mala.py did not finish ({len(done)} sources done, " in message
    assert "eng_Latn-spa_Latn" in message or "fra_Latn" in message  # the last sources (name order)
    assert f"(finished sources are kept): python prepare_mala.py --input {root}" in message
    rerun = subprocess.run(cmd, capture_output=True, text=True, check=True)
    assert f"({len(done)} of 6 sources were complete already and kept)" in rerun.stdout
    assert tree(out) == tree(ref)  # every .bin, .val.bin and index.json; no *.tmp left behind

    # a damaged complete file fails the size/sha256 check and its source is redone
    damaged = out / "eng_Latn-deu_Latn.bin"
    damaged.write_bytes(damaged.read_bytes()[:-4])
    run(root, out, small_tok)
    assert tree(out) == tree(ref)


def test_workers_and_shards_match_the_plain_run(inputs, small_tok, tmp_path):
    root, _ = inputs
    run(root, tmp_path / "one", small_tok)
    run(root, tmp_path / "two", small_tok, "--workers", 2)
    assert tree(tmp_path / "two") == tree(tmp_path / "one")
    sharded = tmp_path / "sharded"
    part0 = run(root, sharded, small_tok, "--shard", "0/2")
    part1 = run(root, sharded, small_tok, "--shard", "1/2")
    assert part0 and part1 and not set(part0) & set(part1)
    pm.main(["--merge", "--out", str(sharded)])
    files = tree(sharded)
    assert {"index.shard-0-of-2.json", "index.shard-1-of-2.json"} <= set(files)
    assert {k: v for k, v in files.items() if not k.startswith("index.shard")} == tree(tmp_path / "one")
    (sharded / "index.shard-1-of-2.json").unlink()
    assert "--merge: expected exactly index.shard-0-of-2.json, index.shard-1-of-2.json" in error_of(
        "--merge", "--out", sharded)


def test_llama3_ids_above_65535_survive_the_bin(tmp_path, llama3_tokenizer_path):
    pairs = [("The weather is nice today.", "วันนี้อากาศดีมาก"), ("Good morning, friend.", "สวัสดีตอนเช้า เพื่อน"),
             ("Where is the station?", "สถานีรถไฟอยู่ที่ไหน")]
    write_jsonl(tmp_path / "in" / "eng_Latn-tha_Thai" / "train.jsonl",
                [{"src_text": a, "tgt_text": b} for a, b in pairs])
    pm.main(["--input", str(tmp_path / "in"), "--out", str(tmp_path / "out"), "--tokenizer",
             str(llama3_tokenizer_path), "--val-docs", "0"])
    tok = Tokenizer(llama3_tokenizer_path)
    ids = read_tokens(tmp_path / "out" / "eng_Latn-tha_Thai.bin")
    text = "\n".join(f"[eng_Latn]: {a}\n[tha_Thai]: {b}" for a, b in pairs)
    assert ids.tolist() == [128000, *tok.encode(text), 128001]
    assert ids.max() > 65535 and tok.decode(ids[1:-1]) == text


@pytest.mark.parametrize("text, code, ok", [
    ("Le chat dort sur le canapé.", "fra_Latn", True),
    ("Кошка спит на диване.", "rus_Cyrl", True),
    ("Кошка спит", "fra_Latn", False),
    ("Москва is the capital of Russia", "eng_Latn", True),       # mostly Latin letters
    ("CFA франак", "bos_Cyrl", True), ("CFA франак BEAC", "bos_Cyrl", False),  # 6 Cyrillic vs 3 / 7 Latin
    ("абв ab αβ", "rus_Cyrl", True), ("аб abc αβ", "rus_Cyrl", False),       # largest, not the majority
    ("東京は日本の首都です", "jpn_Jpan", True),                     # Han + Hiragana count together
    ("カタカナ", "jpn_Jpan", True),
    ("서울은 한국의 수도입니다", "kor_Kore", True),
    ("中华人民共和国", "zho_Hans", True), ("中華民國", "zho_Hant", True),
    ("中華民國", "kor_Kore", True), ("ひらがな", "zho_Hans", False),
    ("मेरा नाम राम है", "hin_Deva", True), ("আমার নাম", "ben_Beng", True), ("ሰላም", "amh_Ethi", True),
    ("שלום עולם", "heb_Hebr", True), ("مرحبا بالعالم", "arb_Arab", True), ("สวัสดี", "tha_Thai", True),
    ("გამარჯობა", "kat_Geor", True), ("Բարեւ", "hye_Armn", True), ("வணக்கம்", "tam_Taml", True),
    ("Γειά σου", "ell_Grek", True), ("Γειά σου", "eng_Latn", False),
    ("1234 !?", "rus_Cyrl", True),                               # no letters: nothing to judge
    ("Plain ASCII", "eng_Latn", True), ("Plain ASCII", "rus_Cyrl", False),  # the ASCII shortcut
    ("𐐐𐐯𐑊𐐬", "eng_Dsrt", True), ("anything", "abc_Qaaa", True),  # unknown suffix: never dropped
])
def test_script_recognition(text, code, ok):
    assert pm.script_matches(text, code[-4:]) is ok


def test_rerun_with_other_options_redoes_the_sources(inputs, small_tok, tmp_path, capsys):
    root, expected = inputs
    out = tmp_path / "out"
    run(root, out, small_tok)  # --group-size 3
    index = json.loads((out / "index.json").read_text())
    assert index["sources"]["fra_Latn"]["options"] == {
        "group_size": 3, "template": "[{code}]: {text}", "directions": "fwd", "seed": 0, "val_docs": 2,
        "val_share": 0.0, "max_chars": 2000, "max_doc_chars": 1_000_000}
    capsys.readouterr()
    sources = run(root, out, small_tok, "--group-size", 4)  # the later --group-size wins
    captured = capsys.readouterr()
    assert "complete already and kept" not in captured.out
    assert "6 source(s) were prepared with other options" in captured.err
    assert all(entry["options"]["group_size"] == 4 for entry in sources.values())
    tok = Tokenizer(small_tok)
    for name in ("eng_Latn-fra_Latn", "eng_Latn-rus_Cyrl"):
        docs = expected_documents(name, *expected[name], group_size=4)
        ref = [t for g, text, _ in docs if g not in (1, 3)  # (1, 3): the held-out groups
               for t in [tok.bos_id, *tok.encode(text), tok.eos_id]]
        assert read_tokens(out / f"{name}.bin").tolist() == ref
    run(root, tmp_path / "fresh", small_tok, "--group-size", 4)
    assert tree(out) == tree(tmp_path / "fresh")
    # an entry without "options" (an index.json from before they were recorded) is redone too
    index = json.loads((out / "index.json").read_text())
    del index["sources"]["eng_Latn-deu_Latn"]["options"]
    (out / "index.json").write_text(json.dumps(index))
    run(root, out, small_tok, "--group-size", 4)
    assert "(5 of 6 sources were complete already and kept)" in capsys.readouterr().out
    assert tree(out) == tree(tmp_path / "fresh")


@pytest.mark.parametrize("template", ["[{code}]: {text}", "{text}", "<{code}>{text}</{code}> {{x}}",
                                      "{text!r}", "{text:>30}", "{text:.3}", "{text} / {text}", "{code}",
                                      "{text} {text[0]}", "\0{text}\0"])
def test_text_formatter_equals_str_format(template):
    fmt = pm.text_formatter(template, "fra_Latn")
    for text in ("Le chat dort.", "{code} {text} {{x}}", "\0 \\ é 東京", "12"):
        assert fmt(text) == template.format(code="fra_Latn", text=text)


# ----------------------------------------------------------------------------- faults and odd inputs


def test_a_byte_order_mark_is_not_data(tmp_path, small_tok):
    bom = "\ufeff"
    pairs = make_pairs("eng_Latn", "fra_Latn", 4)
    write_jsonl(tmp_path / "a" / "eng_Latn-fra_Latn" / "train.jsonl", [{"src_text": a, "tgt_text": b}
                                                                       for a, b in pairs])
    plain = run(tmp_path / "a", tmp_path / "plain", small_tok)["eng_Latn-fra_Latn"]
    jsonl = tmp_path / "b" / "eng_Latn-fra_Latn" / "train.jsonl"
    jsonl.parent.mkdir(parents=True)
    jsonl.write_text(bom + (tmp_path / "a" / "eng_Latn-fra_Latn" / "train.jsonl").read_text(),
                     encoding="utf-8")
    tsv = tmp_path / "c" / "eng_Latn-fra_Latn" / "data.tsv"
    tsv.parent.mkdir(parents=True)
    tsv.write_text(bom + "".join(f"{a}\t{b}\n" for a, b in pairs), encoding="utf-8")
    moses = tmp_path / "d" / "eng_Latn-fra_Latn"
    moses.mkdir(parents=True)
    (moses / "x.eng_Latn").write_text(bom + "".join(a + "\n" for a, _ in pairs), encoding="utf-8")
    (moses / "x.fra_Latn").write_text(bom + "".join(b + "\n" for _, b in pairs), encoding="utf-8")
    for folder in "bcd":
        entry = run(tmp_path / folder, tmp_path / f"out_{folder}", small_tok)["eng_Latn-fra_Latn"]
        assert (entry["sha256"], entry["val"]["sha256"]) == (plain["sha256"], plain["val"]["sha256"]), folder
        assert entry["n_pairs"] + entry["val"]["n_pairs"] == 4, folder
        assert sum(entry["dropped"].values()) == 0, folder


def test_unreadable_files_are_one_line_errors_or_counted_skips(tmp_path, small_tok):
    pairs = [{"src_text": a, "tgt_text": b} for a, b in make_pairs("eng_Latn", "fra_Latn", 40)]
    gz = tmp_path / "gz" / "eng_Latn-fra_Latn" / "train.jsonl.gz"
    write_jsonl(gz, pairs, gz=True)
    gz.write_bytes(gz.read_bytes()[: len(gz.read_bytes()) // 2])  # truncated mid-stream
    notgz = tmp_path / "notgz" / "eng_Latn-fra_Latn" / "train.jsonl.gz"
    write_jsonl(notgz, pairs)  # plain text under a .gz name
    parquet = tmp_path / "pq" / "eng_Latn-fra_Latn" / "a.parquet"
    parquet.parent.mkdir(parents=True)
    pq.write_table(pa.table({"src_text": ["x"] * 50, "tgt_text": ["y"] * 50}), parquet)
    parquet.write_bytes(parquet.read_bytes()[:-30])  # footer gone
    for folder, where in (("gz", f"{gz}:"), ("notgz", f"{notgz}:1: cannot read"),
                          ("pq", f"{parquet}: cannot read parquet")):
        message = error_of("--input", tmp_path / folder, "--out", tmp_path / "out", "--tokenizer", small_tok)
        assert message.startswith(f"prepare_mala.py: error: {where}"), message
    sources = run(tmp_path / "gz", tmp_path / "skipped", small_tok, "--skip-unreadable")
    entry = sources["eng_Latn-fra_Latn"]
    assert entry["dropped"]["unreadable_file"] == 1 and 0 < entry["n_pairs"] + entry["val"]["n_pairs"] < 40


def test_both_directions_count_a_pair_once_for_its_tier(inputs, small_tok, tmp_path):
    root, _ = inputs
    fwd = run(root, tmp_path / "fwd", small_tok)
    both = run(root, tmp_path / "both", small_tok, "--directions", "both")
    for name, entry in both.items():
        if entry["kind"] == "bi":
            assert entry["n_docs"] == 2 * fwd[name]["n_docs"] and entry["n_tokens"] > fwd[name]["n_tokens"]
            assert (entry["n_words"], entry["n_pairs"]) == (fwd[name]["n_words"], fwd[name]["n_pairs"]), name


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"  # a zombie is dead
    except FileNotFoundError:
        return False


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs /proc to find the worker processes")
def test_killed_parent_takes_its_workers_with_it(inputs, small_tok, tmp_path):
    root, _ = inputs
    args = ["--input", root, "--out", tmp_path / "out", "--tokenizer", small_tok, "--group-size", "3",
            "--val-share", "0", "--workers", "2"]
    proc = slow_prepare(tmp_path, 1.0, *args)  # a source takes 4-12 s: a worker would write long after
    children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children")
    deadline, workers = time.time() + 30, []
    while time.time() < deadline and len(workers) < 2:  # the pool's two workers (and a resource tracker)
        workers = [int(p) for p in children.read_text().split()] if children.exists() else []
        time.sleep(0.1)
    time.sleep(1.0)  # both are inside a source now
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.time() + 2
    while time.time() < deadline and any(map(_alive, workers)):
        time.sleep(0.05)
    assert workers and not any(map(_alive, workers)), "workers outlived their parent"
    run(root, tmp_path / "out", small_tok, "--workers", 2)  # no orphan writes into the rerun
    run(root, tmp_path / "ref", small_tok)
    assert tree(tmp_path / "out") == tree(tmp_path / "ref")


def test_a_prepared_folder_moves_with_its_tokenizer(inputs, small_tok, tmp_path):
    """index.json names its own tokenizer copy, not the file the run was given: a folder copied to
    another machine (or the original tokenizer deleted) still mixes and trains."""
    import shutil

    import mix
    import sampler

    root, _ = inputs
    tok_copy = tmp_path / "given.model"
    shutil.copy(small_tok, tok_copy)
    run(root, tmp_path / "made", tok_copy)
    tok_copy.unlink()
    shutil.move(tmp_path / "made", tmp_path / "moved")
    mix.main([str(tmp_path / "moved"), "--config", str(ROOT / "config" / "mix_bi.py"), "--out",
              str(tmp_path / "mix.json")])
    assert sampler.Mixture(tmp_path / "mix.json", 8).tokenizer_file == tmp_path / "moved" / "tokenizer.model"
    (tmp_path / "moved" / "tokenizer.model").write_bytes(b"x")
    with pytest.raises(mix.MixError, match=r"tokenizer copy .*tokenizer\.model is missing or is not the one"):
        sampler.Mixture(tmp_path / "mix.json", 8)
