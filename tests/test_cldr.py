"""The embedded CLDR corpus: layout, formats, known CLDR facts, held-out hygiene, determinism."""

import json
import re
from pathlib import Path

import pytest

import cldr_corpus
from cldr_corpus import N_DEV, N_DEVTEST, build_corpus, corpus_locales, iso639_3, locale_strings, main

CODE = re.compile(r"^[a-z]{3}_[A-Z][a-z]{3}$")


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    out = tmp_path_factory.mktemp("cldr")
    summary = build_corpus(out, seed=0)
    return out, summary


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def text_lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def pair_set(out: Path, folder: str) -> set[tuple[str, str]]:
    return {(r["src_text"], r["tgt_text"]) for r in read_jsonl(out / "raw" / "bi" / folder / "train.jsonl")}


def held_keys(summary, split):
    return [tuple(name.split(":", 1)) for name in summary["held_out_keys"][split]]


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_layout_codes_and_summary(built):
    out, summary = built
    mono = sorted(p.name for p in (out / "raw" / "mono").iterdir())
    bi = sorted(p.name for p in (out / "raw" / "bi").iterdir())
    languages = json.loads((out / "flores" / "languages.json").read_text(encoding="utf-8"))
    assert mono == sorted(languages) == sorted(summary["strings_per_language"])
    assert len(mono) == summary["n_languages"] > 250
    assert all(CODE.match(code) for code in mono), [c for c in mono if not CODE.match(c)]
    assert bi == sorted(summary["pair_lines"]) and len(bi) == summary["n_pairs"]
    for folder in bi:
        src, tgt = folder.split("-")
        assert src in mono and tgt in mono and src != tgt
    # every language is paired with English, one direction (eng_Latn-xxx) only
    assert {f"eng_Latn-{c}" for c in mono if c != "eng_Latn"} <= set(bi)
    assert not any(f.endswith("-eng_Latn") for f in bi)
    assert {"fra_Latn-spa_Latn", "rus_Cyrl-zho_Hans", "zho_Hans-arb_Arab"} <= set(bi)
    assert sorted(summary["flores_languages"]) == sorted(c for c, v in languages.items() if v["in_flores"])
    assert languages["fra_Latn"]["name"] == "French" and languages["zho_Hant"]["locale"] == "zh_Hant"


def test_language_codes():
    assert [iso639_3(x) for x in ("de", "fr", "en", "ar", "zh", "sw", "yue")] == \
        ["deu", "fra", "eng", "arb", "zho", "swh", "yue"]
    codes = corpus_locales()
    assert codes["fra_Latn"] == "fr" and codes["srp_Latn"] == "sr_Latn" and codes["srp_Cyrl"] == "sr"
    assert codes["zho_Hans"] == "zh" and codes["zho_Hant"] == "zh_Hant" and codes["nob_Latn"] == "nb"
    assert "fr_CA" not in codes.values() and "sr_Cyrl" not in codes.values() and "no" not in codes.values()


def test_pair_lines(built):
    out, summary = built
    total = 0
    for folder in sorted((out / "raw" / "bi").iterdir()):
        src, tgt = folder.name.split("-")
        rows = read_jsonl(folder / "train.jsonl")
        for i, row in enumerate(rows):
            where = f"{folder.name} line {i + 1}"
            assert list(row) == ["src_text", "tgt_text", "src_lang", "tgt_lang"], where
            assert row["src_text"].strip() and row["tgt_text"].strip(), where
            assert "\n" not in row["src_text"] + row["tgt_text"], where
            assert (row["src_lang"], row["tgt_lang"]) == (src, tgt), where
            if not tgt.endswith("_Latn") and src == "eng_Latn":   # English copies are dropped
                assert row["src_text"] != row["tgt_text"], where
        assert len({(r["src_text"], r["tgt_text"]) for r in rows}) == len(rows)
        assert len(rows) == summary["pair_lines"][folder.name]
        total += len(rows)
    assert total == summary["n_pair_lines"]


def test_mono_documents(built):
    out, summary = built
    for code, n_strings in summary["strings_per_language"].items():
        docs = read_jsonl(out / "raw" / "mono" / code / "train.jsonl")
        lines = [line for doc in docs for line in doc["text"].split("\n")]
        assert all(list(d) == ["text"] for d in docs), code
        assert all(len(d["text"].split("\n")) <= cldr_corpus.MONO_DOC_LINES for d in docs), code
        assert len(lines) == len(set(lines)) == n_strings and all(line.strip() for line in lines), code
    months = read_jsonl(out / "raw" / "mono" / "deu_Latn" / "train.jsonl")
    assert any(d["text"].startswith("Januar\nFebruar\nMärz\n") for d in months)


def where_is(out: Path, summary, key, lang) -> str:
    """The text of a key in lang: from the flores files if the key is held out, else None."""
    for split, ext in (("dev", "dev"), ("devtest", "devtest")):
        keys = held_keys(summary, split)
        if key in keys:
            return text_lines(out / "flores" / split / f"{lang}.{ext}")[keys.index(key)]
    return None


