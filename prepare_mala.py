"""
MaLA bitext / monolingual text -> cleaned pairs -> pseudo-documents -> uint32 token files + index.json.

    python prepare_mala.py --input DIR [DIR ...] --out DATA --tokenizer tokenizer.model [--workers N]
    python prepare_mala.py --input DIR --out DATA --tokenizer T --shard 0/4   # one job of an array ...
    python prepare_mala.py --merge --out DATA                               # ... then merge the parts

Inputs: each --input DIR is a source folder (<src>-<tgt>/ bilingual, <lang>/ monolingual, FLORES-style
codes xxx_Scrp) or a root searched for them; sources.py lists the formats (MaLA parquet / JSONL, OPUS,
Moses, TSV). Row codes, where given, must be the folder's (swapped rows are turned).

Pipeline (the paper's, docs/method.md): NFC + whitespace clean-up -> drop (counted by reason) empty / invalid
UTF-8 / malformed / script mismatch / too long / duplicate -> groups of --group-size pairs, one
`[code]: text` line per side -> bos + tokens + eos. A group is held out for <source>.val.bin when it is one
of the first --val-docs odd-numbered groups or a hash of (seed, source, group) falls under --val-share.

Outputs: <source>.bin / .val.bin (little-endian uint32, via *.tmp), the source's entry in index.json
(rewritten atomically; no entry = unfinished), and tokenizer.model, the folder's own copy of the tokenizer.
index.json says "complete": true only when the whole run finished (mix.py refuses it before). A rerun
keeps a source whose files match its entry and whose "options" (those shaping the token stream) are this
run's; it redoes the others. --shard i/n writes index.shard-i-of-n.json; `--merge` joins the n parts.
"""

import argparse
import hashlib
import json
import multiprocessing
import os
import re
import shlex
import string
import sys
import time
import unicodedata
from collections import Counter
from dataclasses import dataclass, fields
from functools import cache
from itertools import islice
from pathlib import Path

import numpy as np
import regex
from tqdm import tqdm

from common import HelpFormatter, die_with_parent, file_sha256, write_atomic
from sources import InputError, SourceJob, discover, read_rows
from tokenizer import Tokenizer, ranks_text

INDEX_FORMAT = 2  # of index.json; format 1 had no completeness marker and no tokenizer copy
DROP_REASONS = ("empty", "bad_utf8", "malformed", "script_mismatch", "too_long", "duplicate",
                "unreadable_file")  # the last counts files, the others rows
TOKEN_DTYPE = np.dtype("<u4")
CONTROL_RE = re.compile(r"[\x00-\x08\x0e-\x1b\x7f\ufeff]")  # C0 controls (not whitespace), DEL, BOM
_PROGRESS_QUEUE = None  # set in each worker process by _init_worker


# Script recognition ------------------------------------------------------------------------------
# The Unicode database's Script property, through the regex package. Code suffixes that stand for several
# scripts in running text (ISO 15924 "Jpan" = Han + kana, ...):
SCRIPT_SETS = {"Hans": ["Hani"], "Hant": ["Hani"], "Hanb": ["Hani", "Bopo"], "Jpan": ["Hani", "Hira", "Kana"],
               "Kore": ["Hang", "Hani"]}
LETTERS_RE = regex.compile(r"\p{L}")


@cache
def script_regex(suffix: str) -> "regex.Pattern | None":
    """A letter of any script but the suffix's; None for a suffix Unicode does not know (Qaaa, Zzzz)."""
    scripts = "".join(rf"\p{{Script={s}}}" for s in SCRIPT_SETS.get(suffix, [suffix]))
    try:
        return regex.compile(rf"(?V1)[\p{{L}}--[{scripts}]]")
    except regex.error:
        return None


