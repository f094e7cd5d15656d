"""
The embedded demo corpus: a small, massively multilingual, COMPOSITIONAL corpus built offline from the CLDR
data that Babel ships, in MaLA's folder formats with a FLORES-style held-out split.

A sentence is an item rendered by Babel's formatters with CLDR's own patterns and words, the same item in
every language: a date ("Tuesday, March 5, 2024"), a relative time or duration ("in 3 hours", "3 hours"), a
measure ("25 kilometers"), an amount ("5.00 euros"), a list of territory names ("Germany, Japan, or Peru").
A held-out sentence is an item no training file has, whose every part (date pattern, month, weekday,
number, unit or currency in its count's plural form, list member at its place) is in that language's
training sentences: a model that learned the parts can translate the unseen combination. (A held-out
display name is a word that no training sentence has: no model could translate it.)

    python cldr_corpus.py OUT_DIR [--seed 0]  ->  OUT_DIR/raw/bi/eng_Latn-<code>/train.jsonl (src_text,
    tgt_text, src_lang, tgt_lang), OUT_DIR/raw/mono/<code>/train.jsonl (text: MONO_DOC_SENTENCES lines),
    OUT_DIR/flores/{dev,devtest}/<code>.{dev,devtest} (line i: the same item everywhere), languages.json

- Native only: a language gets a kind (and in it a date width, unit, currency) where its own CLDR data
  renders it, checked on probes: the letters differ from root's rendering (Babel fills gaps with root's
  "+3 h", "5 km/h", "5.00 EUR", English "or" lists) and from English's; a date width needs its own pattern.
  A Latin-script language may share a few renderings with English (Spanish "euros"), not most (COPY_SHARE,
  NAME_COPY_SHARE: Igbo's territory names are English). Of identical locales one is kept; a language whose
  text is in another script than its code says (khk_Mong: Cyrillic) is dropped, not silently discarded
  by the pipeline's script check. languages.json says why, per language.
- Bitext with English only, one direction (X->Y without English is zero-shot); mono: other items of the
  generator (MaLA's mono and bitext are different text), as many sentences as the bitext (fewer where the
  language's native items run out: that is its volume cap too).
- Volumes in bitext words (both sides): BASE_LANGUAGES get WORDS_BASE, the others a stratified log-uniform
  draw in [WORDS_MIN, WORDS_MAX] (separately for those that could have FLORES files): all tiers get some.
- Held-out: N_DEV + N_DEVTEST items drawn by seed from widely native fillers and a small pool of counts.
  No rendering of them is in any training file, nor a held-out list's members listed together. A
  language's bitext, and apart from it its mono, starts with a greedy cover (other items that together
  show every part of every held-out item), then random items. FLORES files where the held-out items are
  native, their parts can be shown and the bitext volume holds the cover (not the smallest languages).
- build_corpus writes into OUT_DIR/.cldr_tmp.<pid> and swaps raw/ and flores/ in at the end: a failed
  build leaves the previous corpus intact.
"""

import argparse
import json
import os
import pickle
import random
import shutil
import sys
import time
from datetime import date, timedelta
from functools import cache
from pathlib import Path

import regex
from babel import Locale, localedata
from babel.core import get_global, parse_locale
from babel.dates import format_date, format_timedelta
from babel.lists import format_list
from babel.numbers import format_currency
from babel.units import format_unit

from common import HelpFormatter

# the demo's base model (playing Llama 3) knows these: the high tier, each WORDS_BASE words of bitext
BASE_LANGUAGES = ["eng_Latn", "deu_Latn", "fra_Latn", "spa_Latn", "rus_Cyrl", "zho_Hans"]
WORDS_BASE = 36_000                 # bitext words (both sides) of a base language's eng_Latn-xxx pair
WORDS_MIN, WORDS_MAX = 25, 24_000   # the other languages: log-uniform in between (below the base's tier)
FILL_FIRST = 24                     # fill items before the covers: prepare's first held-out documents
N_DEV, N_DEVTEST = 4, 40            # dev >= 3 lines for 3-shot prompts
MONO_DOC_SENTENCES = 8

