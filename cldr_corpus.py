"""
The embedded default corpus: a small, real, massively multilingual PARALLEL corpus built offline
from the CLDR data that Babel ships. It is the offline stand-in for the MaLA corpus (PAPER.md):
the same folder formats, FLORES-style language codes and a FLORES-style held-out split, with the
natural resource skew of CLDR: 329 languages, from ~900 train strings (fin_Latn, ell_Grek, ...) down
to a handful (bss_Latn: 7); ~166k pair lines, ~20 MB, ~3 s of one core (babel 2.19 / CLDR 49).

    python cldr_corpus.py OUT_DIR [--seed 0]

writes
    OUT_DIR/raw/bi/eng_Latn-<xxx_Scrp>/train.jsonl   {"src_text", "tgt_text", "src_lang", "tgt_lang"}
    OUT_DIR/raw/bi/<pivot>-<pivot>/train.jsonl       the same, between the non-English pivots
    OUT_DIR/raw/mono/<xxx_Scrp>/train.jsonl          {"text"}: a locale's strings of one kind, grouped
    OUT_DIR/flores/dev/<code>.dev, OUT_DIR/flores/devtest/<code>.devtest   line-aligned held-out keys
    OUT_DIR/flores/languages.json                    {code: {"name", "locale", "n_strings", ...}}

Choices (and why):
- A "string" is one CLDR display name, keyed like "territory:DE" or "month:format:1": names of
  languages, territories, scripts, current currencies, wide month/day/quarter/era/day-period names
  (format and stand-alone), relative day/week/... words ("yesterday"), measurement systems. Text with
  placeholders ({0}, %s: patterns, not text) and text without any letter are skipped. Units, time
  zones and historic currencies are left out, and language/script names are kept only for languages
  and scripts that have a CLDR locale: the rest would triple the size (~60 MB of pairs) with obscure
  or templated names ("heure normale de ...") that add nothing the demo needs.
- Only a locale's OWN data is read (Babel's pickle of it, see own_locale_data) plus its parents of
  the same language (nb/nn -> no): Babel's merged data would fill every locale with root's fallbacks
  ("M01") and hide the real skew. 'no' itself is skipped: since CLDR 46 it holds the Bokmål data,
  written once as nob_Latn (FLORES' code). Regional variants (fr_CA) are not used; a locale with a
  non-likely script (sr_Latn, zh_Hant) becomes its own code (srp_Latn, zho_Hant).
- Codes are FLORES-style ISO 639-3 + "_" + ISO 15924 (likely script from CLDR's likely subtags).
  ISO 639-1 -> 639-3 comes from inverting CLDR's language aliases (which map 639-2/T and 639-3 codes
  to the 2-letter code); where several 3-letter codes alias to one 2-letter code we pick the
  FLORES-200 code (arb, zho, pes, swh, ...) in MACRO_CHOICE.
- In a language whose script is not Latin, a string identical to the English one of the same key is
  an untranslated copy (and would fail the pipeline's script check): it is dropped and counted in
  languages.json ("n_same_as_english"). In Latin-script languages it is kept: "Canada" IS the French
  name of Canada.
- Bilingual folders hold one direction (eng_Latn-xxx, and pivot_i-pivot_j for i < j): MaLA publishes
  both directions as separate folders, and prepare_mala.py can emit both directions of any pair
  (--directions both). Non-English pivots are paired with each other only: pairing all ~330
  languages with five more pivots would make the corpus ~150 MB of the same strings.
- Mono documents: the strings of one kind of one locale, up to MONO_DOC_LINES per document, joined
  by newlines (e.g. the twelve month names), so mono documents look like (list-like) text.
- Held-out keys: N_DEV + N_DEVTEST language/territory-name keys drawn by seed among the
  HELDOUT_POOL English keys that most languages have. Their texts are removed from ALL train files
  (bi and mono, every language; also any other key whose text equals a held-out text of that
  language, so nothing leaks). FLORES files are written for the languages that have all held-out
  keys (~220 of ~330: the few-dozen-string languages have only calendar names), in the same key order
  for every language.
- build_corpus owns OUT_DIR/raw and OUT_DIR/flores: it writes both into OUT_DIR/.cldr_tmp.<pid> and
  swaps them in at the end (old ones removed), so a failed build leaves the previous corpus intact.
"""

import argparse
import json
import os
import pickle
import random
import shutil
import sys
import time
from collections import Counter
from pathlib import Path

from babel import Locale, localedata
from babel.core import get_global, parse_locale

