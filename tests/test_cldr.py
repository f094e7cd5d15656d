"""The embedded CLDR corpus: layout, held-out hygiene (unseen combinations of seen parts), line alignment,
resource skew, native checks, determinism. The full corpus is built once (~15 s); the rest on subsets."""

import json
import math
import re
from collections import defaultdict
from datetime import date
from pathlib import Path

import pytest
import regex
from babel import Locale, localedata
from babel.dates import format_date

import cldr_corpus as cc
from cldr_corpus import N_DEV, N_DEVTEST, build_corpus, corpus_locales, iso639_3, main

CODE = re.compile(r"^[a-z]{3}_[A-Z][a-z]{3}$")
TOKEN = regex.compile(r"\d+|[\p{L}\p{M}]+")
SUBSET = ["fr", "ha", "cy", "cgg", "nyn"]


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def parse_item(key: str) -> tuple:
    """The item of a held-out key (cldr_corpus.item_key's inverse)."""
    kind, filler, value = key.split(":")
    if kind == "date":
        return kind, filler, date.fromisoformat(value).toordinal()
    return (kind, int(filler), tuple(value.split(","))) if kind in cc.LIST_STYLES else (
        kind, filler, int(value))


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """(out, summary, languages.json, {code: {"bi": X sides (English: all src sides), "mono": sentences}},
    {code: held-out lines})."""
    out = tmp_path_factory.mktemp("cldr")
    summary = build_corpus(out, seed=0)
    info = json.loads((out / "flores" / "languages.json").read_text(encoding="utf-8"))
    train = defaultdict(lambda: {"bi": [], "mono": []})
    for folder in sorted((out / "raw" / "bi").iterdir()):
        for row in read_jsonl(folder / "train.jsonl"):
            train["eng_Latn"]["bi"].append(row["src_text"])
            train[row["tgt_lang"]]["bi"].append(row["tgt_text"])
    for folder in sorted((out / "raw" / "mono").iterdir()):
        docs = read_jsonl(folder / "train.jsonl")
        train[folder.name]["mono"] = [s for doc in docs for s in doc["text"].split("\n")]
    held = {c: lines(out / "flores" / "dev" / f"{c}.dev") + lines(out / "flores" / "devtest" / f"{c}.devtest")
            for c in summary["flores_languages"]}
    return out, summary, info, train, held


def test_layout_and_summary(built):
    out, summary, info, train, held = built
    mono = sorted(p.name for p in (out / "raw" / "mono").iterdir())
    assert mono == summary["languages"] == sorted(c for c, v in info.items() if not v["dropped"])
    assert set(info) == set(corpus_locales()) and len(mono) == summary["n_languages"] > 250
    assert all(CODE.match(code) for code in info), [c for c in info if not CODE.match(c)]
    # bitext with English only, one direction
    bi = sorted(p.name for p in (out / "raw" / "bi").iterdir())
    assert bi == [f"eng_Latn-{c}" for c in mono if c != "eng_Latn"]
    rows = read_jsonl(out / "raw" / "bi" / "eng_Latn-fra_Latn" / "train.jsonl")
    assert all(list(r) == ["src_text", "tgt_text", "src_lang", "tgt_lang"] for r in rows)
    assert {(r["src_lang"], r["tgt_lang"]) for r in rows} == {("eng_Latn", "fra_Latn")}
    for code in mono:
        assert info[code]["n_bi"] == summary["n_bi"][code] == len(train[code]["bi"]) * (code != "eng_Latn")
        assert info[code]["n_mono"] == len(train[code]["mono"]) == len(set(train[code]["mono"])), code
        assert all(s.strip() and "  " not in s for s in train[code]["mono"] + train[code]["bi"]), code
    docs = read_jsonl(out / "raw" / "mono" / "deu_Latn" / "train.jsonl")
    assert all(list(d) == ["text"] and len(d["text"].split("\n")) <= cc.MONO_DOC_SENTENCES for d in docs)
    # mono: other items than the bitext, as many
    assert not set(train["deu_Latn"]["mono"]) & set(train["deu_Latn"]["bi"])
    assert info["deu_Latn"]["n_mono"] == info["deu_Latn"]["n_bi"]
    words = sum(len(a.split()) + len(b.split()) for a, b in ((r["src_text"], r["tgt_text"]) for r in rows))
    assert info["fra_Latn"]["n_words"] == summary["n_words"]["fra_Latn"] == words
    assert info["fra_Latn"]["name"] == "French" and info["zho_Hant"]["locale"] == "zh_Hant"
    assert sorted(summary["flores_languages"]) == sorted(c for c, v in info.items() if v["in_flores"])
    for split, n in (("dev", N_DEV), ("devtest", N_DEVTEST)):
        files = sorted((out / "flores" / split).iterdir())
        assert [f.name for f in files] == [f"{c}.{split}" for c in summary["flores_languages"]]
        assert all(len(lines(f)) == n for f in files) and N_DEV >= 3 and 40 <= N_DEVTEST <= 60


