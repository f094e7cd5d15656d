import base64
import hashlib
import os
import pickle
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import regex
from babel import Locale
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tokenizer import (
    MAX_NO_WHITESPACES_CHARS,
    PAT_STR,
    TIKTOKEN_MAX_ENCODE_CHARS,
    Tokenizer,
    _tiktoken_bpe,
    learn_bpe,
    main,
    pretokenize,
    split_long,
    train_bpe,
)

# Text from many scripts: Latin (+ accents), Cyrillic, Arabic, Devanagari, CJK, Hangul, Thai, Ethiopic,
# emoji (+ ZWJ, variation selector), combining marks, digits, punctuation, whitespace and newlines.
SCRIPTS = [
    (0x20, 0x7E), (0xC0, 0x17F), (0x400, 0x4FF), (0x600, 0x6FF), (0x900, 0x97F), (0x4E00, 0x4FFF),
    (0xAC00, 0xAC7F), (0xE00, 0xE5B), (0x1200, 0x137C), (0x1F600, 0x1F64F), (0x300, 0x36F),
]  # fmt: skip
multilingual_text = st.lists(
    st.one_of(
        *[st.characters(min_codepoint=a, max_codepoint=b, exclude_categories=["Cs"]) for a, b in SCRIPTS],
        st.sampled_from([" ", "  ", "\n", "\r\n", "\t", "\u200d", "\ufe0f", "\u00a0", "'s", "'LL", "123456"]),
    ),
    max_size=60,
).map("".join)
SPECIALS_311 = {
    128000: "<|begin_of_text|>", 128001: "<|end_of_text|>", 128002: "<|reserved_special_token_0|>",
    128003: "<|reserved_special_token_1|>", 128004: "<|finetune_right_pad_id|>",
    128005: "<|reserved_special_token_2|>", 128006: "<|start_header_id|>", 128007: "<|end_header_id|>",
    128008: "<|eom_id|>", 128009: "<|eot_id|>", 128010: "<|python_tag|>",
    128011: "<|reserved_special_token_3|>", 128255: "<|reserved_special_token_247|>",
}  # fmt: skip


def meta_split(s: str):
    """Meta's llama3 tokenizer.py cut of long inputs, verbatim (the reference for split_long)."""
    for i in range(0, len(s), TIKTOKEN_MAX_ENCODE_CHARS):
        chunk = s[i : i + TIKTOKEN_MAX_ENCODE_CHARS]
        current_slice_len = 0
        current_slice_is_space = chunk[0].isspace() if len(chunk) > 0 else False
        slice_start = 0
        for j in range(len(chunk)):
            is_now_space = chunk[j].isspace()
            if current_slice_is_space ^ is_now_space:
                current_slice_len = 1
                current_slice_is_space = is_now_space
            else:
                current_slice_len += 1
                if current_slice_len > MAX_NO_WHITESPACES_CHARS:
                    yield chunk[slice_start:j]
                    slice_start = j
                    current_slice_len = 1
        yield chunk[slice_start:]


def merges_in_order(word: bytes, vocab: list[bytes], rank_of: dict[bytes, int]) -> list[int]:
    """Standard BPE: apply the learned merges in rank order, each to every occurrence, left to right.
    (Ranks whose token does not occur as an adjacent pair are no-ops, so jump to the next one that does.)"""
    parts, current = [bytes([b]) for b in word], 256
    while True:
        found = [rank_of[a + b] for a, b in zip(parts, parts[1:]) if rank_of.get(a + b, -1) >= current]
        if not found:
            return [rank_of[p] for p in parts]
        current = min(found)
        merged, i = [], 0
        while i < len(parts):
            if i + 1 < len(parts) and parts[i] + parts[i + 1] == vocab[current]:
                merged.append(vocab[current])
                i += 2
            else:
                merged.append(parts[i])
                i += 1
        parts, current = merged, current + 1