KINDS = ["date", "relative", "duration", "unit", "currency", "list_and", "list_or"]
LIST_STYLES = {"list_and": "standard", "list_or": "or"}
TIME_KINDS = ("relative", "duration")
FIRST_DAY, LAST_DAY = date(1950, 1, 1).toordinal(), date(2049, 12, 31).toordinal()
# seconds per unit as Babel's format_timedelta counts them; the largest count that stays in the unit
TIME_UNITS = {"second": (1, 59), "minute": (60, 59), "hour": (3600, 23), "day": (86400, 6),
              "week": (604800, 4), "month": (2592000, 11), "year": (31536000, 99)}
MEASURES = ["length-kilometer", "length-meter", "length-centimeter", "mass-kilogram", "mass-gram",
            "volume-liter", "speed-kilometer-per-hour", "temperature-celsius"]
CURRENCIES = ["EUR", "USD", "GBP", "JPY", "CNY", "INR"]
MAX_AMOUNT = 999                    # units and amounts: no digit grouping
FILLERS = {"date": ["full", "long"], "relative": list(TIME_UNITS), "duration": list(TIME_UNITS),
           "unit": MEASURES, "currency": CURRENCIES, "list_and": [2, 3], "list_or": [2, 3]}
TERRITORIES = ("DE FR ES IT GR CN MX BR AR CA PE JP EG NO RU IN PT US CH NG AU IL KE SE TH DK GB TR UA FI "
               "ID PL IE ZA IR VN NL KR SA PK").split()
# held-out fillers: native in nearly every language with the kind; not days, weeks: too few counts to
# show a plural form by other counts in both covers
HELDOUT_UNITS = ["second", "minute", "hour", "month", "year"]
HELDOUT_FILLERS = {"unit": MEASURES[:3], "currency": CURRENCIES[:3], "relative": HELDOUT_UNITS,
                   "duration": HELDOUT_UNITS}
HELDOUT_NAMES = TERRITORIES[:16]
# held-out counts: 3 of 5..10 (every unit has them) and 9 of 11..58; none ends in 1-4 or is 6: a plural
# form with few members (Russian "21 час" and 1, Slovenian 3 and 4, Welsh 6; Arabic "يومين" for 2)
# would leave no other count to show it in both covers
HELDOUT_COUNTS = [n for n in range(5, 59) if n % 10 in (0, 5, 7, 8, 9)]
COPY_SHARE, NAME_COPY_SHARE = 0.25, 0.7
MIN_LIST_NAMES = 20
SCRIPTS = {"Hans": ["Han"], "Hant": ["Han"], "Jpan": ["Han", "Hiragana", "Katakana"],
           "Kore": ["Hangul", "Han"]}
LETTERS, DIGITS = regex.compile(r"\p{L}+"), regex.compile(r"\d+")

# ISO 639-2/B (bibliographic) codes: CLDR aliases them too, they are never FLORES/639-3 codes.
BIBLIOGRAPHIC = set("alb arm baq bur chi cze dut fre geo ger gre ice mac mao may per rum slo tib wel".split())
# 2-letter codes with several 3-letter aliases (macrolanguage + its dominant individual language, or
# a retired code): the FLORES-200 code where FLORES-200 has the language, else the ISO 639-3 code.
MACRO_CHOICE = {"ak": "aka", "ar": "arb", "az": "azj", "dz": "dzo", "et": "est", "fa": "pes", "ff": "ful",
                "gn": "grn", "gu": "guj", "hr": "hrv", "iu": "iku", "ku": "kmr", "lv": "lvs", "mg": "plt",
                "mn": "khk", "ms": "zsm", "ne": "npi", "om": "gaz", "or": "ory", "ps": "pbu", "qu": "que",
                "ro": "ron", "sa": "san", "sc": "srd", "sq": "als", "sr": "srp", "sw": "swh", "uz": "uzn",
                "yi": "ydd", "za": "zha", "zh": "zho"}