def script_matches(text: str, suffix: str) -> bool:
    """True when the suffix's script has at least as many of the text's letters as any other script.
    Fast paths first (C speed): ASCII for Latn, no letter of another script, half of the letters."""
    if suffix == "Latn" and text.isascii():  # all its letters are Latin: the English side of most pairs
        return True
    other = script_regex(suffix)
    if other is None or other.search(text) is None:  # unknown suffix (the caller warns): keep
        return True
    others, n_letters = other.findall(text), len(LETTERS_RE.findall(text))
    if 2 * len(others) <= n_letters:
        return True
    # the rare mixed case: the other letters by script (a character's name starts with it: "CYRILLIC ...")
    largest = Counter(unicodedata.name(ch, "?").split()[0] for ch in others).most_common(1)[0][1]
    return n_letters - len(others) >= largest


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


# Cleaned records -> pseudo-documents ---------------------------------------------------------------
@dataclass
class Options:
    out: str
    tokenizer: str
    group_size: int = 10  # pairs per pseudo-document (the paper)
    template: str = "[{code}]: {text}"  # docs/method.md: the authors' own evaluation prompt format
    directions: str = "fwd"  # or "both" (each group also reversed) or "random" (per group, by seed)
    seed: int = 0
    val_docs: int = 2  # ours, not the paper's: every source gets a few held-out documents ...
    val_share: float = 0.005  # ... and large ones 0.5%: per-tier validation curves without costing data
    max_chars: int = 2000  # per side; FLORES sentences stay under ~1,000 chars: longer is misalignment
    max_doc_chars: int = 1_000_000  # a monolingual document
    skip_unreadable: bool = False  # an unreadable input file: counted and skipped instead of an error

    def stream_options(self) -> dict:  # recorded per source in index.json: a rerun with others redoes it
        ignore = ("out", "tokenizer", "skip_unreadable")
        return {k: v for k, v in vars(self).items() if k not in ignore}


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
    for path, (a, b, code_a, code_b) in read_rows(job, report, progress, opts.skip_unreadable):
        if src is None:  # monolingual documents keep their lines: each cleaned, empty ones dropped
            texts = ("\n".join(line for line in map(clean_text, (a or "").splitlines()) if line),)
        else:
            if code_a not in (None, src) or code_b not in (None, tgt):
                if code_a not in (None, tgt) or code_b not in (None, src):
                    report("malformed", f"{path}: row codes {code_a}-{code_b} are not the folder's, skipped")
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
        for k, fwd in enumerate([True, False] if opts.directions == "both" else [forward]):
            (tag_a, tag_b), pairs = ((src, tgt), group) if fwd else ((tgt, src), [p[::-1] for p in group])
            fmt_a, fmt_b = text_formatter(opts.template, tag_a), text_formatter(opts.template, tag_b)
            text = "\n".join([f"{fmt_a(a)}\n{fmt_b(b)}" for a, b in pairs])
            # a pair counts once (pairs and words) whatever the directions emitted: its tier must not change
            yield held_out, text, len(group) if k == 0 else 0, words if k == 0 else 0


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
def load_tokenizer(path: str) -> Tokenizer:
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

    report = make_reporter(job.name, drops)
    try:  # one core per worker: give --workers the number of cores
        for held_out, text, n_units, n_words in iter_documents(job, opts, report, progress):
            (val if held_out else train).add(tok.encode_array(text, bos=True, eos=True), n_units, n_words)
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
def is_complete(out: Path, entry: dict, stream_options: dict) -> bool:
    """Made with these options, and both token files have the entry's size and sha256 (reads them all)."""
    return entry.get("options") == stream_options and all(
        (out / name).exists() and (out / name).stat().st_size == 4 * stats["n_tokens"]
        and file_sha256(out / name) == stats["sha256"]
        for name, stats in ((entry["bin"], entry), (entry["val_bin"], entry["val"])))


def write_index(path: Path, tokenizer: dict, sources: dict, pending: list[str], command: str) -> None:
    """index.json (format 2): complete is true only once every source is done; until then pending names the
    unfinished ones and command the run that finishes them (mix.py refuses an incomplete index)."""
    write_atomic(path, json.dumps({
        "format": INDEX_FORMAT, "dtype": "uint32", "complete": not pending, "pending": sorted(pending),
        "command": command, "tokenizer": tokenizer, "sources": dict(sorted(sources.items())),
    }, indent=1, ensure_ascii=False) + "\n")