def cldr_lines(n_locales: int = 40, seed: int = 0) -> list[str]:
    """Small multilingual corpus: CLDR language and territory names in n_locales locales."""
    rng = random.Random(seed)
    lines = []
    for ident in ["en", "fr", "de", "ru", "ar", "hi", "zh", "ja", "th", "am", "ko", "el", "he", "tr", "vi"][
        :n_locales
    ]:
        names = [*Locale.parse(ident).languages.values(), *Locale.parse(ident).territories.values()]
        rng.shuffle(names)
        for i in range(0, len(names), 10):
            lines.append(", ".join(names[i : i + 10]) + f" {rng.randint(0, 9999)}.\n")
    return lines


@pytest.fixture(scope="module")
def corpus():
    return cldr_lines()


@pytest.fixture(scope="module")
def trained(corpus, tmp_path_factory):
    path = tmp_path_factory.mktemp("bpe") / "tokenizer.model"
    return train_bpe(corpus, 1024, path)


# ---------------------------------------------------------------------------------------------------
# Meta's Llama 3 tokenizer


def test_llama3_reference_ids(llama3_tokenizer_path):
    tok = Tokenizer(llama3_tokenizer_path)
    assert tok.encode("Hello world, this is Llama 3!") == [9906, 1917, 11, 420, 374, 445, 81101, 220, 18, 0]
    assert tok.encode("<|begin_of_text|>hi<|eot_id|>", allowed_special="all") == [128000, 6151, 128009]
    assert tok.encode("hi", bos=True, eos=True) == [128000, 6151, 128001]
    assert (tok.n_base, tok.n_vocab) == (128000, 128256)
    assert (tok.bos_id, tok.eos_id, tok.eot_id) == (128000, 128001, 128009)
    assert len(tok.special_tokens) == 256 and set(tok.special_tokens.values()) == set(range(128000, 128256))
    assert {i: tok.special_tokens[s] for i, s in SPECIALS_311.items()} == {i: i for i in SPECIALS_311}
    assert tok.sha256 == hashlib.sha256(llama3_tokenizer_path.read_bytes()).hexdigest()
    assert tok.decode([128006, 882, 128007]) == "<|start_header_id|>user<|end_header_id|>"


def test_llama3_special_text_is_plain_unless_allowed(llama3_tokenizer_path):
    tok = Tokenizer(llama3_tokenizer_path)
    s = "<|begin_of_text|>hi<|eot_id|>"
    plain = tok.encode(s)
    assert max(plain) < 128000 and len(plain) > 3 and tok.decode(plain) == s
    assert tok.encode_array(s).tolist() == plain and tok.encode_array(s).dtype == np.uint32
    only_eot = tok.encode(s, allowed_special={"<|eot_id|>"})
    assert only_eot[-1] == 128009 and max(only_eot[:-1]) < 128000
    assert tok.decode(only_eot) == s


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(texts=st.lists(multilingual_text, min_size=1, max_size=4))
def test_llama3_roundtrip_multilingual(llama3_tokenizer_path, texts):
    tok = _llama3(llama3_tokenizer_path)
    encoded = [tok.encode(s) for s in texts]
    for s, ids in zip(texts, encoded):
        assert tok.decode(ids) == s
        # The trainer pre-tokenises with the `regex` package; tiktoken splits with Rust fancy-regex.
        # Same pieces <=> encoding piece by piece gives the same ids.
        assert [i for piece in regex.findall(PAT_STR, s) for i in tok.encode(piece)] == ids
    arrays = [tok.encode_array(s, bos=True, eos=True).tolist() for s in texts]
    assert arrays == [[tok.bos_id, *ids, tok.eos_id] for ids in encoded]


_LLAMA3 = {}


def _llama3(path):  # load once across hypothesis examples
    if path not in _LLAMA3:
        _LLAMA3[path] = Tokenizer(path)
    return _LLAMA3[path]


def test_split_long_matches_meta():
    rng = random.Random(0)
    n = MAX_NO_WHITESPACES_CHARS
    cases = [
        "",
        "short text",
        "x" * (n - 1) + " " + "y" * n,
        "a" * (3 * n + 7),
        " " * (n + 1) + "b" * (2 * n + 1) + "\x1c" * (n + 5) + "tail",  # \x1c: isspace() but not regex \s
        "".join(rng.choice(["ab", " ", "\n", "日本", "c" * 30000, "\t" * 26000]) for _ in range(40)),
    ]
    cases.append(cases[-1] * 3)  # > 400k characters: chunked first
    assert len(cases[-1]) > TIKTOKEN_MAX_ENCODE_CHARS
    for s in cases:
        expected = list(meta_split(s))
        got = list(split_long(s))
        assert got == expected or (s == "" and got == [""])
        assert "".join(got) == s


