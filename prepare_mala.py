"""
MaLA bitext / monolingual text -> cleaned pairs -> pseudo-documents -> uint32 token files + index.json.

    python prepare_mala.py --input DIR [DIR ...] --out DATA --tokenizer tokenizer.model [--workers N]
    python prepare_mala.py --input DIR --out DATA --tokenizer T --shard 0/4   # one job of an array ...
    python prepare_mala.py --merge --out DATA                               # ... then merge the parts
    python prepare_mala.py --demo --out DATA                                # embedded CLDR corpus

Inputs (each --input DIR is one source folder or a root searched recursively for them):
  <src>-<tgt>/   bilingual (source name = folder name): *.parquet and *.jsonl[.gz] with src_text, tgt_text
                 [src_lang, tgt_lang] (MaLA) or source_text, target_text, source_lang, target_lang (OPUS);
                 Moses x.<src> + x.<tgt> line-aligned files; *.tsv[.gz] with src<TAB>tgt.
  <lang>/        monolingual (source name = the code): *.jsonl[.gz] with `text`, one document per line
                 (validation*/test*/dev* files are skipped: we hold out our own .val.bin).
Codes are FLORES-style xxx_Scrp. Row codes, where given, must be the folder's (swapped rows are turned).

Pipeline (the paper, sec. "Data"): NFC + whitespace clean-up -> drop (counted by reason) empty / invalid
UTF-8 / malformed / script mismatch / too long / duplicate -> groups of --group-size pairs, one
`[code]: text` line per side -> bos + tokens + eos. A group is held out for <source>.val.bin when it is one
of the first --val-docs odd-numbered groups or a hash of (seed, source, group) falls under --val-share.

Outputs: <source>.bin / .val.bin (little-endian uint32, via *.tmp), then the source's entry in index.json
(rewritten atomically; no entry = unfinished). A rerun keeps a source whose files match its entry and whose
"options" (those shaping the token stream) are this run's; it redoes the others. --shard i/n writes
index.shard-i-of-n.json instead; `--merge` joins the n parts into index.json.
"""

import argparse
import gzip
import hashlib
import json
import multiprocessing
import os
import re
import string
import sys
import time
import unicodedata
from bisect import bisect_right
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, fields
from functools import cache
from itertools import islice, zip_longest
from pathlib import Path

import numpy as np
import orjson
from tqdm import tqdm

DROP_REASONS = ("empty", "bad_utf8", "malformed", "script_mismatch", "too_long", "duplicate")
CODE_RE = re.compile(r"[a-z]{2,3}_[A-Z][a-z]{3}")
TOKEN_DTYPE = np.dtype("<u4")
JSONL = (".jsonl", ".jsonl.gz")
SKIP_MONO = ("valid", "dev", "test")
MALA_FIELDS = ("src_text", "tgt_text", "src_lang", "tgt_lang")
OPUS_FIELDS = ("source_text", "target_text", "source_lang", "target_lang")  # MaLA-OPUS
CONTROL_RE = re.compile(r"[\x00-\x08\x0e-\x1b\x7f\ufeff]")  # C0 controls (not whitespace), DEL, BOM
STR_OR_NONE = {str, type(None)}
JSON_DECODER = json.JSONDecoder()
TEST_SLEEP_ENV = "PREPARE_MALA_TEST_SLEEP"  # test hook: seconds to sleep after every encoded batch
_TEST_SLEEP = float(os.environ.get(TEST_SLEEP_ENV, 0))  # read once, not per batch
_PROGRESS_QUEUE = None  # set in each worker process by _init_worker


class InputError(Exception):
    """Bad input or arguments: main() turns it into a one-line message and exit status 1."""