# in Arabic script these macrolanguages are other individual languages: South Azerbaijani, Western
# Punjabi, Southern Uzbek
SCRIPT_CHOICE = {("az", "Arab"): "azb", ("pa", "Arab"): "pnb", ("uz", "Arab"): "uzs"}
SKIP_LOCALES = {"no"}           # Bokmål data since CLDR 46; written once as nob_Latn (locale 'nb')
SAME_LANGUAGE_PARENTS = {"no"}  # nb and nn inherit from 'no': it is their language's data


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
        code = f"{SCRIPT_CHOICE.get((parts[0], script)) or iso639_3(parts[0])}_{script}"
        if code in codes:
            raise ValueError(f"locales {codes[code]!r} and {name!r} both map to {code}")
        codes[code] = name
    return codes


def own_date_widths(name: str) -> set:
    """Date widths whose pattern is in the locale's own data or a same-language parent's (nb -> no)."""
    widths = set(own_locale_data(name).get("date_formats", {}))
    parent = parent_locale(name)
    if parent != "root" and (parent.split("_")[0] == name.split("_")[0] or parent in SAME_LANGUAGE_PARENTS):
        widths |= own_date_widths(parent)
    return widths


def render(locale: Locale, item: tuple, names: dict) -> str:
    """An item (kind, filler, value) as the locale writes it; names: territory code -> name (lists)."""
    kind, filler, value = item
    if kind == "date":
        text = format_date(date.fromordinal(value), filler, locale=locale)
    elif kind in TIME_KINDS:    # threshold 1: a count stays in its unit, never rounded up to the next
        text = format_timedelta(timedelta(seconds=value * TIME_UNITS[filler][0]), threshold=1,
                                add_direction=kind == "relative", format="long", locale=locale)
    elif kind == "unit":
        text = format_unit(value, filler, length="long", locale=locale)
    elif kind == "currency":
        text = format_currency(value, filler, format_type="name", locale=locale)
    else:
        text = format_list([names.get(c, c) for c in value], style=LIST_STYLES[kind], locale=locale)
    return " ".join(text.split())   # one line, one kind of space (CLDR uses NBSPs)


ENGLISH, ROOT = Locale.parse("en"), Locale.parse("root")
english = cache(lambda item: render(ENGLISH, item, ENGLISH.territories))
root_text = cache(lambda item: render(ROOT, item, {}))
# in any order: "Tue 5 M03 2024" (a pattern of its own around root's names) is root's "2024 M03 5, Tue"
letters = lambda text: sorted(LETTERS.findall(text))


def item_parts(item: tuple, text: str, weekday_widths) -> set:
    """What a rendering is made of: its numbers; the month and weekday of a date width; each list member at
    its place (a connector may be glued to it: "またはC"); else the rendering with its numbers blanked, i.e.
    the pattern with the unit or currency in the plural form of its count."""
    kind, filler, value = item
    parts = {("num", n) for n in DIGITS.findall(text)}
    if kind == "date":
        day = date.fromordinal(value)
        parts.add((kind, filler, "month", day.month))
        if filler in weekday_widths:
            parts.add((kind, filler, "weekday", day.weekday()))
    elif kind in LIST_STYLES:
        parts.update((kind, filler, i, code) for i, code in enumerate(value))
    else:
        parts.add((kind, filler, DIGITS.sub("#", text)))
    return parts


def item_key(item: tuple) -> str:
    kind, filler, value = item
    shown = date.fromordinal(value).isoformat() if kind == "date" else (
        ",".join(value) if kind in LIST_STYLES else f"{value:+d}" if kind == "relative" else value)
    return f"{kind}:{filler}:{shown}"