def test_long_input_is_split_and_roundtrips(trained):
    s = "ab" * 40_000 + " " * 30_000 + "Grüße, 世界!"
    ids = trained.encode(s)
    assert ids == [i for piece in split_long(s) for i in trained.encode(piece)]
    assert trained.decode(ids) == s
    assert trained.encode_array(s, eos=True).tolist() == ids + [trained.eos_id]
    assert trained.encode_array("").tolist() == [] and trained.encode_array("", bos=True).tolist() == [1024]
    lone_surrogate = "ok \ud800 é"  # JSON allows "\\ud800"; tiktoken encodes it as U+FFFD
    assert trained.encode_array(lone_surrogate).tolist() == trained.encode(lone_surrogate)


# ---------------------------------------------------------------------------------------------------
# BPE trainer


def test_bpe_worked_example(tmp_path):
    # Pair counts of "aaabdaaabac": aa 4, ab 2, ...; then (aa,a) 2 ties (a,b)... lowest ids win.
    tok = train_bpe(["aaabdaaabac"], 259, tmp_path / "t.model")
    lines = (tmp_path / "t.model").read_text().splitlines()
    assert len(lines) == 259 and lines[97] == f"{base64.b64encode(b'a').decode()} 97"
    assert [base64.b64decode(line.split()[0]) for line in lines[256:]] == [b"aa", b"ab", b"aaab"]
    assert tok.encode("aaabdaaabac") == [258, ord("d"), 258, ord("a"), ord("c")]
    assert (tok.n_base, tok.n_vocab, tok.bos_id, tok.eos_id, tok.eot_id) == (259, 515, 259, 260, 268)


def test_trained_tokenizer_loads_and_roundtrips(trained, corpus):
    assert (trained.n_base, trained.n_vocab) == (1024, 1280)
    assert (trained.bos_id, trained.eos_id, trained.eot_id) == (1024, 1025, 1033)
    ids = [trained.encode(s, bos=True, eos=True) for s in corpus]
    for s, row in zip(corpus, ids):
        assert row[0] == 1024 and row[-1] == 1025 and max(row[1:-1]) < 1024
        assert trained.decode(row[1:-1]) == s
    n_bytes = sum(len(s.encode()) for s in corpus)
    assert sum(map(len, ids)) < 0.6 * n_bytes  # the merges compress the text they were learned on
    assert trained.encode("<|eot_id|>x", allowed_special="all") == [1033, ord("x")]
    clone = pickle.loads(pickle.dumps(trained))  # prepare_mala ships it to worker processes
    assert clone.encode(corpus[3]) == trained.encode(corpus[3]) and clone.sha256 == trained.sha256


@settings(max_examples=60, deadline=None)
@given(s=multilingual_text)
def test_trained_roundtrip_any_text(trained, s):
    ids = trained.encode(s, bos=True, eos=True)
    assert all(0 <= i < 1024 + 256 for i in ids)
    assert trained.decode(ids[1:-1]) == s
    # The trainer's exact tiktoken step (used when a merge cascades) agrees with tiktoken on unseen text.
    vocab = [trained.model.decode_single_token_bytes(i) for i in range(1024)]
    rank_of = {t: i for i, t in enumerate(vocab)}
    pieces = regex.findall(PAT_STR, s)
    assert [i for piece in pieces for i in _tiktoken_bpe(list(piece.encode()), vocab, rank_of)] == ids[1:-1]


def test_bpe_training_is_deterministic(corpus, trained, tmp_path):
    again = train_bpe(iter(corpus), 1024, tmp_path / "again.model")  # any iterable
    assert (tmp_path / "again.model").read_bytes() == open(trained.path, "rb").read()
    assert again.sha256 == trained.sha256
    assert [p.name for p in tmp_path.iterdir()] == ["again.model"]  # no tmp file left behind