def read_index(data_dir: Path) -> dict:
    """A data dir's index.json for the next stage (mix.py): refused unless this script finished it and the
    folder's tokenizer copy is the one the tokens were made with."""
    index_path = data_dir / "index.json"
    if not index_path.is_file():
        raise InputError(f"data dir {data_dir} has no index.json (not a prepare_mala.py output folder?)")
    try:
        index = json.loads(index_path.read_text())
    except json.JSONDecodeError as e:
        raise InputError(f"{index_path}: not valid JSON ({e})") from None
    if index.get("format") != INDEX_FORMAT or index.get("dtype") != "uint32":
        raise InputError(f"{index_path}: expected format {INDEX_FORMAT} and dtype uint32, got format="
                         f"{index.get('format')!r} dtype={index.get('dtype')!r} (re-run prepare_mala.py)")
    if not index.get("complete"):
        done, pending = len(index.get("sources", {})), index.get("pending", [])
        raise InputError(f"{index_path}: prepare_mala.py did not finish ({done} sources done, {len(pending)} "
                         f"not: {', '.join(pending[:3])}{' ...' * (len(pending) > 3)}); finish it by running "
                         f"it again (finished sources are kept): {index.get('command')}")
    tok = index.get("tokenizer") or {}
    tok_file = data_dir / tok.get("file", "tokenizer.model")
    if not tok_file.is_file() or file_sha256(tok_file) != tok.get("sha256"):
        raise InputError(f"{index_path}: its tokenizer copy {tok_file} is missing or is not the one the "
                         "tokens were made with (sha256 differs): re-run prepare_mala.py")
    return index


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
    if unfinished := [p.name for p, d in zip(parts, datas) if not d.get("complete")]:
        raise InputError(f"--merge: {', '.join(unfinished)} not complete: finish those shards first "
                         f"({datas[0].get('command')} with their --shard)")
    sources = {name: entry for d in datas for name, entry in d["sources"].items()}
    write_index(out / "index.json", datas[0]["tokenizer"], sources, [],
                f"python prepare_mala.py --merge --out {out}")
    print(summary_table(sources))
    return sources


# Driver --------------------------------------------------------------------------------------------
def _init_worker(queue) -> None:
    global _PROGRESS_QUEUE
    _PROGRESS_QUEUE = queue
    die_with_parent()  # a kill -9 of the run must not leave workers writing into --out


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