PIVOTS = ["eng_Latn", "fra_Latn", "spa_Latn", "rus_Cyrl", "zho_Hans", "arb_Arab"]
N_DEV, N_DEVTEST = 10, 50       # dev >= 3 lines for 3-shot prompts; devtest a few dozen lines
HELDOUT_POOL = 150              # draw held-out keys among this many widest-covered English keys
MIN_TRAIN_STRINGS = 5           # a language with fewer train strings is left out
MONO_DOC_LINES = 16

# ISO 639-2/B (bibliographic) codes: CLDR aliases them too, they are never FLORES/639-3 codes.
BIBLIOGRAPHIC = set("alb arm baq bur chi cze dut fre geo ger gre ice mac mao may per rum slo tib wel".split())
# 2-letter codes with several 3-letter aliases (macrolanguage + its dominant individual language, or
# a retired code): the FLORES-200 code where FLORES-200 has the language, else the ISO 639-3 code.
MACRO_CHOICE = {
    "ak": "aka", "ar": "arb", "az": "azj", "dz": "dzo", "et": "est", "fa": "pes", "ff": "ful",
    "gn": "grn", "gu": "guj", "hr": "hrv", "iu": "iku", "ku": "kmr", "lv": "lvs", "mg": "plt",
    "mn": "khk", "ms": "zsm", "ne": "npi", "om": "gaz", "or": "ory", "ps": "pbu", "qu": "que",
    "ro": "ron", "sa": "san", "sc": "srd", "sq": "als", "sr": "srp", "sw": "swh", "uz": "uzn",
    "yi": "ydd", "za": "zha", "zh": "zho",
}
SKIP_LOCALES = {"no"}           # Bokmål data since CLDR 46; written once as nob_Latn (locale 'nb')
SAME_LANGUAGE_PARENTS = {"no"}  # nb and nn inherit from 'no': merge it (it is their language's data)

# (kind, locale-data field) of plain code -> name tables
NAME_TABLES = [("language", "languages"), ("territory", "territories"), ("script", "scripts"),
               ("measurement", "measurement_systems")]
CALENDAR_TABLES = [("month", "months"), ("day", "days"), ("quarter", "quarters"),
                   ("dayperiod", "day_periods")]


def iso639_3(lang: str) -> str:
    """ISO 639-1 -> 639-3 (FLORES flavour); 3-letter CLDR codes are kept as they are."""
    if len(lang) != 2:
        return lang
    if lang in MACRO_CHOICE:
        return MACRO_CHOICE[lang]
    candidates = sorted(k for k, v in get_global("language_aliases").items()
                        if v == lang and len(k) == 3 and k not in BIBLIOGRAPHIC)
    if len(candidates) != 1:
        raise ValueError(f"no unique ISO 639-3 code for {lang!r} in CLDR language aliases: {candidates}; "
                         f"add it to MACRO_CHOICE")
    return candidates[0]


def own_locale_data(name: str) -> dict:
    """A locale's own CLDR data, as babel.localedata.load(name, merge_inherited=False) reads it, but not
    through Babel's cache: that cache is keyed by name alone, so once anything in the process has used
    Locale(name) it returns the merged data (root's fallbacks included) whatever merge_inherited says."""
    with open(localedata.resolve_locale_filename(name), "rb") as f:
        return pickle.load(f)


def parent_locale(name: str) -> str:
    """The CLDR parent, as babel.localedata.load computes it."""
    parent = get_global("parent_exceptions").get(name)
    if parent:
        return parent
    if localedata._is_non_likely_script(name):
        return "root"
    parts = name.split("_")
    return "root" if len(parts) == 1 else "_".join(parts[:-1])


def corpus_locales() -> dict[str, str]:
    """{FLORES code: locale}: base locales (likely script) and language_Script locales whose script is
    not the likely one (the likely-script ones, e.g. sr_Cyrl, are the base locale's data again)."""
    likely = get_global("likely_subtags")
    codes = {}
    for name in sorted(localedata.locale_identifiers()):
        parts = name.split("_")
        if name in SKIP_LOCALES or len(parts) > 2:
            continue
        if len(parts) == 2 and not (len(parts[1]) == 4 and parent_locale(name) == "root"):
            continue                # regional variant (fr_CA) or likely-script duplicate (sr_Cyrl)
        script = parts[1] if len(parts) == 2 else parse_locale(likely[name])[2]
        code = f"{iso639_3(parts[0])}_{script}"
        if code in codes:
            raise ValueError(f"locales {codes[code]!r} and {name!r} both map to {code}")
        codes[code] = name
    return codes


def key_order(key: tuple):
    return tuple((0, part, "") if isinstance(part, int) else (1, 0, part) for part in key)


