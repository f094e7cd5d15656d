"""
Where the sources are and how their rows are read: every format MaLA and its relatives come in.

A source is a folder named by a FLORES-style code (monolingual, xxx_Scrp) or a code pair (bilingual,
xxx_Scrp-yyy_Scrp), found under the --input folders of prepare_mala.py. Its files, in natural order:
  bilingual    *.parquet and *.jsonl[.gz] with src_text, tgt_text [src_lang, tgt_lang] (MaLA) or
               source_text, target_text, source_lang, target_lang (OPUS); Moses x.<src> + x.<tgt>
               line-aligned files; *.tsv[.gz] with src<TAB>tgt
  monolingual  *.jsonl[.gz] with `text`, one document a line (validation*/test*/dev* files are skipped)
Readers stream (src_text, tgt_text, src_code | None, tgt_code | None) rows, or (text, None, None, None).
Bad rows are counted by reason and skipped; a file that cannot be read on stops the run with one line
naming it (and the line), unless skip_unreadable.
"""

import codecs
import gzip
import json
import os
import re
import sys
import zlib
from dataclasses import dataclass
from itertools import zip_longest
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

CODE_RE = re.compile(r"[a-z]{2,3}_[A-Z][a-z]{3}")
JSONL = (".jsonl", ".jsonl.gz")
SKIP_MONO = ("valid", "dev", "test")
MALA_FIELDS = ("src_text", "tgt_text", "src_lang", "tgt_lang")
OPUS_FIELDS = ("source_text", "target_text", "source_lang", "target_lang")  # MaLA-OPUS
STR_OR_NONE = {str, type(None)}
try:
    from orjson import loads as loads_bytes  # JSON straight from bytes, 2x faster than decode + json
except ImportError:  # optional (a GPU box without it): then the stdlib path of read_jsonl takes every line

    def loads_bytes(raw: bytes):
        raise ValueError("orjson is not installed")

JSON_DECODER = json.JSONDecoder()


class InputError(Exception):
    """Bad input or arguments: main() turns it into a one-line message and exit status 1."""


class UnreadableFile(InputError):
    """An input file that cannot be read on; with --skip-unreadable its source keeps what was read."""



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
    """Yield (line number, bytes line) in constant memory, reporting the compressed/raw bytes consumed.
    A UTF-8 byte order mark is dropped, as every mainstream reader does; a file that cannot be read on
    (truncated or not gzip, a disk error) raises UnreadableFile naming the file and line."""
    with open(path, "rb") as raw:
        stream = gzip.GzipFile(fileobj=raw) if path.endswith(".gz") else raw
        reported, lineno = 0, 0
        try:
            for lineno, line in enumerate(stream, 1):
                yield lineno, line.removeprefix(codecs.BOM_UTF8) if lineno == 1 else line
                if lineno % 4096 == 0:
                    progress(raw.tell() - reported)
                    reported = raw.tell()
        except (OSError, EOFError, zlib.error) as e:  # gzip.BadGzipFile is an OSError
            raise UnreadableFile(f"{path}:{lineno + 1}: cannot read ({type(e).__name__}: {e})") from None
        progress(os.path.getsize(path) - reported)


def _decode(line: bytes, path: str, lineno: int, report) -> str | None:
    try:
        return line.decode("utf-8").rstrip("\r\n")
    except UnicodeDecodeError as e:
        report("bad_utf8", f"{path}:{lineno}: invalid UTF-8 ({e.reason} at byte {e.start}), line skipped")


def read_jsonl(path: str, kind: str, report, progress):
    for lineno, raw in _text_lines(path, progress):
        try:  # orjson accepts less than json (no NaN, no lone surrogates): what it refuses, json decides
            row = loads_bytes(raw)  # and reports below
        except ValueError:  # orjson.JSONDecodeError is one
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
    try:
        yield from _parquet_rows(path, report, progress, batch_rows)
    except pa.ArrowException as e:  # not parquet, truncated, a corrupt page
        raise UnreadableFile(f"{path}: cannot read parquet ({type(e).__name__}: {e})") from None


def _parquet_rows(path: str, report, progress, batch_rows: int):
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


def read_rows(job: SourceJob, report, progress, skip_unreadable: bool = False):
    """(file, row) of every file of a source. An unreadable file stops the run, or with skip_unreadable
    ends that file (the rows read before stay) and is counted."""
    for reader, paths in job.files:
        try:
            for row in READERS[reader](*paths, job.kind, report, progress):
                yield paths[0], row
        except UnreadableFile as e:
            if not skip_unreadable:
                raise
            report("unreadable_file", f"{e}; the rest of it is skipped (--skip-unreadable)", always=True)