def test_merges_reproduce_tiktoken(trained, corpus):
    word_counts = pretokenize(corpus)
    vocab, states, stats = learn_bpe(word_counts, 1024)
    assert [trained.model.decode_single_token_bytes(i) for i in range(1024)] == vocab
    rank_of = {t: i for i, t in enumerate(vocab)}
    n_merged = 0
    for word, state in zip(sorted(word_counts), states):
        ids = trained.model.encode_ordinary(word.decode("utf-8"))
        assert ids == state, word  # the trainer's statistics are over what tiktoken really encodes
        assert ids == merges_in_order(word, vocab, rank_of), word
        n_merged += len(ids) < len(word)
    assert n_merged > 0.5 * len(word_counts)
    assert stats == {"cascades": 0, "shortcuts": 0}


def test_bad_tokenizer_files(tmp_path, trained):
    with pytest.raises(FileNotFoundError, match="nope.model"):
        Tokenizer(tmp_path / "nope.model")
    good = open(trained.path, "rb").read().splitlines(keepends=True)

    def write(name, lines):
        (tmp_path / name).write_bytes(b"".join(lines))
        return tmp_path / name

    bad = [
        ("fields.model", good[:299] + [b"QUJD\n"] + good[300:], r"fields\.model:300: malformed"),
        ("b64.model", good[:9] + [b"@@@ 9\n"] + good[10:], r"b64\.model:10: malformed"),
        ("rank.model", good[:4] + [b"QUJD x\n"] + good[5:], r"rank\.model:5: malformed"),
        ("dup.model", good + [good[500]], r"dup\.model:1025: duplicate token"),
        ("duprank.model", good + [b"QUJDWFla 7\n"], r"duprank\.model:1025: duplicate rank 7"),
        ("gap.model", good[:600] + good[601:], r"gap\.model: ranks must be 0\.\.1022 .* rank 600 is missing"),
        ("bytes.model", good[:65] + good[66:] + [b"QUJDWFla 65\n"], r"bytes\.model: single-byte .* \[65\]"),
        ("empty.model", [], r"empty\.model: no tokens"),
    ]
    for name, lines, message in bad:
        with pytest.raises(ValueError, match=message):
            Tokenizer(write(name, lines))
    for bad_ids in ([5, 999_999], [-1]):
        with pytest.raises(ValueError, match="n_vocab=1280"):
            trained.decode(bad_ids)


def test_bpe_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="vocab_size must be >= 256"):
        train_bpe(["hello"], 255, tmp_path / "t.model")
    with pytest.raises(ValueError, match="allows only 4 merges"):  # he, el, ll, lo in "hello"
        train_bpe(["hello"], 300, tmp_path / "t.model")
    assert not any(tmp_path.iterdir())  # nothing half-written


def test_cli(tmp_path, capsys, corpus):
    (tmp_path / "corpus.txt").write_bytes("".join(corpus).replace("\n", "\r\n").encode())
    main([str(tmp_path / "cli.model"), "--train", "--vocab-size", "600", str(tmp_path / "corpus.txt")])
    assert Tokenizer(tmp_path / "cli.model").n_vocab == 856
    # Same bytes from another process with another str hash seed: no dependence on set/dict order,
    # and the CLI keeps \r\n line ends as they are in the file.
    subprocess.run(
        [sys.executable, "tokenizer.py", str(tmp_path / "sub.model"), "--train", "--vocab-size", "600",
         str(tmp_path / "corpus.txt")],
        cwd=Path(__file__).resolve().parent.parent, env={**os.environ, "PYTHONHASHSEED": "123"}, check=True,
    )  # fmt: skip
    in_process = train_bpe([s.replace("\n", "\r\n") for s in corpus], 600, tmp_path / "direct.model")
    assert (tmp_path / "sub.model").read_bytes() == (tmp_path / "cli.model").read_bytes()
    assert (tmp_path / "direct.model").read_bytes() == (tmp_path / "cli.model").read_bytes()
    assert in_process.decode_token_bytes(in_process.encode("1.\r\n")) == [b"1", b".\r\n"]
    main([str(tmp_path / "cli.model"), "Привет, мир"])
    assert "tokens:" in capsys.readouterr().out
    with pytest.raises(SystemExit, match="training file not found: .*missing.txt"):
        main([str(tmp_path / "x.model"), "--train", str(tmp_path / "missing.txt")])
    with pytest.raises(SystemExit, match="tokenizer file not found"):
        main([str(tmp_path / "missing.model"), "hi"])