# Script recognition -------------------------------------------------------------------------------
# A compact table of Unicode block ranges (ISO 15924 codes), looked up with bisect. Blocks, not the full
# Scripts.txt: enough to tell the scripts of FLORES-200 / MaLA apart.
SCRIPT_BLOCKS_TEXT = """
Latn 0041-005A,0061-007A,00AA,00BA,00C0-024F,0250-02AF,1D00-1DBF,1E00-1EFF,2C60-2C7F,A720-A7FF,AB30-AB6F,
     FB00-FB06,FF21-FF3A,FF41-FF5A;
Grek 0370-03FF,1F00-1FFF; Cyrl 0400-052F,1C80-1C8F,2DE0-2DFF,A640-A69F; Armn 0530-058F,FB13-FB17;
Hebr 0590-05FF,FB1D-FB4F; Arab 0600-06FF,0750-077F,0870-08FF,FB50-FDFF,FE70-FEFF; Syrc 0700-074F,0860-086F;
Thaa 0780-07BF; Nkoo 07C0-07FF; Samr 0800-083F; Deva 0900-097F,A8E0-A8FF; Beng 0980-09FF; Guru 0A00-0A7F;
Gujr 0A80-0AFF; Orya 0B00-0B7F; Taml 0B80-0BFF; Telu 0C00-0C7F; Knda 0C80-0CFF; Mlym 0D00-0D7F;
Sinh 0D80-0DFF; Thai 0E00-0E7F; Laoo 0E80-0EFF; Tibt 0F00-0FFF; Mymr 1000-109F,A9E0-A9FF,AA60-AA7F;
Geor 10A0-10FF,1C90-1CBF,2D00-2D2F; Hang 1100-11FF,3130-318F,A960-A97F,AC00-D7FF,FFA0-FFDC;
Ethi 1200-139F,2D80-2DDF,AB00-AB2F; Cher 13A0-13FF,AB70-ABBF; Cans 1400-167F,18B0-18FF; Ogam 1680-169F;
Runr 16A0-16FF; Tglg 1700-171F; Khmr 1780-17FF,19E0-19FF; Mong 1800-18AF; Limb 1900-194F; Tale 1950-197F;
Talu 1980-19DF; Bugi 1A00-1A1F; Lana 1A20-1AAF; Bali 1B00-1B7F; Sund 1B80-1BBF; Batk 1BC0-1BFF;
Lepc 1C00-1C4F; Olck 1C50-1C7F; Glag 2C00-2C5F; Copt 2C80-2CFF; Tfng 2D30-2D7F;
Hani 2E80-2FDF,3005-3007,3021-3029,3038-303B,3400-4DBF,4E00-9FFF,F900-FAFF,20000-2FA1F,30000-3134F;
Hira 3040-309F; Kana 30A0-30FF,31F0-31FF,FF66-FF9F; Bopo 3100-312F,31A0-31BF; Yiii A000-A4CF;
Vaii A500-A63F; Bamu A6A0-A6FF; Java A980-A9DF; Cham AA00-AA5F; Tavt AA80-AADF; Mtei AAE0-AAFF,ABC0-ABFF;
Dsrt 10400-1044F; Shaw 10450-1047F; Osge 104B0-104FF; Rohg 10D00-10D3F; Cakm 11100-1114F; Hmnp 1E100-1E14F;
Adlm 1E900-1E95F;
"""
_ITEMS = [item.replace(",", " ").split() for item in SCRIPT_BLOCKS_TEXT.split(";") if item.strip()]
SCRIPT_BLOCKS = sorted((int(r.split("-")[0], 16), int(r.split("-")[-1], 16), script)
                       for script, *ranges in _ITEMS for r in ranges)
assert all(a[1] < b[0] for a, b in zip(SCRIPT_BLOCKS, SCRIPT_BLOCKS[1:])), "overlapping script blocks"
_BLOCK_STARTS = [start for start, _, _ in SCRIPT_BLOCKS]
KNOWN_SCRIPTS = {script for _, _, script in SCRIPT_BLOCKS}
# Code suffixes that stand for several scripts in running text (ISO 15924 "Jpan" = Han + kana, ...).
SCRIPT_SETS = {"Hans": {"Hani"}, "Hant": {"Hani"}, "Hanb": {"Hani", "Bopo"}, "Jpan": {"Hani", "Hira", "Kana"},
               "Kore": {"Hang", "Hani"}}
LETTERS_RE = re.compile(r"[^\W\d_]+")  # letters of any script (Python's \w minus digits and "_")


@cache
def script_regex(suffix: str) -> tuple[re.Pattern, re.Pattern] | None:
    """(runs of the suffix's script blocks, one letter of any other script); None for an unknown suffix."""
    scripts = SCRIPT_SETS.get(suffix, {suffix})
    if not scripts <= KNOWN_SCRIPTS:
        return None
    ranges = "".join(f"{re.escape(chr(a))}-{re.escape(chr(b))}" for a, b, s in SCRIPT_BLOCKS if s in scripts)
    return re.compile(f"[{ranges}]+"), re.compile(rf"[^\W\d_{ranges}]")


def script_matches(text: str, suffix: str) -> bool:
    """True when the suffix's script is the most frequent script of the text's letters. Fast paths at C
    speed first: no letter of another script (the usual case), or the suffix's script has half the letters."""
    if suffix == "Latn" and text.isascii():  # all its letters are Latin: the English side of most pairs
        return True
    regexes = script_regex(suffix)
    if regexes is None or regexes[1].search(text) is None:  # unknown suffix (the caller warns): keep
        return True
    count_letters = lambda s: sum(map(len, LETTERS_RE.findall(s)))
    if 2 * count_letters(regexes[0].sub("", text)) <= count_letters(text):
        return True
    counts = Counter()
    for ch in "".join(LETTERS_RE.findall(text)):
        i = bisect_right(_BLOCK_STARTS, ord(ch)) - 1
        counts[SCRIPT_BLOCKS[i][2] if i >= 0 and ord(ch) <= SCRIPT_BLOCKS[i][1] else "Zzzz"] += 1
    scripts = SCRIPT_SETS.get(suffix, {suffix})
    n_target = sum(n for s, n in counts.items() if s in scripts)
    return all(n_target >= n for s, n in counts.items() if s not in scripts)