def random_item(kind: str, rng: random.Random, fillers: list, names: list, counts=None) -> tuple:
    """A random item of a kind; counts: the held-out draw's pool of counts (and days of the month)."""
    filler = rng.choice(fillers)
    if kind == "date":
        day = date.fromordinal(rng.randint(FIRST_DAY, LAST_DAY))
        day = day.replace(day=rng.choice([n for n in counts if n <= 28])) if counts else day
        return kind, filler, day.toordinal()
    if kind in TIME_KINDS:  # a held-out count is below the top: 11 months is Arabic's one "many" month count
        top = TIME_UNITS[filler][1]
        value = rng.choice([n for n in counts if n < top]) if counts else rng.randint(1, top)
        return kind, filler, -value if kind == "relative" and rng.random() < 0.5 else value
    if kind in LIST_STYLES:
        return kind, filler, tuple(rng.sample(names, filler))
    return kind, filler, rng.choice(counts) if counts else rng.randint(1, MAX_AMOUNT)


def variants(item: tuple, rng: random.Random, prof: dict, numbers: list, places: dict) -> list[tuple]:
    """Cover candidates for a held-out item: items sharing some of its parts, many with a number (numbers)
    or list members (places: (kind, length, place) -> names) of other held-out items: one sentence can
    show parts of several."""
    kind, filler, value = item
    if kind == "date":      # month and year (with a pooled day); day; month and day; weekday
        day = date.fromordinal(value)
        out = [day.replace(day=n) for n in numbers if n <= 28] + [day + timedelta(weeks=k) for k in (-53, 61)]
        for _ in range(4):
            y, m = rng.randint(1950, 2049), rng.randint(1, 12)
            for ymd in (day.year, day.month, rng.randint(1, 28)), (y, m, day.day), (y, day.month, day.day):
                try:
                    out.append(date(*ymd))
                except ValueError:  # no 31st in that month
                    pass
        return [(kind, filler, d.toordinal()) for d in out if FIRST_DAY <= d.toordinal() <= LAST_DAY]
    if kind in LIST_STYLES:
        out = []
        for i in range(filler):
            others = [[rng.choice(places[kind, filler, j]) for j in range(filler)] for _ in range(6)]
            others += [rng.sample([c for c in prof["names"] if c not in value], filler) for _ in range(4)]
            out += [(kind, filler, tuple(value[i] if j == i else c for j, c in enumerate(m))) for m in others]
        return [v for v in out if len(set(v[2])) == filler]
    # counts of the same plural form (same last digit, teens, small counts, the pool: Czech "2,00 americké
    # dolary" is 2 to 4), and the number in other kinds and fillers; samples of both keep covers fast
    top = lambda k, f: TIME_UNITS[f][1] if k in TIME_KINDS else 99
    sign, n = (-1 if value < 0 else 1), abs(value)
    form = [(kind, filler, sign * v) for v in range(1, top(kind, filler) + 1)
            if v <= 20 or v % 10 == n % 10 or v in numbers]
    number = [(k, f, s * n) for k in KINDS[1:5] for f in prof["fillers"].get(k, ()) if n <= top(k, f)
              for s in ((1, -1) if k == "relative" else (1,))]
    return rng.sample(form, min(12, len(form))) + rng.sample(number, min(8, len(number)))


PROBES = {"date": [date(2024, 3, 5).toordinal(), date(1998, 11, 29).toordinal()], "relative": [3, -4],
          "duration": [3, 4], "unit": [3, 25], "currency": [3, 25], "list_and": [("Xq", "Yq", "Zq")],
          "list_or": [("Xq", "Yq", "Zq")]}