def locale_strings(locale: str, name_filter: dict[str, set] | None = None) -> dict[tuple, str]:
    """The locale's own display names (+ those of its same-language parents), keyed.
    name_filter: {kind: allowed codes} for the NAME_TABLES kinds (build_corpus keeps the names of the
    languages and scripts that have a CLDR locale: the other ~350 language names and ~180 script names
    are obscure and would add ~5 MB)."""
    name_filter = name_filter or {}
    chain = [locale]
    while (parent := parent_locale(chain[-1])) != "root" and (
            parent.split("_")[0] == locale.split("_")[0] or parent in SAME_LANGUAGE_PARENTS):
        chain.append(parent)
    out: dict[tuple, str] = {}

    def put(key, value):
        if not isinstance(value, str):
            return
        text = " ".join(value.split())  # one line, one kind of space (CLDR mixes in NBSPs)
        if text and "{" not in text and "%" not in text and any(ch.isalpha() for ch in text):
            out[key] = text

    current = set(cur for periods in get_global("territory_currencies").values()
                  for cur, _start, end, tender in periods if end is None and tender)
    for name in reversed(chain):    # parents first: the locale's own values win
        data = own_locale_data(name)
        for kind, field in NAME_TABLES:
            allowed = name_filter.get(kind)
            for code, value in data.get(field, {}).items():
                if allowed is None or code.split("_")[0] in allowed:
                    put((kind, code), value)
        for code, value in data.get("currency_names", {}).items():
            if code in current:
                put(("currency", code), value)
        for kind, field in CALENDAR_TABLES:
            for context, widths in data.get(field, {}).items():
                for index, value in widths.get("wide", {}).items():
                    put((kind, context, index), value)
        for index, value in data.get("eras", {}).get("wide", {}).items():
            put(("era", index), value)
        for field, table in data.get("date_fields", {}).items():
            for offset, value in (table.get("relative") or {}).items():
                put(("relative", field, offset), value)
    return out


def key_name(key: tuple) -> str:
    return ":".join(str(part) for part in key)


def pair_rows(src: str, src_table: dict, tgt: str, tgt_table: dict, rank: dict) -> list[dict]:
    """MaLA bilingual rows, paired by key in key order; the same text pair under two keys (a month's
    stand-alone name equal to its format name) is written once."""
    rows, seen = [], set()
    for key in sorted(src_table.keys() & tgt_table.keys(), key=rank.__getitem__):
        texts = src_table[key], tgt_table[key]
        if texts not in seen:
            seen.add(texts)
            rows.append({"src_text": texts[0], "tgt_text": texts[1], "src_lang": src, "tgt_lang": tgt})
    return rows


def mono_documents(items: list[tuple[tuple, str]]) -> list[dict]:
    """One document per run of up to MONO_DOC_LINES strings of the same kind, joined by newlines."""
    docs, kind, lines = [], None, []
    for key, text in items:
        if key[0] != kind or len(lines) == MONO_DOC_LINES:
            if lines:
                docs.append({"text": "\n".join(lines)})
            kind, lines = key[0], []
        lines.append(text)
    if lines:
        docs.append({"text": "\n".join(lines)})
    return docs