def prepare(inputs: list[str], opts: Options, workers: int = 1, shard: tuple[int, int] | None = None,
            command: str = "") -> dict:
    """Tokenize every source found under `inputs` (this shard's share) into opts.out; return their entries.
    The folder keeps its own copy of the tokenizer (tokenizer.model), so it can be moved or shared."""
    out = Path(opts.out)
    out.mkdir(parents=True, exist_ok=True)
    tok = load_tokenizer(opts.tokenizer)
    tok_block = {"file": "tokenizer.model", "sha256": tok.sha256, "n_vocab": tok.n_vocab,
                 "bos_id": tok.bos_id, "eos_id": tok.eos_id, "made_from": str(Path(opts.tokenizer).resolve())}
    index_path = out / ("index.json" if shard is None else f"index.shard-{shard[0]}-of-{shard[1]}.json")
    index = json.loads(index_path.read_text()) if index_path.exists() else {"tokenizer": tok_block}
    if index["tokenizer"]["sha256"] != tok.sha256:
        raise InputError(f"{index_path} was made with another tokenizer than {opts.tokenizer} "
                         f"(sha256 {index['tokenizer']['sha256'][:12]}...): use a fresh --out")
    if not (out / "tokenizer.model").is_file() or file_sha256(out / "tokenizer.model") != tok.sha256:
        write_atomic(out / "tokenizer.model", ranks_text(tok.ranks))
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
    pending = {job.name for job in todo}
    # entries of unfinished sources are gone, and the index says it is incomplete, before work starts
    write_index(index_path, tok_block, sources, list(pending), command)
    last_write = [time.monotonic()]

    def on_done(name, entry):
        sources[name] = entry
        pending.discard(name)
        # at most once a second: many tiny sources would otherwise spend their time rewriting index.json
        # (a complete source whose entry missed the last write is only redone, never trusted half-done)
        if time.monotonic() - last_write[0] >= 1.0:
            write_index(index_path, tok_block, sources, list(pending), command)
            last_write[0] = time.monotonic()

    run_jobs(todo, opts, workers, on_done)
    write_index(index_path, tok_block, sources, [], command)  # last: complete
    done = {j.name: sources[j.name] for j in jobs}
    print(summary_table(done))
    if len(todo) < len(jobs):
        print(f"({len(jobs) - len(todo)} of {len(jobs)} sources were complete already and kept)")
    return done


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    p.add_argument("--input", nargs="+", default=[], help="source folders or roots holding them")
    p.add_argument("--out", required=True, help="output folder (.bin files + index.json); a rerun keeps "
                   "complete sources made with the same token-stream options and redoes the others")
    p.add_argument("--tokenizer", help="tokenizer.model (tiktoken format)")
    p.add_argument("--workers", type=int, default=1, help="processes, one source per task")
    p.add_argument("--shard", help="i/n: process only this shard's share of the sources")
    p.add_argument("--merge", action="store_true", help="join index.shard-*-of-n.json parts into index.json")
    p.add_argument("--skip-unreadable", action="store_true", help="an input file that cannot be read on "
                   "(corrupt, truncated) is counted and skipped from there instead of stopping the run")
    p.add_argument("--group-size", type=int, default=10, help="pairs per pseudo-document")
    p.add_argument("--template", default="[{code}]: {text}", help="one line per side; fields {code} {text}")
    p.add_argument("--directions", choices=["fwd", "both", "random"], default="fwd",
                   help="fwd: the folder's direction; both: each group also reversed; random: per group")
    p.add_argument("--seed", type=int, default=0, help="for --directions random and the held-out hash")
    p.add_argument("--val-docs", type=int, default=2, help="held-out documents per source, at least")
    p.add_argument("--val-share", type=float, default=0.005, help="share of documents held out beyond that")
    p.add_argument("--max-chars", type=int, default=2000, help="longest side of a pair kept (characters)")
    p.add_argument("--max-doc-chars", type=int, default=1_000_000, help="longest monolingual document kept")
    args = p.parse_args(argv)
    try:
        try:
            args.template.format(code="x", text="y")
        except (KeyError, IndexError, ValueError) as e:
            raise InputError(f"--template {args.template!r}: {e!r} "
                             "(fields are {code} and {text})") from None
        if "{text}" not in args.template or min(args.group_size, args.workers) < 1:
            raise InputError("--template needs {text}; --group-size and --workers must be >= 1")
        opts = Options(**{f.name: getattr(args, f.name) for f in fields(Options)})
        if args.merge:
            return merge_shards(Path(args.out))
        if not args.input or not args.tokenizer:
            raise InputError("--input and --tokenizer are required (or --merge)")
        if not Path(args.tokenizer).is_file():
            raise InputError(f"--tokenizer {args.tokenizer}: no such file")
        m = re.fullmatch(r"(\d+)/(\d+)", args.shard or "0/1")
        if not m or not int(m[1]) < int(m[2]):
            raise InputError(f"--shard {args.shard}: expected i/n with 0 <= i < n")
        command = shlex.join(["python", "prepare_mala.py", *(sys.argv[1:] if argv is None else argv)])
        shard = (int(m[1]), int(m[2])) if args.shard else None
        return prepare(args.input, opts, args.workers, shard, command)
    except InputError as e:
        raise SystemExit(f"prepare_mala.py: error: {e}") from None


if __name__ == "__main__":
    main()