def test_language_codes():
    assert [iso639_3(x) for x in ("de", "fr", "en", "ar", "zh", "sw", "yue")] == \
        ["deu", "fra", "eng", "arb", "zho", "swh", "yue"]
    codes = corpus_locales()
    assert codes["fra_Latn"] == "fr" and codes["srp_Latn"] == "sr_Latn" and codes["srp_Cyrl"] == "sr"
    assert codes["zho_Hans"] == "zh" and codes["zho_Hant"] == "zh_Hant" and codes["nob_Latn"] == "nb"
    assert codes["azb_Arab"] == "az_Arab" and codes["azj_Latn"] == "az" and codes["pnb_Arab"] == "pa_Arab"
    assert not {"fr_CA", "sr_Cyrl", "no"} & set(codes.values())


def test_heldout_renderings_are_in_no_training_file(built):
    out, summary, info, train, held = built
    every_heldout = set().union(*held.values())
    for code, texts in train.items():
        assert not every_heldout & set(texts["bi"] + texts["mono"]), code
    keys = summary["held_out"]["dev"] + summary["held_out"]["devtest"]
    assert len(keys) == len(set(keys)) == N_DEV + N_DEVTEST
    assert {k.split(":")[0] for k in keys} == set(cc.KINDS)
    # nor are a held-out list's members listed together in any English training sentence
    english = {s for s in train["eng_Latn"]["bi"] + train["eng_Latn"]["mono"] if " and " in s or " or " in s}
    for _kind, _filler, members in (parse_item(k) for k in keys if k.startswith("list")):
        names = [cc.ENGLISH.territories[c] for c in members]
        assert not [s for s in english if all(n in s for n in names)], members


def test_every_part_of_a_heldout_item_is_in_training(built):
    # every word (run of letters or digits) of a held-out line is in the language's bitext side, and
    # also in its mono, of what prepare_mala.py keeps for training in the demo: --val-docs 1 holds out the
    # second document (pairs 10-19 at --group-size 10, mono sentences of the second mono document).
    # Languages written without spaces glue list members and connectors into one run ("意大利和俄罗斯"):
    # there the names are cut out as words of their own.
    out, summary, info, train, held = built
    n = cc.MONO_DOC_SENTENCES
    kept = {"bi": lambda xs: xs[:10] + xs[20:], "mono": lambda xs: xs[:n] + xs[2 * n:]}
    for code, sentences in held.items():
        names = sorted((Locale.parse(info[code]["locale"]).territories[c] for c in cc.HELDOUT_NAMES), key=len)
        name = regex.compile("|".join(map(regex.escape, names[::-1])))    # longest first
        cut = (lambda s: s) if all(" " in s for s in sentences) else (
            lambda s, name=name: name.sub(lambda m: f" {m[0]} ", s))
        for side in ("bi", "mono"):
            words = {w for s in kept[side](train[code][side]) for w in TOKEN.findall(cut(s))}
            missing = {w for s in sentences for w in TOKEN.findall(cut(s))} - words
            assert not missing, (code, side, sorted(missing)[:5])
    # the parts as the generator sees them (month and weekday of a date width, list member at its place,
    # the plural form of a count with its pattern, numbers) are in the French training sentences
    fr = Locale.parse("fr")
    items = [parse_item(k) for k in summary["held_out"]["dev"] + summary["held_out"]["devtest"]]
    words = {w for s in train["fra_Latn"]["bi"] for w in TOKEN.findall(s)}
    for kind, filler, value in items:
        if kind == "date":
            day = date.fromordinal(value)
            assert {format_date(day, "MMMM", locale=fr), str(day.year), str(day.day)} <= words
            if filler == "full":
                assert format_date(day, "EEEE", locale=fr) in words
        elif kind in cc.LIST_STYLES:
            assert {w for c in value for w in TOKEN.findall(fr.territories[c])} <= words
        else:   # the count's plural form with its pattern, from another count
            text = cc.render(fr, (kind, filler, value), {})
            pattern = regex.compile(regex.escape(cc.DIGITS.sub("#", text)).replace("\\#", r"\d+"))
            assert any(pattern.fullmatch(s) and s != text for s in train["fra_Latn"]["bi"]), text