def _write_jsonl(path: Path, rows: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", encoding="utf-8", newline="\n") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False, separators=(",", ":")) + "\n")


def _write_lines(path: Path, lines: list[str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8", newline="\n")


def build_corpus(out_dir: Path, seed: int = 0, locales: list[str] | None = None) -> dict:
    """Write OUT_DIR/raw/{bi,mono} and OUT_DIR/flores (see the module doc); return a summary.
    locales: restrict to these CLDR locale names (tests); 'en' is always included."""
    out_dir = Path(out_dir)
    codes = all_codes = corpus_locales()
    if locales is not None:
        unknown = sorted(set(locales) - set(codes.values()))
        if unknown:
            raise ValueError(f"not corpus locales (base or non-likely-script locales): {unknown}")
        codes = {c: loc for c, loc in codes.items() if loc in set(locales) | {"en"}}
    name_filter = {"language": {loc.split("_")[0] for loc in localedata.locale_identifiers()},
                   "script": {code.split("_")[1] for code in all_codes}}
    strings = {code: locale_strings(loc, name_filter) for code, loc in codes.items()}
    english = strings["eng_Latn"]

    same_as_english = Counter()
    for code, table in strings.items():
        if code != "eng_Latn" and not code.endswith("_Latn"):
            for key in [k for k, v in table.items() if english.get(k) == v]:
                del table[key]
                same_as_english[code] += 1

    # held-out keys: widest-covered English language/territory names, drawn by seed
    coverage = Counter(key for table in strings.values() for key in table)
    pool = sorted((k for k in english if k[0] in ("language", "territory")), key=lambda k: (-coverage[k], k))
    if len(pool) < N_DEV + N_DEVTEST:
        raise ValueError(f"English has only {len(pool)} language/territory names, need {N_DEV + N_DEVTEST}")
    held = random.Random(seed).sample(pool[:HELDOUT_POOL], N_DEV + N_DEVTEST)
    held_set = set(held)

    rank = {k: i for i, k in enumerate(sorted(coverage, key=key_order))}   # sort once, not per language
    usable, train = {}, {}          # held-out keys and texts removed; train: also texts deduped
    for code, table in strings.items():
        held_texts = {table[k] for k in held if k in table}
        usable[code] = {k: v for k, v in table.items() if k not in held_set and v not in held_texts}
        seen, train[code] = set(), []
        for key in sorted(usable[code], key=rank.__getitem__):
            if usable[code][key] not in seen:
                seen.add(usable[code][key])
                train[code].append((key, usable[code][key]))
    languages = sorted(c for c, items in train.items() if len(items) >= MIN_TRAIN_STRINGS or c == "eng_Latn")
    flores_langs = [c for c in languages if all(k in strings[c] for k in held)]

    tmp = out_dir / f".cldr_tmp.{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        pairs = {}
        present_pivots = [p for p in PIVOTS[1:] if p in languages]
        pair_langs = [("eng_Latn", c) for c in languages if c != "eng_Latn"]
        pair_langs += [(a, b) for i, a in enumerate(present_pivots) for b in present_pivots[i + 1:]]
        for src, tgt in pair_langs:
            rows = pair_rows(src, usable[src], tgt, usable[tgt], rank)
            if rows:
                pairs[f"{src}-{tgt}"] = len(rows)
                _write_jsonl(tmp / "raw" / "bi" / f"{src}-{tgt}" / "train.jsonl", rows)
        for code in languages:
            _write_jsonl(tmp / "raw" / "mono" / code / "train.jsonl", mono_documents(train[code]))
        for code in flores_langs:
            for split, keys in (("dev", held[:N_DEV]), ("devtest", held[N_DEV:])):
                _write_lines(tmp / "flores" / split / f"{code}.{split}", [strings[code][k] for k in keys])
        info = {code: {"name": Locale.parse(codes[code]).get_display_name("en"), "locale": codes[code],
                       "n_strings": len(train[code]), "n_same_as_english": same_as_english[code],
                       "in_flores": code in flores_langs} for code in languages}
        (tmp / "flores").mkdir(parents=True, exist_ok=True)
        (tmp / "flores" / "languages.json").write_text(
            json.dumps(info, ensure_ascii=False, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)   # no half-written tree left behind
        raise

    # swap in: old outputs go into the tmp dir first, so a crash never leaves a half-written tree
    for part in ("raw", "flores"):
        if (out_dir / part).exists():
            os.replace(out_dir / part, tmp / f"old_{part}")
        os.replace(tmp / part, out_dir / part)
    shutil.rmtree(tmp)

    n_strings = {c: len(train[c]) for c in languages}
    return {"n_languages": len(languages), "n_pairs": len(pairs), "n_pair_lines": sum(pairs.values()),
            "n_strings": sum(n_strings.values()), "strings_per_language": n_strings, "pair_lines": pairs,
            "held_out_keys": {"dev": [key_name(k) for k in held[:N_DEV]],
                              "devtest": [key_name(k) for k in held[N_DEV:]]},
            "flores_languages": flores_langs}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Build the embedded CLDR parallel corpus (offline).")
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--seed", type=int, default=0, help="seed of the held-out key draw")
    args = parser.parse_args(argv)
    if args.out_dir.exists() and not args.out_dir.is_dir():
        raise SystemExit(f"cldr_corpus.py: {args.out_dir} exists and is not a directory")
    t0 = time.perf_counter()
    try:
        summary = build_corpus(args.out_dir, seed=args.seed)
    except (ValueError, OSError) as e:
        raise SystemExit(f"cldr_corpus.py: {e}") from None
    seconds = time.perf_counter() - t0
    size = sum(f.stat().st_size for part in ("raw", "flores") for f in (args.out_dir / part).rglob("*")
               if f.is_file())
    by_size = sorted(summary["strings_per_language"].items(), key=lambda kv: (kv[1], kv[0]))
    print(f"{summary['n_languages']} languages, {summary['n_pairs']} pair folders "
          f"({summary['n_pair_lines']} pair lines), {summary['n_strings']} mono strings, "
          f"{len(summary['flores_languages'])} FLORES languages x {N_DEV} dev + {N_DEVTEST} devtest lines, "
          f"{size / 1e6:.1f} MB in {seconds:.1f} s -> {args.out_dir}")
    print("largest: " + ", ".join(f"{c} {n}" for c, n in by_size[::-1][:5]))
    print("smallest: " + ", ".join(f"{c} {n}" for c, n in by_size[:5]))


if __name__ == "__main__":
    main(sys.argv[1:])