# ---------------------------------------------------------------------------------------------------
# Hugging Face tokenizer.json, both ways (transformers is the oracle)

HF_STRINGS = [  # 60 strings: every script of the corpus, whitespace runs, digits, emoji, special-token text
    *cldr_lines(15, seed=3)[:40], "Hello world", "  two  spaces  ", "tabs\tand\nnew\n\nlines\r\n",
    "123456789",
    "3.14159, -2", "Ça va? Très bien.", "Привет, мир!", "你好，世界。", "こんにちは", "안녕하세요", "مرحبا",
    "नमस्ते", "Γειά σου", "שלום", "ሰላም", "สวัสดี", "🙂👍🏽 emoji", "I'm you'll THEY'VE", "\u200bzero width",
    "<|begin_of_text|>x<|end_of_text|>", "a<|eot_id|>b",
]


def hf_ids_match(tok: Tokenizer, folder) -> None:
    """AutoTokenizer on the written folder: the same ids (BOS first, special-token text as specials) and
    the same text back; tokenizer.py reads the same ranks back from tokenizer.json."""
    from transformers import AutoTokenizer

    hf = AutoTokenizer.from_pretrained(folder)
    assert (hf.bos_token_id, hf.eos_token_id, len(hf)) == (tok.bos_id, tok.eos_id, tok.n_vocab)
    for s in HF_STRINGS:
        ids = hf(s)["input_ids"]
        assert ids == tok.encode(s, bos=True, allowed_special="all"), s
        assert hf.decode(ids[1:]) == s
    back = Tokenizer(folder / "tokenizer.json")
    assert back.ranks == tok.ranks and back.sha256 == tok.sha256 and back.n_vocab == tok.n_vocab
    assert back.special_tokens == tok.special_tokens


def test_tokenizer_json_of_a_trained_bpe(trained, tmp_path):
    from tokenizer import write_hf_tokenizer

    write_hf_tokenizer(trained, tmp_path, model_max_length=256)
    hf_ids_match(trained, tmp_path)


def test_tokenizer_json_of_llama3(llama3_tokenizer_path, tmp_path):
    from tokenizer import write_hf_tokenizer

    tok = Tokenizer(llama3_tokenizer_path)
    write_hf_tokenizer(tok, tmp_path, model_max_length=8192)
    hf_ids_match(tok, tmp_path)
    assert Tokenizer(tmp_path / "tokenizer.json").encode("Hello world, this is Llama 3!") == tok.encode(
        "Hello world, this is Llama 3!")


def test_tokenizer_json_that_would_give_other_ids_is_refused(trained, tmp_path):
    import json

    from tokenizer import write_hf_tokenizer

    write_hf_tokenizer(trained, tmp_path, model_max_length=256)
    data = json.loads((tmp_path / "tokenizer.json").read_text())
    data["model"]["merges"] = data["model"]["merges"][::-1]
    (tmp_path / "swapped.json").write_text(json.dumps(data))
    with pytest.raises(ValueError, match=r"swapped\.json: merges are not in vocabulary order"):
        Tokenizer(tmp_path / "swapped.json")
    data = json.loads((tmp_path / "tokenizer.json").read_text())
    data["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = r"\s+"
    (tmp_path / "regex.json").write_text(json.dumps(data))
    with pytest.raises(ValueError, match=r"regex\.json: .*split regex"):
        Tokenizer(tmp_path / "regex.json")
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(ValueError, match=r"broken\.json: not a byte-level BPE tokenizer\.json"):
        Tokenizer(tmp_path / "broken.json")