def test_same_items_in_every_language(built):
    out, summary, info, train, held = built
    assert len(summary["flores_languages"]) >= 65
    # the base languages always have FLORES files; the others where their drawn volume holds the cover
    assert set(cc.BASE_LANGUAGES) <= set(summary["flores_languages"])
    for split in ("dev", "devtest"):
        items = [parse_item(k) for k in summary["held_out"][split]]
        for code in ("eng_Latn", "fra_Latn", "zho_Hans", "hau_Latn"):
            if code in summary["flores_languages"]:
                loc = Locale.parse(info[code]["locale"])
                expect = [cc.render(loc, i, loc.territories) for i in items]
                assert lines(out / "flores" / split / f"{code}.{split}") == expect
    # a French date has a French month name, a French list French names and connector
    for key, fr_line, en_line in zip(summary["held_out"]["devtest"], held["fra_Latn"][N_DEV:],
                                     held["eng_Latn"][N_DEV:], strict=True):
        kind, filler, value = parse_item(key)
        if kind == "date":
            month = format_date(date.fromordinal(value), "MMMM", locale="fr")
            assert month in fr_line and month in {"janvier", "février", "mars", "avril", "mai", "juin",
                                                  "juillet", "août", "septembre", "octobre", "novembre",
                                                  "décembre"}
        if kind == "list_or":
            assert " ou " in fr_line and " or " in en_line
        if kind == "relative":
            assert fr_line.startswith("dans " if value > 0 else "il y a ")


def test_resource_skew(built):
    out, summary, info, train, held = built
    base = summary["base_languages"]
    assert base == cc.BASE_LANGUAGES and "eng_Latn" in base
    assert all(set(summary["kinds"][c]) == set(cc.KINDS) for c in base)
    others = {c: n for c, n in summary["n_words"].items() if c not in base}
    assert math.log10(max(others.values()) / min(others.values())) > 2.5
    assert min(summary["n_words"][c] for c in base if c != "eng_Latn") >= max(others.values())
    decades = {int(math.log10(n)) for n in others.values()}
    assert decades >= {1, 2, 3, 4}     # every decade from tens to tens of thousands has languages
    n_kinds = [len(k) for k in summary["kinds"].values()]
    assert {1, 2, 7} <= set(n_kinds) and sum(n == 1 for n in n_kinds) > 10
    # FLORES languages spread over the volume range, the smallest with a few hundred words of bitext
    flores = sorted(summary["n_words"][c] for c in summary["flores_languages"] if c != "eng_Latn")
    assert 100 <= flores[0] <= 1000 and flores[-1] >= 10_000 and sum(n < 1000 for n in flores) >= 10
    assert all(v["not_in_flores"] for c, v in info.items() if not v["in_flores"] and not v["dropped"])


