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

Outputs: <source>.bin / <source>.val.bin (little-endian uint32) written to *.tmp and renamed, then the
source's entry in index.json (rewritten atomically after every source; a source without an entry is
unfinished and is redone; a complete one is skipped when its files' sizes and sha256 match).
--shard i/n writes index.shard-i-of-n.json instead; `--merge` joins all n parts into index.json.
Changing pipeline options (group size, template, ...) needs a fresh --out: entries do not record them.
"""

import argparse
import gzip
import hashlib
import json
import multiprocessing
import os
import re
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
from tqdm import tqdm

DROP_REASONS = ("empty", "bad_utf8", "malformed", "script_mismatch", "too_long", "duplicate")
CODE_RE = re.compile(r"[a-z]{2,3}_[A-Z][a-z]{3}")
TOKEN_DTYPE = np.dtype("<u4")
SKIP_MONO = ("valid", "dev", "test")
TEST_SLEEP_ENV = "PREPARE_MALA_TEST_SLEEP"  # test hook: seconds to sleep after every encoded batch


class InputError(Exception):
    """Bad input or arguments: main() turns it into a one-line message and exit status 1."""


# ---------------------------------------------------------------------------------------------------
# Script recognition: a compact table of Unicode block ranges (ISO 15924 codes), looked up with bisect.
# Blocks, not the full Scripts.txt: enough to tell the scripts of FLORES-200 / MaLA apart.
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


def script_of(ch: str) -> str:
    i = bisect_right(_BLOCK_STARTS, ord(ch)) - 1
    return SCRIPT_BLOCKS[i][2] if i >= 0 and ord(ch) <= SCRIPT_BLOCKS[i][1] else "Zzzz"


@cache
def script_regex(suffix: str) -> tuple[re.Pattern, re.Pattern] | None:
    """(runs of the suffix's script blocks, one letter of any other script); None for an unknown suffix."""
    scripts = SCRIPT_SETS.get(suffix, {suffix})
    if not scripts <= KNOWN_SCRIPTS:
        return None
    ranges = "".join(f"{re.escape(chr(a))}-{re.escape(chr(b))}" for a, b, s in SCRIPT_BLOCKS if s in scripts)
    return re.compile(f"[{ranges}]+"), re.compile(rf"[^\W\d_{ranges}]")


def count_letters(text: str) -> int:
    return sum(map(len, LETTERS_RE.findall(text)))


def script_matches(text: str, suffix: str) -> bool:
    """True when the suffix's script is the dominant (most frequent) script of the text's letters.
    Fast paths (regex, C speed): no letter of another script (one scan, the usual case), or the suffix's
    script holds at least half of the letters. Otherwise count the letters of every script."""
    regexes = script_regex(suffix)
    if regexes is None or regexes[1].search(text) is None:  # unknown suffix (the caller warns): keep
        return True
    n_letters = count_letters(text)
    n_other = count_letters(regexes[0].sub("", text))
    if 2 * n_other <= n_letters:
        return True
    counts = Counter(script_of(ch) for ch in "".join(LETTERS_RE.findall(text)))
    scripts = SCRIPT_SETS.get(suffix, {suffix})
    n_target = sum(n for s, n in counts.items() if s in scripts)
    return all(n_target >= n for s, n in counts.items() if s not in scripts)


# ---------------------------------------------------------------------------------------------------
# Cleaning
CONTROL_RE = re.compile(r"[\x00-\x08\x0e-\x1b\x7f\ufeff]")  # C0 controls (not whitespace), DEL, BOM


def clean_text(text: str) -> str:
    """NFC, drop control characters, every whitespace run (newlines too) -> one space, strip.
    The checks first: most text needs no change, and they are C-speed scans."""
    if not unicodedata.is_normalized("NFC", text):
        text = unicodedata.normalize("NFC", text)
    if not text.isprintable():
        text = CONTROL_RE.sub("", text)
    return " ".join(text.split())


def clean_document(text: str) -> str:
    """Monolingual documents keep their line structure: each line cleaned, empty lines dropped."""
    return "\n".join(line for line in map(clean_text, text.splitlines()) if line)


# ---------------------------------------------------------------------------------------------------
# Discovery of sources
@dataclass
class SourceJob:
    name: str
    kind: str  # "bi" or "mono"
    langs: list[str]
    files: list[tuple[str, list[str]]]  # (reader, paths) in a fixed order
    n_bytes: int = 0


def parse_folder_name(name: str) -> list[str] | None:
    parts = name.split("-")
    return parts if len(parts) in (1, 2) and all(CODE_RE.fullmatch(p) for p in parts) else None


def _is_jsonl(name: str) -> bool:
    return name.endswith((".jsonl", ".jsonl.gz"))


def natural_key(name: str) -> list:
    """x_2 before x_10 (OPUS shards <pair>_<N>.jsonl.gz)."""
    return [(int(part), "") if part.isdigit() else (-1, part) for part in re.split(r"(\d+)", name)]


def source_files(folder: Path, codes: list[str]) -> list[tuple[str, list[str]]]:
    """The files of a source folder with their reader, in a fixed order. Mono: JSONL only, and not
    validation*/dev*/test* (MaLA's own held-out files: we hold out our own .val.bin)."""
    names = [p.name for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")]
    names.sort(key=natural_key)
    if len(codes) == 1:
        return [("jsonl", [str(folder / n)]) for n in names if _is_jsonl(n) and not n.startswith(SKIP_MONO)]
    files, (src, tgt) = [], codes
    for name in names:
        path = str(folder / name)
        if name.endswith(".parquet"):
            files.append(("parquet", [path]))
        elif _is_jsonl(name):
            files.append(("jsonl", [path]))
        elif name.endswith((".tsv", ".tsv.gz")):
            files.append(("tsv", [path]))
        elif src != tgt and name.endswith((f".{src}", f".{tgt}")):
            this, other = (src, tgt) if name.endswith(f".{src}") else (tgt, src)
            partner = name[: -len(this)] + other
            if partner not in names:
                raise InputError(f"Moses file {path} has no partner {folder / partner}")
            if this == src:
                files.append(("moses", [path, str(folder / partner)]))
    return files


def discover(inputs: list[str]) -> list[SourceJob]:
    jobs: dict[str, SourceJob] = {}

    def scan(folder: Path) -> None:
        codes = parse_folder_name(folder.name)
        if codes is not None:
            files = source_files(folder, codes)
            if not files:
                print(f"warning: {folder}: no input file of a known format, skipped", file=sys.stderr)
            else:
                if folder.name in jobs:
                    raise InputError(f"source {folder.name} found twice: {jobs[folder.name].files[0][1][0]} "
                                     f"and {folder}")
                n_bytes = sum(os.path.getsize(p) for _, paths in files for p in paths)
                kind = "bi" if len(codes) == 2 else "mono"
                jobs[folder.name] = SourceJob(folder.name, kind, codes, files, n_bytes)
            return
        children = sorted(p for p in folder.iterdir() if not p.name.startswith("."))
        if any(p.is_file() and p.name.endswith((".parquet", ".tsv", ".jsonl", ".gz")) for p in children):
            raise InputError(f"folder {folder} holds data files but its name is not a language code or pair "
                             "(expected xxx_Scrp or xxx_Scrp-yyy_Scrp, e.g. eng_Latn-fra_Latn)")
        for child in children:
            if child.is_dir():
                scan(child)

    for d in inputs:
        if not Path(d).is_dir():
            raise InputError(f"--input {d}: not a directory")
        scan(Path(d).resolve())
    return [jobs[name] for name in sorted(jobs)]


def shard_of(jobs: list[SourceJob], n: int) -> dict[str, int]:
    """Largest first onto the least loaded shard (by input bytes): deterministic and balanced."""
    loads, assignment = [0] * n, {}
    for job in sorted(jobs, key=lambda j: (-j.n_bytes, j.name)):
        i = min(range(n), key=lambda k: (loads[k], k))
        assignment[job.name] = i
        loads[i] += max(job.n_bytes, 1)
    return assignment


# ---------------------------------------------------------------------------------------------------
# Readers: stream (src_text, tgt_text, src_code | None, tgt_code | None) or mono (text, None, None, None).
# Parse-level drops (bad_utf8, malformed) are counted in `drops`; `progress(n)` reports input bytes read.
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


def _decode(line: bytes, where: str, drops: dict, warn) -> str | None:
    try:
        return line.decode("utf-8").rstrip("\r\n")
    except UnicodeDecodeError as e:
        drops["bad_utf8"] += 1
        warn(f"{where}: invalid UTF-8 ({e.reason} at byte {e.start}), line skipped")
        return None


STR_OR_NONE = {str, type(None)}
JSON_DECODER = json.JSONDecoder()


def read_jsonl(path: str, kind: str, drops: dict, warn, progress):
    for lineno, raw in _text_lines(path, progress):
        line = _decode(raw, f"{path}:{lineno}", drops, warn)
        if line is None or not line.strip():
            continue
        try:  # raw_decode: json.loads without its wrapper, ~2x faster on short lines
            row, end = JSON_DECODER.raw_decode(line, len(line) - len(line.lstrip()))
            if line[end:].strip():
                raise json.JSONDecodeError("Extra data", line, end)
        except json.JSONDecodeError as e:
            drops["malformed"] += 1
            warn(f"{path}:{lineno}: malformed JSON ({e.msg}), line skipped")
            continue
        row = row if isinstance(row, dict) else {}
        if kind == "mono":
            keys = ("text",)
        elif "src_text" in row or "tgt_text" in row:  # MaLA bilingual
            keys = ("src_text", "tgt_text", "src_lang", "tgt_lang")
        else:  # MaLA-OPUS
            keys = ("source_text", "target_text", "source_lang", "target_lang")
        values = [row.get(k) for k in keys] + [None] * (4 - len(keys))
        n_texts = 1 if kind == "mono" else 2
        if not set(map(type, values)) <= STR_OR_NONE or values[:n_texts] == [None] * n_texts:
            drops["malformed"] += 1
            warn(f"{path}:{lineno}: expected string field(s) {', '.join(keys[:n_texts])}, line skipped")
            continue
        yield values


def read_parquet(path: str, kind: str, drops: dict, warn, progress, batch_rows: int = 8192):
    import pyarrow.parquet as pq  # lazy: only parquet inputs pay for the import

    parquet = pq.ParquetFile(path)
    names = parquet.schema_arrow.names
    text_cols = ["source_text", "target_text"] if "source_text" in names else ["src_text", "tgt_text"]
    missing = [c for c in text_cols if c not in names]
    if missing:
        raise InputError(f"{path}: missing column {', '.join(missing)} (has: {', '.join(names)})")
    lang_cols = ["source_lang", "target_lang"] if text_cols[0] == "source_text" else ["src_lang", "tgt_lang"]
    columns = text_cols + [c for c in lang_cols if c in names]
    for c in columns:  # string columns are valid UTF-8 by construction; binary ones are not text
        if str(parquet.schema_arrow.field(c).type) not in ("string", "large_string"):
            raise InputError(f"{path}: column {c} is {parquet.schema_arrow.field(c).type}, expected string")
    size, n_rows, done = os.path.getsize(path), max(parquet.metadata.num_rows, 1), 0
    for batch in parquet.iter_batches(batch_size=batch_rows, columns=columns):
        cols = [batch.column(c).to_pylist() if c in columns else [None] * batch.num_rows
                for c in text_cols + lang_cols]
        yield from zip(*cols, strict=True)
        progress(size * (done + batch.num_rows) // n_rows - size * done // n_rows)
        done += batch.num_rows


def read_tsv(path: str, kind: str, drops: dict, warn, progress):
    for lineno, raw in _text_lines(path, progress):
        line = _decode(raw, f"{path}:{lineno}", drops, warn)
        if line is None:
            continue
        fields = line.split("\t")
        if len(fields) != 2:
            drops["malformed"] += 1
            warn(f"{path}:{lineno}: expected 2 tab-separated fields, found {len(fields)}, line skipped")
            continue
        yield [fields[0], fields[1], None, None]


def read_moses(src_path: str, tgt_path: str, kind: str, drops: dict, warn, progress):
    n_src = n_tgt = 0
    for src_line, tgt_line in zip_longest(_text_lines(src_path, progress), _text_lines(tgt_path, progress)):
        n_src, n_tgt = n_src + (src_line is not None), n_tgt + (tgt_line is not None)
        if src_line is None or tgt_line is None:
            continue  # only counting now: the error below names both line counts
        src = _decode(src_line[1], f"{src_path}:{n_src}", drops, warn)
        tgt = _decode(tgt_line[1], f"{tgt_path}:{n_tgt}", drops, warn) if src is not None else None
        if src is not None and tgt is not None:
            yield [src, tgt, None, None]
    if n_src != n_tgt:
        raise InputError(f"Moses files differ in line count: {src_path} has {n_src} lines, "
                         f"{tgt_path} has {n_tgt}")


READERS = {"jsonl": read_jsonl, "parquet": read_parquet, "tsv": read_tsv, "moses": read_moses}


# ---------------------------------------------------------------------------------------------------
# Cleaned records -> pseudo-documents
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
    batch_docs: int = 512  # documents per encode_batch call (memory stays flat: ~2 batches in flight)
    threads: int = 1


def unit_hash(*parts) -> float:
    """A number in [0, 1) from its parts: the same on every machine, Python version and worker count."""
    digest = hashlib.blake2b(":".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") / 2**64


def clean_records(job: SourceJob, opts: Options, drops: dict, warn, progress):
    """Yield cleaned, checked, de-duplicated (src, tgt) pairs, or (text,) for mono."""
    seen = set()  # hashes of kept records: ~70 bytes per unique record, fine for one source's size
    suffixes = [code[-4:] for code in job.langs]
    unknown = [code for code in job.langs if script_regex(code[-4:]) is None]
    src, tgt = job.langs if job.kind == "bi" else (None, None)
    limit = opts.max_chars if job.kind == "bi" else opts.max_doc_chars
    n_kept = 0
    for reader, paths in job.files:
        for a, b, code_a, code_b in READERS[reader](*paths, job.kind, drops, warn, progress):
            if src is None:
                texts = (clean_document(a or ""),)
            else:
                if code_a not in (None, src) or code_b not in (None, tgt):
                    if code_a not in (None, tgt) or code_b not in (None, src):
                        drops["malformed"] += 1
                        warn(f"{paths[0]}: row codes {code_a}-{code_b} are not the folder's, skipped")
                        continue
                    a, b = b, a  # a row of the opposite direction
                texts = (clean_text(a or ""), clean_text(b or ""))
            if not all(texts):
                drops["empty"] += 1
            elif max(map(len, texts)) > limit:
                drops["too_long"] += 1
            elif not all(map(script_matches, texts, suffixes)):
                drops["script_mismatch"] += 1
            elif (key := hash(texts)) in seen:
                drops["duplicate"] += 1
            else:
                seen.add(key)
                n_kept += 1
                yield texts
    if unknown:
        warn(f"unknown script {', '.join(c[-4:] for c in unknown)} (code {', '.join(unknown)}): script check "
             f"skipped for {n_kept * len(unknown)} texts, nothing dropped", always=True)


def iter_documents(job: SourceJob, opts: Options, drops: dict, warn, progress):
    """Yield (group index, document text, n_pairs or n_lines, n_words)."""
    records = clean_records(job, opts, drops, warn, progress)
    if job.kind == "mono":
        for g, (text,) in enumerate(records):
            yield g, text, 1, text.count(" ") + text.count("\n") + 1  # cleaned: one separator per word gap
        return
    src, tgt = job.langs
    for g, pairs in enumerate(iter(lambda: list(islice(records, opts.group_size)), [])):
        forward = opts.directions != "random" or unit_hash(opts.seed, job.name, g, "direction") < 0.5
        words = sum(a.count(" ") + b.count(" ") + 2 for a, b in pairs)  # cleaned: single spaces
        for fwd in ([True, False] if opts.directions == "both" else [forward]):
            tag_a, tag_b = (src, tgt) if fwd else (tgt, src)
            fmt = opts.template.format
            lines = [fmt(code=tag_a, text=a) + "\n" + fmt(code=tag_b, text=b)
                     for a, b in (pairs if fwd else [p[::-1] for p in pairs])]
            yield g, "\n".join(lines), len(pairs), words


def is_held_out(source: str, g: int, opts: Options) -> bool:
    # the first few odd groups guarantee --val-docs held-out documents in any source with 2x that many
    return (g < 2 * opts.val_docs and g % 2 == 1) or unit_hash(opts.seed, source, g, "val") < opts.val_share


# ---------------------------------------------------------------------------------------------------
# Tokens -> files
class TokenFile:
    """Documents' tokens appended to <path>.tmp, renamed to <path> by finish(); counts what went in."""

    def __init__(self, path: Path):
        self.path, self.tmp = path, path.with_name(path.name + ".tmp")
        self.file, self.sha = open(self.tmp, "wb"), hashlib.sha256()
        self.n_docs = self.n_units = self.n_tokens = self.n_words = 0  # units: pairs (bi) or lines (mono)

    def add(self, ids: list[int], n_units: int, n_words: int) -> None:
        data = np.array(ids, dtype=TOKEN_DTYPE).tobytes()
        self.file.write(data)
        self.sha.update(data)
        self.n_docs, self.n_units = self.n_docs + 1, self.n_units + n_units
        self.n_tokens, self.n_words = self.n_tokens + len(ids), self.n_words + n_words

    def finish(self) -> None:
        # no fsync: a file lost to a power cut fails the size/sha256 check on the next run and is redone
        self.file.close()
        os.replace(self.tmp, self.path)

    def stats(self, kind: str) -> dict:
        return {"n_docs": self.n_docs, "n_pairs": self.n_units if kind == "bi" else 0,
                "n_lines": self.n_units if kind == "mono" else 0, "n_tokens": self.n_tokens,
                "n_words": self.n_words, "sha256": self.sha.hexdigest()}


@cache
def load_tokenizer(path: str):
    from tokenizer import Tokenizer  # imported here: the readers and cleaning work without tiktoken

    return Tokenizer(path)


def make_warn(source: str, limit: int = 5):
    count = [0]

    def warn(message: str, always: bool = False) -> None:
        count[0] += 1
        if count[0] <= limit or always:
            tqdm.write(f"warning: {source}: {message}", file=sys.stderr)
        elif count[0] == limit + 1:
            tqdm.write(f"warning: {source}: more warnings suppressed (counts in index.json)", file=sys.stderr)

    return warn


def process_source(job: SourceJob, opts: Options, progress=lambda n: None) -> dict:
    """Tokenize one source into <name>.bin / <name>.val.bin (via *.tmp); return its index entry."""
    tok = load_tokenizer(opts.tokenizer)
    out = Path(opts.out)
    train, val = TokenFile(out / f"{job.name}.bin"), TokenFile(out / f"{job.name}.val.bin")
    drops = dict.fromkeys(DROP_REASONS, 0)
    sleep = float(os.environ.get(TEST_SLEEP_ENV, 0))

    def write(future, docs):
        for ids, (g, _, n_units, n_words) in zip(future.result(), docs, strict=True):
            (val if is_held_out(job.name, g, opts) else train).add(ids, n_units, n_words)
        if sleep:
            time.sleep(sleep)

    docs, pending = iter_documents(job, opts, drops, make_warn(job.name), progress), None
    try:
        # batch k is encoded on the pool's thread while this one cleans batch k+1: tiktoken's Rust core
        # releases the GIL, so the Python part hides behind the tokenizer (one worker, up to ~2 cores)
        with ThreadPoolExecutor(1) as encoder:
            for batch in iter(lambda: list(islice(docs, opts.batch_docs)), []):
                texts = [text for _, text, _, _ in batch]
                future = encoder.submit(tok.encode_batch, texts, bos=True, eos=True, num_threads=opts.threads)
                if pending:
                    write(*pending)
                pending = (future, batch)
            if pending:
                write(*pending)
        train.finish()
        val.finish()
    finally:
        for f in (train, val):
            f.file.close()
            f.tmp.unlink(missing_ok=True)
    return {"kind": job.kind, "langs": list(job.langs), "bin": train.path.name, "val_bin": val.path.name,
            **train.stats(job.kind), "val": val.stats(job.kind), "dropped": drops}


# ---------------------------------------------------------------------------------------------------
# index.json
def file_sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def is_complete(out: Path, entry: dict) -> bool:
    """Both token files exist with the entry's size and sha256 (reads them: the price of trusting a rerun)."""
    return all((out / name).exists() and (out / name).stat().st_size == 4 * stats["n_tokens"]
               and file_sha256(out / name) == stats["sha256"]
               for name, stats in ((entry["bin"], entry), (entry["val_bin"], entry["val"])))


def write_json_atomic(path: Path, data: dict) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1, ensure_ascii=False) + "\n")
    os.replace(tmp, path)


def write_index(path: Path, tokenizer: dict, sources: dict) -> None:
    write_json_atomic(path, {"format": 1, "dtype": "uint32", "tokenizer": tokenizer,
                             "sources": {name: sources[name] for name in sorted(sources)}})


def read_index(path: Path, tokenizer: dict | None = None) -> dict:
    if not path.exists():
        return {}
    data = json.loads(path.read_text())
    if tokenizer is not None and data["tokenizer"]["sha256"] != tokenizer["sha256"]:
        raise InputError(f"{path} was made with another tokenizer than {tokenizer['path']} "
                         f"(sha256 {data['tokenizer']['sha256'][:12]}...): use a fresh --out")
    return data


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
    return sources


# ---------------------------------------------------------------------------------------------------
# Driver
_PROGRESS_QUEUE = None


def _init_worker(queue) -> None:
    global _PROGRESS_QUEUE
    _PROGRESS_QUEUE = queue


def _worker(job: SourceJob, opts: Options) -> tuple[str, dict]:
    return job.name, process_source(job, opts, _PROGRESS_QUEUE.put)


def run_jobs(jobs: list[SourceJob], opts: Options, workers: int, on_done) -> None:
    bar = tqdm(total=sum(j.n_bytes for j in jobs), unit="B", unit_scale=True, desc="prepare", file=sys.stderr,
               disable=None)
    try:
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
    finally:
        bar.close()


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
    sources = read_index(index_path, tok_block).get("sources", {})
    jobs = discover(inputs)
    if shard is not None:
        assignment = shard_of(jobs, shard[1])
        jobs = [j for j in jobs if assignment[j.name] == shard[0]]
    todo = [j for j in jobs if j.name not in sources or not is_complete(out, sources[j.name])]
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


def run_demo(opts: Options, vocab_size: int, workers: int) -> dict:
    from cldr_corpus import build_corpus
    from tokenizer import train_bpe

    out = Path(opts.out)
    marker = out / "corpus.json"  # written after build_corpus returns: the raw corpus is complete
    if not marker.exists():
        out.mkdir(parents=True, exist_ok=True)
        summary = build_corpus(out)
        (out / "tokenizer.model").unlink(missing_ok=True)  # trained on an older corpus
        write_json_atomic(marker, summary if isinstance(summary, dict) else {})
    tok_path = out / "tokenizer.model"
    inputs = [str(out / "raw" / "bi"), str(out / "raw" / "mono")]
    if not tok_path.exists():
        print(f"training a {vocab_size}-rank BPE tokenizer on the demo corpus -> {tok_path}", file=sys.stderr)
        # trained on the demo's documents exactly as the model will see them (tags included)
        drops, quiet = dict.fromkeys(DROP_REASONS, 0), lambda *_, **__: None
        texts = (doc[1] for job in discover(inputs) for doc in iter_documents(job, opts, drops, quiet, quiet))
        train_bpe(texts, vocab_size, tok_path)
        (out / "index.json").unlink(missing_ok=True)  # its token files belong to the old tokenizer
    opts.tokenizer = str(tok_path)
    return prepare(inputs, opts, workers)


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0].strip(),
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--input", nargs="+", default=[], help="source folders or roots holding them")
    p.add_argument("--out", required=True, help="output folder (.bin files + index.json)")
    p.add_argument("--tokenizer", help="tokenizer.model (tiktoken format)")
    p.add_argument("--workers", type=int, default=1, help="processes, one source per task")
    p.add_argument("--threads", type=int, default=0, help="tokenizer threads per worker (0: cores / workers)")
    p.add_argument("--shard", help="i/n: process only this shard's share of the sources")
    p.add_argument("--merge", action="store_true", help="join index.shard-*-of-n.json parts into index.json")
    p.add_argument("--demo", action="store_true", help="build the CLDR corpus + tokenizer, then tokenize it")
    p.add_argument("--vocab-size", type=int, default=4096, help="--demo: BPE ranks (specials come on top)")
    p.add_argument("--group-size", type=int, default=10, help="pairs per pseudo-document")
    p.add_argument("--template", default="[{code}]: {text}", help="one line per side; fields {code} {text}")
    p.add_argument("--directions", choices=["fwd", "both", "random"], default="fwd")
    p.add_argument("--seed", type=int, default=0, help="for --directions random and the held-out hash")
    p.add_argument("--val-docs", type=int, default=2, help="held-out documents per source, at least")
    p.add_argument("--val-share", type=float, default=0.005, help="share of documents held out beyond that")
    p.add_argument("--max-chars", type=int, default=2000, help="longest side of a pair kept (characters)")
    p.add_argument("--max-doc-chars", type=int, default=1_000_000, help="longest monolingual document kept")
    p.add_argument("--batch-docs", type=int, default=512, help="documents per encode_batch call")
    return p.parse_args(argv)


def options_from_args(args) -> Options:
    try:
        args.template.format(code="x", text="y")
    except (KeyError, IndexError, ValueError) as e:
        raise InputError(f"--template {args.template!r}: {e!r} (fields are {{code}} and {{text}})") from None
    if "{text}" not in args.template or args.group_size < 1 or args.workers < 1:
        raise InputError("--template needs {text}; --group-size and --workers must be >= 1")
    args.threads = args.threads or max(1, (os.cpu_count() or 1) // args.workers)
    return Options(**{f.name: getattr(args, f.name) for f in fields(Options)})


def main(argv=None) -> dict:
    args = parse_args(argv)
    try:
        opts = options_from_args(args)
        if args.merge:
            sources = merge_shards(Path(args.out))
            print(summary_table(sources))
            return sources
        if args.demo:
            return run_demo(opts, args.vocab_size, args.workers)
        if not args.input or not args.tokenizer:
            raise InputError("--input and --tokenizer are required (or --demo, or --merge)")
        if not Path(args.tokenizer).is_file():
            raise InputError(f"--tokenizer {args.tokenizer}: no such file")
        shard = None
        if args.shard:
            m = re.fullmatch(r"(\d+)/(\d+)", args.shard)
            if not m or not int(m.group(1)) < int(m.group(2)):
                raise InputError(f"--shard {args.shard}: expected i/n with 0 <= i < n")
            shard = (int(m.group(1)), int(m.group(2)))
        return prepare(args.input, opts, args.workers, shard)
    except InputError as e:
        raise SystemExit(f"prepare_mala.py: error: {e}") from None


if __name__ == "__main__":
    main()