def native_profile(locale_name: str, code: str) -> dict:
    """What the locale's own CLDR data renders natively: {"fillers": {kind: [fillers]}, "names": [territory
    codes], "weekday_widths", "fingerprint" (its native probe texts), "script_share"}."""
    loc, latin, reference = Locale.parse(locale_name), code.endswith("_Latn"), code == "eng_Latn"
    fillers, shown, own_dates = {}, [], own_date_widths(locale_name)
    for kind in KINDS:
        ok, copies, texts = [], [], {}
        for filler in FILLERS[kind]:
            probes = [(kind, filler, v[:filler] if kind in LIST_STYLES else v) for v in PROBES[kind]]
            texts[filler] = [render(loc, p, {}) for p in probes]
            if reference:   # English is what the others are compared with
                ok.append(filler)
            elif kind in LIST_STYLES and texts[filler] == [root_text(p) for p in probes]:
                continue    # separators count: "A、B、C" is native, root's "A, B, C" is not
            elif kind not in LIST_STYLES and any(letters(t) == letters(root_text(p))
                                                 for t, p in zip(texts[filler], probes)):
                continue
            elif kind == "date" and filler not in own_dates:    # root's pattern around native names
                continue
            elif all(letters(t) == letters(english(p)) for t, p in zip(texts[filler], probes)):
                copies.append(filler)
            else:
                ok.append(filler)
        if latin and kind not in LIST_STYLES and len(copies) <= COPY_SHARE * (len(ok) + len(copies)):
            ok += copies    # a translated kind that happens to share a word with English
        if len(ok) * 2 >= len(FILLERS[kind]):
            fillers[kind] = [f for f in FILLERS[kind] if f in ok]
            shown += [t for f in fillers[kind] for t in texts[f]]
    own = loc.territories
    same = [c for c in TERRITORIES if own.get(c) == ENGLISH.territories[c]]
    few_copies = reference or (latin and len(same) <= NAME_COPY_SHARE * len(TERRITORIES))
    names = [c for c in TERRITORIES if c in own and (c not in same or few_copies)]
    if len(names) < MIN_LIST_NAMES:
        for kind in LIST_STYLES:
            fillers.pop(kind, None)
    shown += [own[c] for c in names]
    n_letters = len("".join(LETTERS.findall(" ".join(shown))))
    in_script = "|".join(rf"\p{{Script={s}}}" for s in SCRIPTS.get(code[-4:], [code[-4:]]))
    return {"fillers": fillers, "names": names, "locale": loc, "fingerprint": "\n".join(shown),
            "weekday_widths": {w for w in FILLERS["date"]  # E, e, c: the weekday; '...': literal text
                               if regex.search("[Eec]", regex.sub("'[^']*'", "", str(loc.date_formats[w])))},
            "script_share": len(regex.findall(in_script, " ".join(shown))) / n_letters if n_letters else 1.0}


def select_languages(codes: dict[str, str]) -> tuple[dict, dict]:
    """({code: native profile} of the kept languages, {code: why dropped})."""
    profiles, dropped, seen = {}, {}, {}
    for code, name in codes.items():
        prof = native_profile(name, code)
        if not prof["fillers"]:
            dropped[code] = "no kind is native (its CLDR data renders only root's fallbacks or English)"
        elif prof["script_share"] < 0.5:
            dropped[code] = f"text not in {code[-4:]} script (only {prof['script_share']:.0%} of its letters)"
        elif prof["fingerprint"] in seen:
            dropped[code] = f"same CLDR text as {seen[prof['fingerprint']]}"
        else:
            seen[prof["fingerprint"]] = code
            profiles[code] = prof
    return profiles, dropped


def heldout_native(item: tuple, prof: dict) -> bool:
    kind, filler, value = item
    native = filler in prof["fillers"].get(kind, ())
    return native and (kind not in LIST_STYLES or set(value) <= set(prof["names"]))