def test_native_checks(built):
    out, summary, info, train, held = built
    # root fallbacks ("+3 h", "5 km/h", "2024 M03 5") are no kind: Chiga's relative times and units are root's
    assert set(info["cgg_Latn"]["kinds"]) == {"date", "currency"}
    assert "relative" not in info["yor_Latn"]["kinds"] and "unit" not in info["yor_Latn"]["kinds"]
    assert info["azb_Arab"]["dropped"] and not info["azb_Arab"]["kinds"]     # all root: nothing native
    # Igbo and Filipino name territories as English does: no lists
    for code in ("ibo_Latn", "fil_Latn"):
        assert info[code]["kinds"] and not set(info[code]["kinds"]) & set(cc.LIST_STYLES), code
    igbo, ig = cc.native_profile("ig", "ibo_Latn"), Locale.parse("ig").territories
    assert igbo["names"] and all(ig[c] != cc.ENGLISH.territories[c] for c in igbo["names"])
    rows = read_jsonl(out / "raw" / "bi" / "eng_Latn-ibo_Latn" / "train.jsonl")
    assert rows and not [r for r in rows if " and " in r["src_text"] or " or " in r["src_text"]]
    # a few English-like names in a translated kind are native ("5,00 euros" in Spanish); lists in Japanese
    for code in ("spa_Latn", "jpn_Jpan"):
        assert {"currency", "list_and", "list_or"} <= set(info[code]["kinds"]), code
    # identical locales: one kept, the others reported
    assert info["nyn_Latn"]["dropped"] == "same CLDR text as cgg_Latn" and not info["cgg_Latn"]["dropped"]
    assert info["rwk_Latn"]["dropped"] == info["vun_Latn"]["dropped"] == "same CLDR text as jmc_Latn"
    # text in another script than the code's: dropped and reported, not written
    assert info["khk_Mong"]["dropped"].startswith("text not in Mong script")
    assert "khk_Mong" in summary["dropped"] and "khk_Mong" not in summary["languages"]
    # every written line is mostly in its code's script
    for code in ("zho_Hans", "jpn_Jpan", "kor_Kore", "rus_Cyrl", "hin_Deva", "arb_Arab"):
        names = "|".join(rf"\p{{Script={s}}}" for s in cc.SCRIPTS.get(code[-4:], [code[-4:]]))
        text = " ".join(train[code]["bi"][:200])
        assert len(regex.findall(names, text)) > 0.9 * len(regex.findall(r"\p{L}", text)), code


def test_deterministic_rebuild_and_seed(tmp_path):
    first = build_corpus(tmp_path / "a", seed=0, locales=SUBSET)
    again = build_corpus(tmp_path / "b", seed=0, locales=SUBSET)
    assert first == again and tree_bytes(tmp_path / "a") == tree_bytes(tmp_path / "b")
    assert first["languages"] == ["cgg_Latn", "cym_Latn", "eng_Latn", "fra_Latn", "hau_Latn"]
    assert first["dropped"] == {"nyn_Latn": "same CLDR text as cgg_Latn"}
    other = build_corpus(tmp_path / "a", seed=1, locales=SUBSET)      # rebuild over the first one
    assert other["held_out"] != first["held_out"]
    assert sorted(p.name for p in (tmp_path / "a").iterdir()) == ["flores", "raw"]   # no temp dir left
    en = [cc.render(cc.ENGLISH, parse_item(k), cc.ENGLISH.territories) for k in other["held_out"]["dev"]]
    assert lines(tmp_path / "a" / "flores" / "dev" / "eng_Latn.dev") == en


def test_bad_input(tmp_path):
    with pytest.raises(ValueError, match="fr_CA"):
        build_corpus(tmp_path / "x", locales=["fr", "fr_CA"])
    assert not (tmp_path / "x").exists()
    afile = tmp_path / "file"
    afile.write_text("not a dir")
    with pytest.raises(SystemExit, match="not a directory"):
        main([str(afile)])


def test_babel_merged_cache_does_not_leak_into_own_data():
    # Babel caches locale data by name alone: after Locale("rw") the cache holds MERGED data (root's date
    # patterns included), which localedata.load(merge_inherited=False) then returns as the locale's own.
    # Kinyarwanda has no date patterns of its own: its dates are root's pattern around Kinyarwanda names.
    localedata._cache.pop("rw", None)
    localedata._dict_cache.pop("rw", None)      # Babel's second cache, of the merged dicts it wraps
    own = cc.own_locale_data("rw")
    assert "date_formats" not in own or not own["date_formats"]
    assert Locale("rw").date_formats["full"].pattern       # a new Locale object fills the cache, merged
    assert "rw" in localedata._cache and localedata.load("rw", merge_inherited=False)["date_formats"]
    again = cc.own_locale_data("rw")     # (patterns do not compare equal across loads: compare the keys)
    assert set(again) == set(own) and not again.get("date_formats") and cc.own_date_widths("rw") == set()
    assert "date" not in cc.native_profile("rw", "kin_Latn")["fillers"]