def test_known_facts(built):
    out, summary = built
    heldout = where_is(out, summary, ("territory", "DE"), "fra_Latn")
    if heldout is None:
        assert ("Germany", "Allemagne") in pair_set(out, "eng_Latn-fra_Latn")
    else:
        assert heldout == "Allemagne"
    deu = pair_set(out, "eng_Latn-deu_Latn")
    assert ("January", "Januar") in deu and ("Sunday", "Sonntag") in deu and ("yesterday", "gestern") in deu
    rus = pair_set(out, "eng_Latn-rus_Cyrl")
    assert {("January", "января"), ("January", "январь")} <= rus   # format and stand-alone month names
    assert locale_strings("de")[("month", "format", 1)] == "Januar"
    assert locale_strings("fr")[("territory", "DE")] == "Allemagne"


def test_heldout_never_in_train(built):
    out, summary = built
    keys = held_keys(summary, "dev") + held_keys(summary, "devtest")
    assert len(keys) == len(set(keys)) == N_DEV + N_DEVTEST
    assert {k[0] for k in keys} <= {"language", "territory"}
    held_texts = {}
    for lang in summary["flores_languages"]:
        held_texts[lang] = set(text_lines(out / "flores" / "dev" / f"{lang}.dev")
                               + text_lines(out / "flores" / "devtest" / f"{lang}.devtest"))
        mono = read_jsonl(out / "raw" / "mono" / lang / "train.jsonl")
        lines = {line for doc in mono for line in doc["text"].split("\n")}
        assert not lines & held_texts[lang], (lang, sorted(lines & held_texts[lang])[:5])
    for folder in (out / "raw" / "bi").iterdir():
        src, tgt = folder.name.split("-")
        for row in read_jsonl(folder / "train.jsonl"):
            assert row["src_text"] not in held_texts.get(src, ()), (folder.name, row)
            assert row["tgt_text"] not in held_texts.get(tgt, ()), (folder.name, row)
    # also for languages without flores files: their strings of held-out keys are not in train
    ful = locale_strings("ff")
    lines = {line for doc in read_jsonl(out / "raw" / "mono" / "ful_Latn" / "train.jsonl")
             for line in doc["text"].split("\n")}
    assert not lines & {ful[k] for k in keys if k in ful}


def test_flores_aligned(built):
    out, summary = built
    langs = summary["flores_languages"]
    assert len(langs) > 150 and {"eng_Latn", "fra_Latn", "zho_Hans", "arb_Arab"} <= set(langs)
    for split, ext, n in (("dev", "dev", N_DEV), ("devtest", "devtest", N_DEVTEST)):
        files = sorted((out / "flores" / split).glob(f"*.{ext}"))
        assert sorted(f.name.split(".")[0] for f in files) == sorted(langs)
        for f in files:
            lines = text_lines(f)
            assert len(lines) == n and all(line.strip() for line in lines), f.name
        # line i is the same key in every language
        en, fr, zh = locale_strings("en"), locale_strings("fr"), locale_strings("zh")
        for lang, table in (("eng_Latn", en), ("fra_Latn", fr), ("zho_Hans", zh)):
            expect = [table[k] for k in held_keys(summary, split)]
            assert text_lines(out / "flores" / split / f"{lang}.{ext}") == expect


def test_resource_skew(built):
    _, summary = built
    sizes = summary["strings_per_language"]
    assert max(sizes.values()) > 10 * min(sizes.values())
    assert min(sizes.values()) >= cldr_corpus.MIN_TRAIN_STRINGS
    assert sum(n < 100 for n in sizes.values()) > 30 and sum(n > 700 for n in sizes.values()) > 30


def test_deterministic(built, tmp_path):
    out, summary = built
    again = build_corpus(tmp_path / "again", seed=0)
    assert again == summary
    assert tree_bytes(tmp_path / "again") == tree_bytes(out)


def test_rebuild_replaces_and_seed_changes_heldout(tmp_path):
    first = build_corpus(tmp_path, seed=0, locales=["fr", "de", "ja"])
    assert sorted(first["strings_per_language"]) == ["deu_Latn", "eng_Latn", "fra_Latn", "jpn_Jpan"]
    second = build_corpus(tmp_path, seed=1, locales=["fr", "de"])
    assert second["held_out_keys"] != first["held_out_keys"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["flores", "raw"]     # no temp dir left behind
    assert sorted(p.name for p in (tmp_path / "raw" / "mono").iterdir()) == ["deu_Latn", "eng_Latn",
                                                                            "fra_Latn"]
    en = locale_strings("en")
    expect = [en[k] for k in held_keys(second, "dev")]
    assert text_lines(tmp_path / "flores" / "dev" / "eng_Latn.dev") == expect


def test_bad_input(tmp_path):
    with pytest.raises(ValueError, match="fr_CA"):
        build_corpus(tmp_path / "x", locales=["fr", "fr_CA"])
    assert not (tmp_path / "x").exists()
    afile = tmp_path / "file"
    afile.write_text("not a dir")
    with pytest.raises(SystemExit, match="not a directory"):
        main([str(afile)])


def test_babel_merged_cache_does_not_leak_into_the_strings():
    # Babel caches locale data by name alone: after Locale("de_CH") the cache holds MERGED data (parents'
    # and root's fallbacks), which localedata.load(merge_inherited=False) would then return as the own.
    from babel import Locale, localedata

    localedata._cache.pop("de_CH", None)
    own = locale_strings("de_CH")
    assert Locale.parse("de_CH").months["format"]["wide"][1] == "Januar"  # fills the cache, merged
    assert "de_CH" in localedata._cache
    assert locale_strings("de_CH") == own