def draw_heldout(rng: random.Random) -> list[tuple]:
    """N_DEV + N_DEVTEST distinct items, the kinds in turn (in a drawn order)."""
    kinds, items = rng.sample(KINDS, len(KINDS)), []
    counts = rng.sample([n for n in HELDOUT_COUNTS if n <= 10], 3) + rng.sample(HELDOUT_COUNTS[5:], 9)
    while len(items) < N_DEV + N_DEVTEST:
        kind = kinds[len(items) % len(kinds)]
        item = random_item(kind, rng, HELDOUT_FILLERS.get(kind, FILLERS[kind]), HELDOUT_NAMES, counts)
        items += [item] if item not in items else []
    return items


def greedy_cover(needed: set, candidates: list) -> list | None:
    """Few (greedy) candidates (item, text, parts) that together show every needed part; None: none can."""
    left, chosen = set(needed), []
    while left:
        candidates = [c for c in candidates if c[2] & left]
        if not candidates:
            return None
        chosen.append(max(candidates, key=lambda c: len(c[2] & left)))
        left -= chosen[-1][2]
    return chosen


def language_data(code: str, prof: dict, held: list, banned: dict, target_words: int, seed: int) -> dict:
    """A language's bitext pairs and mono sentences (held-out covers first, when the bitext holds one, then
    random items up to target_words), its FLORES lines or why it has none."""
    rng, loc, widths = random.Random(f"{seed}:{code}"), prof["locale"], prof["weekday_widths"]
    names = dict(loc.territories)
    used, bi, mono = set(held), [], []      # used: items and texts

    def usable(item, bitext: bool) -> str | None:
        """The item's rendering, unless it or its text is used or held out, or it lists held-out members."""
        if item in used or (item[0] in LIST_STYLES and any(s <= set(item[2]) for s in banned["lists"])):
            return None
        text = render(loc, item, names)
        bad = text in used or text in banned["texts"] or (bitext and english(item) in banned["texts"])
        return None if bad else text

    def take(item, text, out):
        used.update((item, text))
        out.append((english(item), text) if out is bi else text)

    why = next((f"held-out item not native: {item_key(i)}" for i in held if not heldout_native(i, prof)), "")
    flores = None if why else [render(loc, i, names) for i in held]
    if flores:
        needed = set().union(*(item_parts(i, t, widths) for i, t in zip(held, flores)))
        numbers, places = sorted({int(n) for t in flores for n in DIGITS.findall(t)} - {0}), {}
        for kind, filler, value in (i for i in held if i[0] in LIST_STYLES):
            for place, name in enumerate(value):
                places.setdefault((kind, filler, place), []).append(name)
        candidates = lambda: [(v, t, item_parts(v, t, widths)) for i in held for v in variants(
            i, rng, prof, numbers, places) if (t := usable(v, True)) is not None]
        pool = candidates()
        for out in (bi, mono):      # the mono cover: other items, from what the bitext left or a new sample
            cover = greedy_cover(needed, [c for c in pool if c[0] not in used and c[1] not in used])
            cover = cover or greedy_cover(needed, pool := candidates())
            if cover is None:
                lost = sorted(map(str, needed - set().union(*(c[2] for c in pool)))) or ["(all used)"]
                flores, why = None, f"no other item shows the held-out part {lost[0]}"
                break
            for item, text, _parts in cover:
                take(item, text, out)
    words = sum(len(en.split()) + len(x.split()) for en, x in bi)
    if flores and words + FILL_FIRST * words / max(len(bi), 1) > target_words:
        flores, why = None, f"bitext of {target_words} words cannot hold the held-out cover ({words}) and " \
                            f"{FILL_FIRST} other pairs"
    if not flores:      # the fill alone
        used.clear(), used.update(held), bi.clear(), mono.clear()
        words = 0
    covers = len(bi), len(mono)
    for out in (bi, mono):
        kinds, failures = list(prof["fillers"]), dict.fromkeys(prof["fillers"], 0)
        while kinds and (words < target_words if out is bi else len(mono) < len(bi)):
            kind = rng.choice(kinds)
            item = random_item(kind, rng, prof["fillers"][kind], prof["names"])
            if (text := usable(item, out is bi)) is None:
                failures[kind] += 1
                if failures[kind] > 50:     # the kind's items are used up: the language's cap
                    kinds.remove(kind)
                continue
            failures[kind] = 0
            take(item, text, out)
            words += len(bi[-1][0].split()) + len(text.split()) if out is bi else 0
    # the random items shuffled, then the covers: prepare_mala.py holds out the first odd-numbered documents
    # (--val-docs) for validation, and a cover must stay in training (FILL_FIRST items come before it)
    fill_bi, fill_mono = bi[covers[0]:], mono[covers[1]:]
    rng.shuffle(fill_bi)
    rng.shuffle(fill_mono)
    bi, mono = fill_bi + bi[:covers[0]], fill_mono + mono[:covers[1]]
    return {"bi": bi, "mono": mono, "flores": flores, "why": why, "words": words}