# Cleaning ------------------------------------------------------------------------------------------
def clean_text(text: str) -> str:
    """NFC, no control characters, whitespace runs (newlines too) -> one space. C-speed checks first:
    most text needs no change."""
    if not text.isascii() and not unicodedata.is_normalized("NFC", text):  # isascii: O(1), ASCII is NFC
        text = unicodedata.normalize("NFC", text)
    if text.isprintable():  # then its only whitespace is " " (all other whitespace is unprintable)
        if "  " not in text and text[:1] != " " and text[-1:] != " ":
            return text
    else:
        text = CONTROL_RE.sub("", text)
    return " ".join(text.split())


# Discovery of sources ------------------------------------------------------------------------------
@dataclass
class SourceJob:
    name: str
    kind: str  # "bi" or "mono"
    langs: list[str]
    files: list[tuple[str, list[str]]]  # (reader, paths) in a fixed order
    n_bytes: int = 0


def source_files(folder: Path, codes: list[str]) -> list[tuple[str, list[str]]]:
    """The files of a source folder with their reader, in natural order (OPUS shards x_2 before x_10)."""
    names = sorted((p.name for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")),
                   key=lambda n: [(int(s), "") if s.isdigit() else (-1, s) for s in re.split(r"(\d+)", n)])
    if len(codes) == 1:
        return [("jsonl", [str(folder / n)]) for n in names
                if n.endswith(JSONL) and not n.startswith(SKIP_MONO)]
    files, (src, tgt) = [], codes
    for name in names:
        path = str(folder / name)
        reader = ("parquet" if name.endswith(".parquet") else "jsonl" if name.endswith(JSONL)
                  else "tsv" if name.endswith((".tsv", ".tsv.gz")) else None)
        if reader:
            files.append((reader, [path]))
        elif src != tgt and name.endswith((f".{src}", f".{tgt}")):
            this, other = (src, tgt) if name.endswith(f".{src}") else (tgt, src)
            partner = name[: -len(this)] + other
            if partner not in names:
                raise InputError(f"Moses file {path} has no partner {folder / partner}")
            if this == src:
                files.append(("moses", [path, str(folder / partner)]))
    return files


def discover(inputs: list[str]) -> list[SourceJob]:
    """The source folders (named by a code or a code pair) under `inputs`, searched in name order."""
    jobs: dict[str, SourceJob] = {}
    for d in inputs:
        if not Path(d).is_dir():
            raise InputError(f"--input {d}: not a directory")
        for root, dirs, names in os.walk(Path(d).resolve(), followlinks=True):
            folder, codes = Path(root), os.path.basename(root).split("-")
            dirs[:] = sorted(name for name in dirs if not name.startswith("."))
            if len(codes) <= 2 and all(CODE_RE.fullmatch(c) for c in codes):
                dirs.clear()  # a source folder's subfolders are not searched
                files = source_files(folder, codes)
                if not files:
                    print(f"warning: {folder}: no input file of a known format, skipped", file=sys.stderr)
                elif folder.name in jobs:
                    raise InputError(f"source {folder.name} found twice: {jobs[folder.name].files[0][1][0]} "
                                     f"and {folder}")
                else:
                    n_bytes = sum(os.path.getsize(p) for _, paths in files for p in paths)
                    kind = "bi" if len(codes) == 2 else "mono"
                    jobs[folder.name] = SourceJob(folder.name, kind, codes, files, n_bytes)
            elif any(n.endswith((".parquet", ".tsv", ".jsonl", ".gz")) for n in names if n[0] != "."):
                raise InputError(f"folder {folder} holds data files but its name is not a language code or "
                                 "pair (expected xxx_Scrp or xxx_Scrp-yyy_Scrp, e.g. eng_Latn-fra_Latn)")
    return [jobs[name] for name in sorted(jobs)]


# Readers ------------------------------------------------------------------------------------------
# They stream (src_text, tgt_text, src_code | None, tgt_code | None), or (text, None, None, None) for mono.
# report(reason, message) counts parse-level drops (bad_utf8, malformed); progress(n) gets input bytes read.
def _text_lines(path: str, progress):
    """Yield (line number, bytes line) in constant memory, reporting the compressed/raw bytes consumed."""
    with open(path, "rb") as raw:
        stream = gzip.GzipFile(fileobj=raw) if path.endswith(".gz") else raw
        reported = 0
        for lineno, line in enumerate(stream, 1):
            yield lineno, line
            if lineno % 4096 == 0:
                progress(raw.tell() - reported)
                reported = raw.tell()
        progress(os.path.getsize(path) - reported)


def _decode(line: bytes, path: str, lineno: int, report) -> str | None:
    try:
        return line.decode("utf-8").rstrip("\r\n")
    except UnicodeDecodeError as e:
        report("bad_utf8", f"{path}:{lineno}: invalid UTF-8 ({e.reason} at byte {e.start}), line skipped")


def read_jsonl(path: str, kind: str, report, progress):
    for lineno, raw in _text_lines(path, progress):
        try:  # orjson parses the bytes 2x faster than decode + json. It accepts less than json (no NaN, no
            row = orjson.loads(raw)  # lone surrogates): what it refuses, json decides and reports below
        except orjson.JSONDecodeError:
            line = _decode(raw, path, lineno, report)
            if line is None or not line.strip():
                continue
            try:  # raw_decode after lstrip: any Unicode whitespace around the object is allowed
                row, end = JSON_DECODER.raw_decode(line, len(line) - len(line.lstrip()))
                if line[end:].strip():
                    raise json.JSONDecodeError("Extra data", line, end) from None
            except json.JSONDecodeError as e:
                report("malformed", f"{path}:{lineno}: malformed JSON ({e.msg}), line skipped")
                continue
        row = row if isinstance(row, dict) else {}
        if kind == "mono":
            keys, n_texts, values = ("text",), 1, [row.get("text"), None, None, None]
        else:
            keys, n_texts = MALA_FIELDS if "src_text" in row or "tgt_text" in row else OPUS_FIELDS, 2
            values = list(map(row.get, keys))
        # strings or absent, and at least one text present (an empty side is counted later as "empty")
        has_text = values[0] is not None or values[n_texts - 1] is not None
        if has_text and STR_OR_NONE.issuperset(map(type, values)):
            yield values
        else:
            report("malformed", f"{path}:{lineno}: expected string field(s) {', '.join(keys[:n_texts])}, "
                                "line skipped")


def read_parquet(path: str, kind: str, report, progress, batch_rows: int = 8192):
    import pyarrow.parquet as pq  # lazy: only parquet inputs pay for the import
    parquet = pq.ParquetFile(path)
    schema = parquet.schema_arrow
    keys = OPUS_FIELDS if "source_text" in schema.names else MALA_FIELDS
    if missing := [c for c in keys[:2] if c not in schema.names]:
        raise InputError(f"{path}: missing column {', '.join(missing)} (has: {', '.join(schema.names)})")
    columns = [c for c in keys if c in schema.names]
    for c in columns:  # string columns are valid UTF-8 by construction; binary ones are not text
        if str(schema.field(c).type) not in ("string", "large_string"):
            raise InputError(f"{path}: column {c} is {schema.field(c).type}, expected string")
    size, n_rows, done = os.path.getsize(path), max(parquet.metadata.num_rows, 1), 0
    for batch in parquet.iter_batches(batch_size=batch_rows, columns=columns):
        cols = [batch.column(c).to_pylist() if c in columns else [None] * batch.num_rows for c in keys]
        yield from zip(*cols, strict=True)
        progress(size * (done + batch.num_rows) // n_rows - size * done // n_rows)
        done += batch.num_rows


def read_tsv(path: str, kind: str, report, progress):
    for lineno, raw in _text_lines(path, progress):
        if (line := _decode(raw, path, lineno, report)) is None:
            continue
        if len(cols := line.split("\t")) == 2:
            yield [*cols, None, None]
        else:
            report("malformed", f"{path}:{lineno}: expected 2 tab-separated fields, found {len(cols)}, "
                                "line skipped")


def read_moses(src_path: str, tgt_path: str, kind: str, report, progress):
    n_src = n_tgt = 0
    for src_line, tgt_line in zip_longest(_text_lines(src_path, progress), _text_lines(tgt_path, progress)):
        n_src, n_tgt = n_src + (src_line is not None), n_tgt + (tgt_line is not None)
        if src_line is None or tgt_line is None:
            continue  # only counting now: the error below names both line counts
        src = _decode(src_line[1], src_path, n_src, report)
        tgt = _decode(tgt_line[1], tgt_path, n_tgt, report) if src is not None else None
        if src is not None and tgt is not None:
            yield [src, tgt, None, None]
    if n_src != n_tgt:
        raise InputError(f"Moses files differ in line count: {src_path} has {n_src} lines, "
                         f"{tgt_path} has {n_tgt}")


READERS = {"jsonl": read_jsonl, "parquet": read_parquet, "tsv": read_tsv, "moses": read_moses}


# Cleaned records -> pseudo-documents ---------------------------------------------------------------
@dataclass
class Options:
    out: str
    tokenizer: str
    group_size: int = 10  # pairs per pseudo-document (the paper)
    template: str = "[{code}]: {text}"  # PAPER.md: the authors' own evaluation prompt format
    directions: str = "fwd"  # or "both" (each group also reversed) or "random" (per group, by seed)
    seed: int = 0
    val_docs: int = 2  # ours, not the paper's: every source gets a few held-out documents ...
    val_share: float = 0.005  # ... and large ones 0.5%: per-tier validation curves without costing data
    max_chars: int = 2000  # per side; FLORES sentences stay under ~1,000 chars: longer is misalignment
    max_doc_chars: int = 1_000_000  # a monolingual document
    batch_docs: int = 512  # documents per encoding batch (memory stays flat: ~2 batches in flight)
    threads: int = 0  # encoder threads; 0: encode on the worker's own thread

    def stream_options(self) -> dict:  # recorded per source in index.json: a rerun with others redoes it
        return {k: v for k, v in vars(self).items() if k not in ("out", "tokenizer", "batch_docs", "threads")}


def unit_hash(*parts) -> float:
    """A number in [0, 1) from its parts: the same on every machine, Python version and worker count."""
    digest = hashlib.blake2b(":".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") / 2**64


def clean_records(job: SourceJob, opts: Options, report, progress):
    """Yield cleaned, checked, de-duplicated (src, tgt) pairs, or (text,) for mono."""
    seen = set()  # hashes of kept records: ~70 bytes per unique record, fine for one source's size
    suffixes = [code[-4:] for code in job.langs]
    unknown = [code for code in job.langs if script_regex(code[-4:]) is None]
    src, tgt = job.langs if job.kind == "bi" else (None, None)
    limit = opts.max_chars if job.kind == "bi" else opts.max_doc_chars
    n_kept = 0
    for reader, paths in job.files:
        for a, b, code_a, code_b in READERS[reader](*paths, job.kind, report, progress):
            if src is None:  # monolingual documents keep their lines: each cleaned, empty ones dropped
                texts = ("\n".join(line for line in map(clean_text, (a or "").splitlines()) if line),)
            else:
                if code_a not in (None, src) or code_b not in (None, tgt):
                    if code_a not in (None, tgt) or code_b not in (None, src):
                        report("malformed", f"{paths[0]}: row codes {code_a}-{code_b} are not the folder's, "
                                            "skipped")
                        continue
                    a, b = b, a  # a row of the opposite direction
                texts = (clean_text(a or ""), clean_text(b or ""))
            # the checks below are the hot loop of the whole script: plain comparisons, no helper calls
            if not (texts[0] and texts[-1]):
                report("empty")
            elif len(texts[0]) > limit or len(texts[-1]) > limit:
                report("too_long")
            elif not (script_matches(texts[0], suffixes[0])
                      and (src is None or script_matches(texts[1], suffixes[1]))):
                report("script_mismatch")
            elif (key := hash(texts)) in seen:
                report("duplicate")
            else:
                seen.add(key)
                n_kept += 1
                yield texts
    if unknown:
        report(None, f"unknown script {', '.join(c[-4:] for c in unknown)} (code {', '.join(unknown)}): "
                     f"script check skipped for {n_kept * len(unknown)} texts, nothing dropped", always=True)


@cache
def text_formatter(template: str, code: str):
    """template.format(code=code, text=text) as a function of text: a concatenation (4x faster) when the
    template inserts {text} once and unchanged (no "{text!r}", "{text:.3}", "{text[0]}")."""
    fields = [(name, spec, conv) for _, name, spec, conv in string.Formatter().parse(template) if name]
    if [f for f in fields if "text" in f[0] + (f[1] or "")] == [("text", "", None)]:
        head, _, tail = template.format(code=code, text="\0").partition("\0")
        if "\0" not in tail:
            return lambda text: head + text + tail
    return lambda text: template.format(code=code, text=text)


def iter_documents(job: SourceJob, opts: Options, report, progress):
    """Yield (held out?, document text, n_pairs or n_lines, n_words); a mono record is a group of its own."""
    records = clean_records(job, opts, report, progress)
    size = 1 if job.kind == "mono" else opts.group_size
    for g, group in enumerate(iter(lambda: list(islice(records, size)), [])):
        # the first few odd groups guarantee --val-docs held-out documents in any source with 2x that many
        held_out = ((g < 2 * opts.val_docs and g % 2 == 1)
                    or unit_hash(opts.seed, job.name, g, "val") < opts.val_share)
        if job.kind == "mono":
            text = group[0][0]
            yield held_out, text, 1, text.count(" ") + text.count("\n") + 1  # cleaned: one separator per gap
            continue
        src, tgt = job.langs
        forward = opts.directions != "random" or unit_hash(opts.seed, job.name, g, "direction") < 0.5
        words = sum(a.count(" ") + b.count(" ") + 2 for a, b in group)  # cleaned: single spaces
        for fwd in ([True, False] if opts.directions == "both" else [forward]):
            (tag_a, tag_b), pairs = ((src, tgt), group) if fwd else ((tgt, src), [p[::-1] for p in group])
            fmt_a, fmt_b = text_formatter(opts.template, tag_a), text_formatter(opts.template, tag_b)
            text = "\n".join([f"{fmt_a(a)}\n{fmt_b(b)}" for a, b in pairs])
            yield held_out, text, len(group), words


# Tokens -> files -----------------------------------------------------------------------------------
class TokenFile:
    """Documents' tokens appended to <path>.tmp (renamed to <path> when complete); counts what went in."""

    def __init__(self, path: Path):
        self.path, self.tmp = path, path.with_name(path.name + ".tmp")
        self.file, self.sha = open(self.tmp, "wb"), hashlib.sha256()
        self.n_docs = self.n_units = self.n_tokens = self.n_words = 0  # units: pairs (bi) or lines (mono)

    def add(self, ids: np.ndarray, n_units: int, n_words: int) -> None:
        data = ids.astype(TOKEN_DTYPE, copy=False).tobytes()
        self.file.write(data)
        self.sha.update(data)
        self.n_docs, self.n_units = self.n_docs + 1, self.n_units + n_units
        self.n_tokens, self.n_words = self.n_tokens + len(ids), self.n_words + n_words

    def stats(self, kind: str) -> dict:
        return {"n_docs": self.n_docs, "n_pairs": self.n_units if kind == "bi" else 0,
                "n_lines": self.n_units if kind == "mono" else 0, "n_tokens": self.n_tokens,
                "n_words": self.n_words, "sha256": self.sha.hexdigest()}


@cache
def load_tokenizer(path: str):
    from tokenizer import Tokenizer  # imported here: the readers and cleaning work without tiktoken
    return Tokenizer(path)


def make_reporter(source: str, drops: dict, limit: int = 5):
    """report(reason, message=""): count a drop under `reason` (if any); print the first `limit` messages."""
    n_messages = 0

    def report(reason: str | None, message: str = "", always: bool = False) -> None:
        nonlocal n_messages
        if reason:
            drops[reason] += 1
        if message:
            n_messages += 1
            if n_messages <= limit or always:
                tqdm.write(f"warning: {source}: {message}", file=sys.stderr)
            elif n_messages == limit + 1:
                tqdm.write(f"warning: {source}: more warnings suppressed (counts in index.json)",
                           file=sys.stderr)

    return report


def process_source(job: SourceJob, opts: Options, progress=lambda n: None) -> dict:
    """Tokenize one source into <name>.bin / <name>.val.bin (via *.tmp); return its index entry."""
    tok = load_tokenizer(opts.tokenizer)
    train, val = (TokenFile(Path(opts.out) / f"{job.name}{ext}") for ext in (".bin", ".val.bin"))
    drops = dict.fromkeys(DROP_REASONS, 0)

    def write(arrays, docs):
        for ids, (held_out, _, n_units, n_words) in zip(arrays, docs, strict=True):
            (val if held_out else train).add(ids, n_units, n_words)
        if _TEST_SLEEP:
            time.sleep(_TEST_SLEEP)

    def encode(texts):
        return [tok.encode_array(text, bos=True, eos=True) for text in texts]

    docs, pending = iter_documents(job, opts, make_reporter(job.name, drops), progress), None
    batches = iter(lambda: list(islice(docs, opts.batch_docs)), [])
    try:
        if opts.threads == 0:  # one core per worker: the mode for as many workers as cores
            for batch in batches:
                write(encode([text for _, text, _, _ in batch]), batch)
        else:  # batch k is encoded on the pool's threads while this one cleans batch k+1. tiktoken's Rust
            # core releases the GIL, but each call needs it back from the cleaning thread: one encoder
            # thread gains little, two on two cores ~1.3x (bench.py)
            with ThreadPoolExecutor(opts.threads) as encoder:
                for batch in batches:
                    texts, step = [text for _, text, _, _ in batch], -(-len(batch) // opts.threads)
                    futures = [encoder.submit(encode, texts[i:i + step]) for i in range(0, len(texts), step)]
                    if pending:
                        write([ids for future in pending[0] for ids in future.result()], pending[1])
                    pending = (futures, batch)
                if pending:
                    write([ids for future in pending[0] for ids in future.result()], pending[1])
        for f in (train, val):  # no fsync: a file lost to a power cut fails the size/sha256 check: redone
            f.file.close()
            os.replace(f.tmp, f.path)
    finally:
        for f in (train, val):
            f.file.close()
            f.tmp.unlink(missing_ok=True)
    return {"kind": job.kind, "langs": list(job.langs), "bin": train.path.name, "val_bin": val.path.name,
            **train.stats(job.kind), "val": val.stats(job.kind), "dropped": drops,
            "options": opts.stream_options()}


# index.json ----------------------------------------------------------------------------------------
def file_sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def is_complete(out: Path, entry: dict, stream_options: dict) -> bool:
    """Made with these options, and both token files have the entry's size and sha256 (reads them all)."""
    return entry.get("options") == stream_options and all(
        (out / name).exists() and (out / name).stat().st_size == 4 * stats["n_tokens"]
        and file_sha256(out / name) == stats["sha256"]
        for name, stats in ((entry["bin"], entry), (entry["val_bin"], entry["val"])))


def write_json_atomic(path: Path, data: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n")
    os.replace(tmp, path)


def write_index(path: Path, tokenizer: dict, sources: dict) -> None:
    write_json_atomic(path, {"format": 1, "dtype": "uint32", "tokenizer": tokenizer,
                             "sources": {name: sources[name] for name in sorted(sources)}})


def merge_shards(out: Path) -> dict:
    parts = sorted(out.glob("index.shard-*-of-*.json"))
    if not parts:
        raise InputError(f"--merge: no index.shard-*-of-*.json in {out}")
    n = max(int(re.fullmatch(r"index\.shard-\d+-of-(\d+)\.json", p.name).group(1)) for p in parts)
    expected = [out / f"index.shard-{i}-of-{n}.json" for i in range(n)]
    if parts != sorted(expected):
        raise InputError(f"--merge: expected exactly {', '.join(p.name for p in expected)} in {out}, "
                         f"found {', '.join(p.name for p in parts)}")
    datas = [json.loads(p.read_text()) for p in parts]
    if len({d["tokenizer"]["sha256"] for d in datas}) != 1:
        raise InputError(f"--merge: shard parts in {out} were made with different tokenizers")
    sources = {name: entry for d in datas for name, entry in d["sources"].items()}
    write_index(out / "index.json", datas[0]["tokenizer"], sources)
    print(summary_table(sources))
    return sources


# Driver --------------------------------------------------------------------------------------------
def _init_worker(queue) -> None:
    global _PROGRESS_QUEUE
    _PROGRESS_QUEUE = queue


def _worker(job: SourceJob, opts: Options) -> tuple[str, dict]:
    return job.name, process_source(job, opts, _PROGRESS_QUEUE.put)


def run_jobs(jobs: list[SourceJob], opts: Options, workers: int, on_done) -> None:
    with tqdm(total=sum(j.n_bytes for j in jobs), unit="B", unit_scale=True, desc="prepare", file=sys.stderr,
              disable=None) as bar:
        if workers <= 1:
            for job in jobs:
                on_done(job.name, process_source(job, opts, bar.update))
            return
        ctx = multiprocessing.get_context("spawn")  # no fork of the parent's threads / tokenizer state
        queue = ctx.Queue()
        with ctx.Pool(workers, initializer=_init_worker, initargs=(queue,)) as pool:
            pending = [pool.apply_async(_worker, (job, opts)) for job in jobs]
            while pending:
                while not queue.empty():
                    bar.update(queue.get())
                for result in [p for p in pending if p.ready()]:
                    pending.remove(result)
                    on_done(*result.get())  # re-raises a worker's InputError here
                time.sleep(0.05)


def summary_table(sources: dict) -> str:
    head = ["source", "kind", "docs", "pairs", "lines", "tokens", "words", "val_tokens"] + list(DROP_REASONS)
    rows = [[name, e["kind"], e["n_docs"], e["n_pairs"], e["n_lines"], e["n_tokens"], e["n_words"],
             e["val"]["n_tokens"]] + [e["dropped"][r] for r in DROP_REASONS]
            for name, e in sorted(sources.items())]
    rows.append(["TOTAL", ""] + [sum(r[i] for r in rows) for i in range(2, len(head))])
    widths = [max(len(str(x)) for x in col) for col in zip(head, *rows)]
    return "\n".join(" ".join(str(x).ljust(w) if i == 0 else str(x).rjust(w)
                              for i, (x, w) in enumerate(zip(r, widths)))
                     for r in [head, *rows])


def prepare(inputs: list[str], opts: Options, workers: int = 1, shard: tuple[int, int] | None = None) -> dict:
    """Tokenize every source found under `inputs` (this shard's share) into opts.out; return their entries."""
    out = Path(opts.out)
    out.mkdir(parents=True, exist_ok=True)
    tok = load_tokenizer(opts.tokenizer)
    tok_block = {"path": str(Path(opts.tokenizer).resolve()), "sha256": tok.sha256, "n_vocab": tok.n_vocab,
                 "bos_id": tok.bos_id, "eos_id": tok.eos_id}
    index_path = out / ("index.json" if shard is None else f"index.shard-{shard[0]}-of-{shard[1]}.json")
    index = json.loads(index_path.read_text()) if index_path.exists() else {"tokenizer": tok_block}
    if index["tokenizer"]["sha256"] != tok.sha256:
        raise InputError(f"{index_path} was made with another tokenizer than {tok_block['path']} "
                         f"(sha256 {index['tokenizer']['sha256'][:12]}...): use a fresh --out")
    sources, stream_options = index.get("sources", {}), opts.stream_options()
    jobs = discover(inputs)
    if shard is not None:  # largest source first onto the least loaded shard (input bytes): balanced
        loads, assignment = [0] * shard[1], {}
        for job in sorted(jobs, key=lambda j: (-j.n_bytes, j.name)):
            assignment[job.name] = i = min(range(shard[1]), key=lambda k: (loads[k], k))
            loads[i] += max(job.n_bytes, 1)
        jobs = [j for j in jobs if assignment[j.name] == shard[0]]
    todo = [j for j in jobs if j.name not in sources or not is_complete(out, sources[j.name], stream_options)]
    if n_other := sum(sources[j.name].get("options") != stream_options for j in todo if j.name in sources):
        print(f"{n_other} source(s) were prepared with other options: redoing them", file=sys.stderr)
    for job in todo:
        sources.pop(job.name, None)
    write_index(index_path, tok_block, sources)  # entries of unfinished sources are gone before work starts

    last_write = [time.monotonic()]

    def on_done(name, entry):
        sources[name] = entry
        # at most once a second: many tiny sources would otherwise spend their time rewriting index.json
        # (a complete source whose entry missed the last write is only redone, never trusted half-done)
        if time.monotonic() - last_write[0] >= 1.0:
            write_index(index_path, tok_block, sources)
            last_write[0] = time.monotonic()

    run_jobs(todo, opts, workers, on_done)
    write_index(index_path, tok_block, sources)
    done = {j.name: sources[j.name] for j in jobs}
    print(summary_table(done))
    if len(todo) < len(jobs):
        print(f"({len(jobs) - len(todo)} of {len(jobs)} sources were complete already and kept)")
    return done


def run_demo(opts: Options, vocab_size: int, workers: int, locales: list[str] | None = None) -> dict:
    from cldr_corpus import build_corpus
    from tokenizer import train_bpe
    out = Path(opts.out)
    marker, tok_path = out / "corpus.json", out / "tokenizer.model"
    if not marker.exists():  # the marker is written after build_corpus returns: the raw corpus is complete
        out.mkdir(parents=True, exist_ok=True)
        summary = build_corpus(out, locales=locales)
        tok_path.unlink(missing_ok=True)  # trained on an older corpus
        write_json_atomic(marker, summary if isinstance(summary, dict) else {})
    inputs = [str(out / "raw" / "bi"), str(out / "raw" / "mono")]
    if not tok_path.exists():
        print(f"training a {vocab_size}-rank BPE tokenizer on the demo corpus -> {tok_path}", file=sys.stderr)
        # trained on the demo's documents exactly as the model will see them (tags included)
        quiet = lambda *_, **__: None
        texts = (doc[1] for job in discover(inputs) for doc in iter_documents(job, opts, quiet, quiet))
        train_bpe(texts, vocab_size, tok_path)
        (out / "index.json").unlink(missing_ok=True)  # its token files belong to the old tokenizer
    opts.tokenizer = str(tok_path)
    return prepare(inputs, opts, workers)


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].strip(),
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--input", nargs="+", default=[], help="source folders or roots holding them")
    p.add_argument("--out", required=True, help="output folder (.bin files + index.json); a rerun keeps "
                   "complete sources made with the same token-stream options and redoes the others")
    p.add_argument("--tokenizer", help="tokenizer.model (tiktoken format)")
    p.add_argument("--workers", type=int, default=1, help="processes, one source per task")
    p.add_argument("--threads", type=int, default=None,
                   help="encoder threads per worker; 0: encode on the worker's own thread. Default: 0 with "
                        "a worker per core, else cores / workers")
    p.add_argument("--shard", help="i/n: process only this shard's share of the sources")
    p.add_argument("--merge", action="store_true", help="join index.shard-*-of-n.json parts into index.json")
    p.add_argument("--demo", action="store_true", help="build the CLDR corpus + tokenizer, then tokenize it")
    p.add_argument("--vocab-size", type=int, default=4096, help="--demo: BPE ranks (specials come on top)")
    p.add_argument("--demo-locales", nargs="+", help="--demo: only these CLDR locales (smoke tests)")
    p.add_argument("--group-size", type=int, default=10, help="pairs per pseudo-document")
    p.add_argument("--template", default="[{code}]: {text}", help="one line per side; fields {code} {text}")
    p.add_argument("--directions", choices=["fwd", "both", "random"], default="fwd")
    p.add_argument("--seed", type=int, default=0, help="for --directions random and the held-out hash")
    p.add_argument("--val-docs", type=int, default=2, help="held-out documents per source, at least")
    p.add_argument("--val-share", type=float, default=0.005, help="share of documents held out beyond that")
    p.add_argument("--max-chars", type=int, default=2000, help="longest side of a pair kept (characters)")
    p.add_argument("--max-doc-chars", type=int, default=1_000_000, help="longest monolingual document kept")
    p.add_argument("--batch-docs", type=int, default=512, help="documents per encoding batch")
    args = p.parse_args(argv)
    try:
        try:
            args.template.format(code="x", text="y")
        except (KeyError, IndexError, ValueError) as e:
            raise InputError(f"--template {args.template!r}: {e!r} "
                             "(fields are {code} and {text})") from None
        if "{text}" not in args.template or min(args.group_size, args.workers) < 1 or (args.threads or 0) < 0:
            raise InputError("--template needs {text}; --group-size and --workers must be >= 1, --threads "
                             ">= 0")
        if args.threads is None:  # one encoder thread alone gains nothing: it fights the cleaning for the GIL
            args.threads = cores_each if (cores_each := (os.cpu_count() or 1) // args.workers) >= 2 else 0
        opts = Options(**{f.name: getattr(args, f.name) for f in fields(Options)})
        if args.merge:
            return merge_shards(Path(args.out))
        if args.demo:
            return run_demo(opts, args.vocab_size, args.workers, args.demo_locales)
        if not args.input or not args.tokenizer:
            raise InputError("--input and --tokenizer are required (or --demo, or --merge)")
        if not Path(args.tokenizer).is_file():
            raise InputError(f"--tokenizer {args.tokenizer}: no such file")
        m = re.fullmatch(r"(\d+)/(\d+)", args.shard or "0/1")
        if not m or not int(m[1]) < int(m[2]):
            raise InputError(f"--shard {args.shard}: expected i/n with 0 <= i < n")
        return prepare(args.input, opts, args.workers, (int(m[1]), int(m[2])) if args.shard else None)
    except InputError as e:
        raise SystemExit(f"prepare_mala.py: error: {e}") from None


if __name__ == "__main__":
    main()