def _write(path: Path, lines: list) -> None:
    """A line per str, a JSON line per dict."""
    path.parent.mkdir(parents=True, exist_ok=True)
    dump = lambda x: x if isinstance(x, str) else json.dumps(x, ensure_ascii=False, separators=(",", ":"))
    path.write_text("".join(dump(x) + "\n" for x in lines), encoding="utf-8", newline="\n")


def build_corpus(out_dir: Path, seed: int = 0, locales: list[str] | None = None) -> dict:
    """Write OUT_DIR/raw/{bi,mono} and OUT_DIR/flores (see the module doc); return a summary.
    locales: restrict to these CLDR locale names (tests); 'en' is always included."""
    out_dir, codes = Path(out_dir), corpus_locales()
    if locales is not None:
        if unknown := sorted(set(locales) - set(codes.values())):
            raise ValueError(f"not corpus locales (base or non-likely-script locales): {unknown}")
        codes = {c: loc for c, loc in codes.items() if loc in set(locales) | {"en"}}
    profiles, dropped = select_languages(codes)
    held = draw_heldout(random.Random(f"{seed}:heldout"))
    banned = {"texts": {render(p["locale"], i, p["locale"].territories)
                        for p in profiles.values() for i in held if heldout_native(i, p)},
              "lists": [set(i[2]) for i in held if i[0] in LIST_STYLES]}
    base = [c for c in BASE_LANGUAGES if c in profiles and set(profiles[c]["fillers"]) == set(KINDS)]
    # stratified (language i of n draws in the i-th n-quantile), separately for the languages that could
    # have FLORES files and the others: both groups span the range
    targets, rng = dict.fromkeys(base, WORDS_BASE), random.Random(f"{seed}:volumes")
    for could in (True, False):
        group = [c for c in sorted(profiles)
                 if c not in base and could == all(heldout_native(i, profiles[c]) for i in held)]
        rng.shuffle(group)
        targets |= {c: round(WORDS_MIN * (WORDS_MAX / WORDS_MIN) ** ((i + rng.random()) / len(group)))
                    for i, c in enumerate(group)}
    data = {c: language_data(c, profiles[c], held, banned, targets[c], seed) for c in sorted(profiles)}
    data["eng_Latn"]["bi"], data["eng_Latn"]["words"] = [], 0   # English is the other side of every pair
    stats = {c: {"kinds": list(profiles[c]["fillers"]), "n_bi": len(d["bi"]), "n_mono": len(d["mono"]),
                 "n_words": d["words"], "in_flores": bool(d["flores"]), "not_in_flores": d["why"] or None}
             for c, d in data.items()}
    none = {"kinds": [], "n_bi": 0, "n_mono": 0, "n_words": 0, "in_flores": False, "not_in_flores": None}
    info = {c: {"name": Locale.parse(loc).get_display_name("en") or loc, "locale": loc,
                "dropped": dropped.get(c), **stats.get(c, none)} for c, loc in sorted(codes.items())}

    tmp = out_dir / f".cldr_tmp.{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        for code, d in data.items():
            if code != "eng_Latn":
                _write(tmp / "raw" / "bi" / f"eng_Latn-{code}" / "train.jsonl",
                       [{"src_text": en, "tgt_text": x, "src_lang": "eng_Latn", "tgt_lang": code}
                        for en, x in d["bi"]])
            _write(tmp / "raw" / "mono" / code / "train.jsonl", [
                {"text": "\n".join(d["mono"][i:i + MONO_DOC_SENTENCES])}
                for i in range(0, len(d["mono"]), MONO_DOC_SENTENCES)])
            if d["flores"]:
                _write(tmp / "flores" / "dev" / f"{code}.dev", d["flores"][:N_DEV])
                _write(tmp / "flores" / "devtest" / f"{code}.devtest", d["flores"][N_DEV:])
        _write(tmp / "flores" / "languages.json", [json.dumps(info, ensure_ascii=False, indent=1,
                                                              sort_keys=True)])
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)   # no half-written tree left behind
        raise
    # swap in: old outputs go into the tmp dir first, so a crash never leaves a half-written tree
    for part in ("raw", "flores"):
        if (out_dir / part).exists():
            os.replace(out_dir / part, tmp / f"old_{part}")
        os.replace(tmp / part, out_dir / part)
    shutil.rmtree(tmp)
    return {"n_languages": len(data), "languages": sorted(data), "base_languages": base, "dropped": dropped,
            "flores_languages": sorted(c for c, d in data.items() if d["flores"]),
            **{key: {c: s[key] for c, s in stats.items()} for key in ("kinds", "n_bi", "n_mono", "n_words")},
            "held_out": {split: [item_key(i) for i in items]
                         for split, items in (("dev", held[:N_DEV]), ("devtest", held[N_DEV:]))}}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("out_dir", type=Path, help="writes raw/ and flores/ in it")
    parser.add_argument("--seed", type=int, default=0, help="seed of the held-out draw and the volumes")
    parser.add_argument("--locales", nargs="+", help="only these CLDR locales (and 'en'): smoke runs")
    args = parser.parse_args(argv)
    if args.out_dir.exists() and not args.out_dir.is_dir():
        raise SystemExit(f"cldr_corpus.py: {args.out_dir} exists and is not a directory")
    t0 = time.perf_counter()
    try:
        s = build_corpus(args.out_dir, seed=args.seed, locales=args.locales)
    except (ValueError, OSError) as e:
        raise SystemExit(f"cldr_corpus.py: {e}") from None
    size = sum(f.stat().st_size for part in ("raw", "flores") for f in (args.out_dir / part).rglob("*")
               if f.is_file())
    words = sorted(n for c, n in s["n_words"].items() if c not in s["base_languages"]) or [0]
    print(f"{s['n_languages']} languages ({len(s['base_languages'])} base), {sum(s['n_bi'].values())} pairs, "
          f"{sum(s['n_mono'].values())} mono sentences, {len(s['flores_languages'])} FLORES languages x "
          f"{N_DEV} dev + {N_DEVTEST} devtest lines; {size / 1e6:.1f} MB in {time.perf_counter() - t0:.1f} s"
          f" -> {args.out_dir}\neng-X bitext words of the other languages: min {words[0]}, median "
          f"{words[len(words) // 2]}, max {words[-1]}; base languages {WORDS_BASE}")
    nothing = sorted(c for c, why in s["dropped"].items() if why.startswith("no kind"))
    print(f"dropped, no kind native: {len(nothing)} ({' '.join(nothing)})")
    for code in sorted(set(s["dropped"]) - set(nothing)):
        print(f"dropped {code}: {s['dropped'][code]}")


if __name__ == "__main__":
    main(sys.argv[1:])
