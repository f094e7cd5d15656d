"""
Every speed and memory benchmark, each against a peer run in the same process (transformers for the model,
raw tiktoken for preparation and encoding, naive scoring for evaluation, nanoGPT's get_batch for the mix,
a plain PyTorch loop for training), ending in one table. Goals live here, never in timed tests.

    python bench.py [--quick] [--only model,mix,...] [--json rows.json] [--threads 1] [--tokenizer PATH]

--quick: < 2 minutes on an idle 2-core machine. One torch thread by default: on a shared 2-core box,
OpenMP barriers with 2 threads made tiny matmuls ~20x slower and the ratios meaningless.
"""

import argparse
import contextlib
import functools
import hashlib
import io
import itertools
import json
import operator
import os
import random
import resource
import subprocess
import sys
import tempfile
import time
import traceback
from dataclasses import asdict, dataclass, replace
from pathlib import Path

os.environ.setdefault("TQDM_DISABLE", "1")  # before the imports below: no progress bars inside timings

import babel  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import evaluate  # noqa: E402
import mix  # noqa: E402
import prepare_mala  # noqa: E402
import sampler  # noqa: E402
import train  # noqa: E402
from checkpoint import save_hf  # noqa: E402
from common import HelpFormatter, write_atomic  # noqa: E402
from model import PRESETS, Llama  # noqa: E402
from sampler import Mixture  # noqa: E402
from tasks import MCItem, flores_prompts  # noqa: E402
from tokenizer import Tokenizer, learn_bpe, pretokenize, train_bpe  # noqa: E402

ROOT = Path(__file__).resolve().parent
LLAMA3 = None  # --tokenizer: Meta's Llama 3 tokenizer.model for the tokenizer and prepare benchmarks
TMP = tempfile.TemporaryDirectory()  # what several areas share (tokenizer_file)
OPS = {">=": operator.ge, "<=": operator.le, ">": operator.gt, "<": operator.lt}


# ----------------------------------------------------------------------------------------------------
# shared helpers: one row type, one timer, one table, the data and models several areas use
@dataclass
class Row:
    area: str
    name: str
    ours: float
    peer: float | None = None  # same unit as ours, measured in the same run; None: no peer
    unit: str = ""
    lower_is_better: bool = False  # seconds, megabytes
    goal: str = ""  # "ratio >= 2" or "ours < 1000" (in unit); comma-separated conditions must all hold
    detail: str = ""

    @property
    def ratio(self) -> float | None:  # > 1: ours is better
        if self.peer is not None:
            return self.peer / self.ours if self.lower_is_better else self.ours / self.peer

    @property
    def met(self) -> str:
        if not self.goal:
            return "-"
        values = {"ratio": self.ratio, "ours": self.ours}
        ok = all(OPS[op](values[what], float(x)) for what, op, x in (c.split() for c in self.goal.split(",")))
        return "yes" if ok else "no"


def timed(fn, repeats: int = 1, warmup: bool = False):
    """(wall seconds, result) of the fastest of `repeats` calls, after an optional warm-up call (allocator,
    first-call dispatch). On a shared CPU the minimum is the least noisy estimate."""
    if warmup:
        fn()
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        runs.append((time.perf_counter() - start, result))
    return min(runs, key=lambda run: run[0])


def timed_interleaved(*fns, repeats: int, warmup: bool = True) -> list:
    """timed() for several peers, their runs alternating: a slow spell of a shared machine then hits
    every peer alike instead of the one whose turn it was."""
    for fn in fns if warmup else ():
        fn()
    runs = [[] for _ in fns]
    for _ in range(repeats):
        for fn, fn_runs in zip(fns, runs):
            fn_runs.append(timed(fn))
    return [min(fn_runs, key=lambda run: run[0]) for fn_runs in runs]


def fmt(value: float | None, unit: str = "") -> str:
    if value is None:
        return "-"
    return f"{f'{value:,.0f}' if abs(value) >= 100 else f'{value:.3g}'} {unit}".strip()


def print_table(rows: list[Row]) -> None:
    cells = [("area", "benchmark", "ours", "peer", "ratio", "goal", "met?")]
    cells += [(r.area, r.name, fmt(r.ours, r.unit), fmt(r.peer, r.unit), fmt(r.ratio), r.goal or "-", r.met)
              for r in rows]
    widths = [max(map(len, column)) for column in zip(*cells)]
    for c in cells:  # numbers right-aligned
        print("  ".join(s.rjust(w) if i in (2, 3, 4) else s.ljust(w)
                        for i, (s, w) in enumerate(zip(c, widths))).rstrip())
    print("\nratio > 1 = ours better: ours/peer for rates, peer/ours for s and MB")
    for r in (r for r in rows if r.detail):
        print(f"- {r.area} / {r.name}: {r.detail}")


def cldr_text(n_chars: int, seed: int = 0, splice: bool = False) -> list[str]:
    """Lines of CLDR display names (languages, territories, months, days, currencies) of every Babel locale:
    many scripts, real words, deterministic. splice=True glues pieces of two names into new words, for a
    vocabulary as large as real text's (CLDR alone repeats the same names)."""

    rng, lines, total = random.Random(seed), [], 0
    while True:
        for ident in sorted(babel.localedata.locale_identifiers()):
            loc = babel.Locale.parse(ident)
            names = [*loc.languages.values(), *loc.territories.values(),
                     *loc.months["format"]["wide"].values(), *loc.days["format"]["wide"].values(),
                     *loc.currencies.values()]
            rng.shuffle(names)
            if splice:
                names = [a[: rng.randint(1, 6)] + b[-rng.randint(1, 6):] for a, b in zip(names, names[1:])]
            for i in range(0, len(names), 12):
                lines.append(", ".join(names[i: i + 12]) + f" {rng.randint(0, 99999)}.\n")
                total += len(lines[-1])
            if total >= n_chars:
                return lines


@functools.cache
def tokenizer_file() -> tuple[Path, str]:
    """Meta's Llama 3 tokenizer when given (--tokenizer), else a small BPE trained here (once per run, in a
    folder removed at exit); says which."""
    if LLAMA3 is not None:
        return LLAMA3, "llama3"
    path = Path(TMP.name) / "bpe.model"
    train_bpe(cldr_text(300_000, splice=True), 4096, path)
    return path, "trained BPE 4k"


def demo_model(vocab_size: int, seed: int = 0):
    """The "demo" preset (model.PRESETS, fp32) with a fresh init."""
    torch.manual_seed(seed)
    model = Llama(replace(PRESETS["demo"], vocab_size=vocab_size))
    model.init_weights()
    return model


# ----------------------------------------------------------------------------------------------------
# model.py vs transformers' LlamaForCausalLM: same config, same weights
def bench_model(quick: bool) -> list[Row]:
    from transformers import LlamaForCausalLM  # bench-only oracle, never imported by runtime code

    ours = demo_model(2304).eval()  # the demo tokenizer's vocab (2048 base + 256 specials)
    with tempfile.TemporaryDirectory() as folder:
        save_hf(ours, folder)
        theirs = LlamaForCausalLM.from_pretrained(folder, dtype=torch.float32, attn_implementation="sdpa")
    theirs.eval()

    # decode first: the training steps below move the two copies apart by float rounding
    (n_new, repeats), lengths = (32, 2) if quick else (128, 5), (12, 20, 16, 9)
    prompts = [torch.randint(1, ours.args.vocab_size, (n,)).tolist() for n in lengths]
    input_ids = torch.tensor([[0] * (max(lengths) - len(p)) + p for p in prompts])  # left-padded
    decode_theirs = torch.no_grad()(lambda: theirs.generate(
        input_ids, attention_mask=(input_ids != 0).long(), max_new_tokens=n_new, min_new_tokens=n_new,
        do_sample=False, pad_token_id=0))
    # At this size fp32 decoding is bound by reading the weights once per step (the same matmuls in both):
    # the weight matmuls of n_new steps alone are a floor no implementation can beat.
    weights = [p.detach() for n, p in ours.named_parameters() if p.dim() == 2 and "embeddings" not in n]
    inputs = {w.shape[1]: torch.randn(len(prompts), 1, w.shape[1]) for w in weights}
    t_floor, _ = timed(lambda: [F.linear(inputs[w.shape[1]], w) for _ in range(n_new) for w in weights],
                       repeats)
    t_compile, _ = timed(lambda: ours.generate(prompts, n_new, compile=True))  # compiles: not timed below
    (t_ours, new_ours), (t_compiled, new_compiled), (t_theirs, new_theirs) = timed_interleaved(
        lambda: ours.generate(prompts, n_new), lambda: ours.generate(prompts, n_new, compile=True),
        decode_theirs, repeats=repeats)
    same = new_ours == new_compiled == [row[max(lengths):] for row in new_theirs.tolist()]
    n_tok, peer = len(prompts) * n_new, "peer: transformers generate (sdpa, dynamic cache, left-padded)"
    rows = [Row("model", f"greedy decode, batch 4 x {n_new} new", n_tok / t_ours, n_tok / t_theirs, "tok/s",
                detail=f"eager, static KV cache; {peer}; same tokens as peer and compiled: {same}; the weight"
                f" matmuls alone: {n_tok / t_floor:,.0f} tok/s"),
            Row("model", "greedy decode, compiled decode step", n_tok / t_compiled, n_tok / t_theirs, "tok/s",
                goal="ratio >= 2", detail=f"generate(compile=True), static KV cache; first call (compiling) "
                f"{t_compile:.1f} s, not counted; {peer}"),
            Row("model", "decode time beyond weight matmuls", (t_ours - t_floor) / n_new * 1e3,
                (t_theirs - t_floor) / n_new * 1e3, "ms/step", lower_is_better=True, detail="eager")]

    ours.train()
    theirs.train()
    batch, seq = (4, 64) if quick else (8, 256)
    idx, targets = torch.randint(0, ours.args.vocab_size, (2, batch, seq))
    labels = torch.cat([idx[:, :1], targets], dim=1)[:, :-1]  # transformers shifts the labels inside

    def train_step(model, loss_of):
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)

        def step():
            loss_of(model).backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
        return step

    repeats = 6 if quick else 8
    (t_ours, _), (t_theirs, _) = timed_interleaved(
        train_step(ours, lambda m: m(idx, targets)[1]),
        train_step(theirs, lambda m: m(input_ids=idx, labels=labels).loss), repeats=repeats)
    rows.append(Row("model", f"train step {batch}x{seq} fwd+bwd+AdamW", batch * seq / t_ours,
                    batch * seq / t_theirs, "tok/s", goal="ratio >= 1", detail=f"fp32, demo preset dim "
                    f"{ours.args.dim} x {ours.args.n_layers} layers; peer: transformers"))
    return rows


# ----------------------------------------------------------------------------------------------------
# tokenizer.py: BPE training time; encoding against raw tiktoken
def bench_tokenizer(quick: bool) -> list[Row]:
    n_chars, vocab_size = (1_000_000, 2048) if quick else (5_000_000, 256 + 8192)
    rows = []
    for label, splice in (("CLDR names", False), ("spliced CLDR words", True)):
        texts = cldr_text(n_chars, splice=splice)
        t_pre, words = timed(lambda t=texts: pretokenize(t))
        t_bpe, (_, _, stats) = timed(lambda w=words: learn_bpe(w, vocab_size))
        rows.append(Row("tokenizer", f"BPE train {vocab_size - 256} merges, {label}", t_bpe, unit="s",
                        lower_is_better=True, detail=f"{sum(len(t.encode()) for t in texts) / 1e6:.1f} MB, "
                        f"{len(words):,} distinct pieces (pretokenize {t_pre:.1f} s), {stats['cascades']} "
                        f"cascades, {stats['shortcuts']} shortcuts"))
    tok_path, tok_name = tokenizer_file()
    tok = Tokenizer(tok_path)
    lines = texts[: len(texts) // (5 if quick else 1)]
    docs = ["".join(lines[i: i + 100]) for i in range(0, len(lines), 100)]  # ~10 KB documents
    mb = sum(len(d.encode()) for d in docs) / 1e6
    t_ours, ours = timed(lambda: [tok.encode(d) for d in docs], 2)
    t_peer, peer = timed(lambda: [tok.model.encode_ordinary(d) for d in docs], 2)
    rows.append(Row("tokenizer", f"encode ({tok_name}), 1 thread", mb / t_ours, mb / t_peer, "MB/s",
                    detail=f"Tokenizer.encode vs raw tiktoken encode_ordinary, {len(docs)} ~10 KB documents; "
                    f"same ids: {ours == peer}"))
    return rows


# ----------------------------------------------------------------------------------------------------
# prepare_mala.py: throughput per worker against raw tiktoken, and peak memory as the input grows 10x
SYLLABLES = {"Latn": "ka to ri mu sel an dor ve li pra the ing".split(),
             "Cyrl": "ка то ри му сел ан дор ве ли пра ст ния".split(),
             "Deva": "का तो री मु सेल अन दोर वे ली प्रा स्त नि".split()}
CODES = "eng_Latn rus_Cyrl hin_Deva fra_Latn ukr_Cyrl mar_Deva deu_Latn bul_Cyrl npi_Deva ita_Latn".split()
# The CLI in a fresh interpreter, then its VmHWM: this process image only (ru_maxrss keeps a forked parent's
# pages on Linux). Not from bench.py itself: spawned workers would re-import bench.py and torch.
CLI = ("import contextlib, io, sys; sys.path.insert(0, sys.argv[1]); import prepare_mala\n"
       "with contextlib.redirect_stdout(io.StringIO()): prepare_mala.main(sys.argv[2:])\n"
       "print(next(l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM:')))")


def run_cli(*argv: str) -> tuple[float, float, float]:
    """(wall seconds, peak RSS in MB, CPU seconds of the run and its workers) of one prepare_mala.py run."""
    cpu = lambda: (lambda r: r.ru_utime + r.ru_stime)(resource.getrusage(resource.RUSAGE_CHILDREN))
    start, cpu_start = time.perf_counter(), cpu()
    proc = subprocess.run([sys.executable, "-c", CLI, str(ROOT), *argv], capture_output=True, text=True)
    if proc.returncode:
        raise RuntimeError(f"prepare_mala.py {' '.join(argv)} failed:\n{proc.stderr[-3000:]}")
    return time.perf_counter() - start, int(proc.stdout.split()[-1]) / 1024, cpu() - cpu_start  # kB -> MB


TIKTOKEN_LOOP = ("import sys, time; sys.path.insert(0, sys.argv[1]); from tokenizer import Tokenizer\n"
                 "enc = Tokenizer(sys.argv[2]).model; docs = open(sys.argv[3]).read().split('\\0')\n"
                 "start = time.perf_counter(); enc.encode_ordinary_batch(docs, num_threads=1)\n"
                 "print(time.perf_counter() - start)")


def tiktoken_processes(tok_path: Path, docs_file: Path, n: int) -> float:
    """Seconds until all of n concurrent processes have encoded every document of docs_file (\\0-separated)
    with plain tiktoken, tokenizer loading excluded."""
    procs = [subprocess.Popen([sys.executable, "-c", TIKTOKEN_LOOP, str(ROOT), str(tok_path), str(docs_file)],
                              stdout=subprocess.PIPE, text=True) for _ in range(n)]
    return max(float(p.communicate()[0]) for p in procs)


def make_pairs(root: Path, n_sources: int, mb_per_source: float) -> tuple[list[str], int]:
    """MaLA JSONL pair folders (up to 10 distinct pairs, mixed scripts) of random unique sentences;
    returns all their texts and the UTF-8 size."""
    texts = []
    for i in range(n_sources):
        src, tgt, rng = CODES[i], CODES[(i + 4) % len(CODES)], random.Random(i)
        vocab = {code: ["".join(rng.choices(SYLLABLES[code[-4:]], k=rng.randint(1, 4))) for _ in range(3000)]
                 for code in (src, tgt)}
        (root / f"{src}-{tgt}").mkdir(parents=True)
        size = 0
        with open(root / f"{src}-{tgt}" / "train.jsonl", "w") as f:
            while size < mb_per_source * 1e6:
                n = rng.randint(6, 20)
                a = " ".join(rng.choices(vocab[src], k=n)).capitalize() + "."
                b = " ".join(rng.choices(vocab[tgt], k=n + rng.randint(-2, 2))) + "."
                f.write(json.dumps({"src_text": a, "tgt_text": b}, ensure_ascii=False) + "\n")
                texts += [a, b]
                size += len(a.encode()) + len(b.encode())
    return texts, sum(len(t.encode()) for t in texts)


def cpu_seconds(fn) -> float:
    """CPU time of all this process's threads during fn()."""
    start = time.process_time()
    fn()
    return time.process_time() - start


def bench_prepare(quick: bool) -> list[Row]:
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        tok_path, tok_name = tokenizer_file()
        tok = prepare_mala.load_tokenizer(str(tok_path))
        cli = lambda name, *extra: run_cli("--input", f"{tmp}/{name}", "--out", f"{tmp}/o{next(runs)}",
                                           "--tokenizer", str(tok_path), *map(str, extra))
        # the whole pipeline (read JSONL, clean, script check, dedup, pseudo-documents, encode, write .bin)
        # vs tiktoken alone on the same texts with the pipeline's batching (10 pairs a document)
        texts, n_bytes = make_pairs(tmp / "thr", 4, 2.0 if quick else 5.0)
        opts, runs, mb = prepare_mala.Options("", str(tok_path)), itertools.count(), n_bytes / 1e6
        pipeline = lambda: prepare_mala.prepare([str(tmp / "thr")], replace(opts, out=f"{tmp}/o{next(runs)}"))
        docs = ["\n".join(texts[i:i + 20]) for i in range(0, len(texts), 20)]
        tiktoken_only = lambda: [tok.model.encode_ordinary_batch(docs[i:i + 512], num_threads=1)
                                 for i in range(0, len(docs), 512)]
        (t_serial, _), (t_tik, _) = timed_interleaved(pipeline, tiktoken_only, repeats=2 if quick else 3)
        cpu = {name: cpu_seconds(fn) for name, fn in (("ours", pipeline), ("tik", tiktoken_only))}
        peer = "peer: tiktoken encode_ordinary_batch, 1 thread"
        rows = [Row("prepare", f"MB/s per worker ({tok_name})", mb / t_serial, mb / t_tik, "MB/s",
                    goal="ratio >= 0.8", detail=f"{mb:.1f} MB of pairs, 1 worker: one core, as the peer; "
                    f"{peer}; CPU s/MB {cpu['ours'] / mb:.3f} vs {cpu['tik'] / mb:.3f}")]

        # workers: the steady-state rate, i.e. the wall of the CLI minus that of a tiny run with the same
        # workers (interpreter, imports, tokenizer load and worker start); fastest of 3 tries, interleaved
        scale_mb = mb if quick else make_pairs(tmp / "scale", 4, 10.0)[1] / 1e6
        scale_input = "thr" if quick else "scale"
        make_pairs(tmp / "tiny", 2, 0.01)
        (tmp / "docs.txt").write_text("\0".join(docs))
        walls = {(name, workers): (float("inf"), 0.0) for name in ("tiny", scale_input) for workers in (1, 2)}
        peer_walls = {1: float("inf"), 2: float("inf")}
        for name, workers in list(walls) * 3:
            wall, _, cpu_s = cli(name, "--workers", workers)
            walls[name, workers] = min(walls[name, workers], (wall, cpu_s))
            if name != "tiny":
                peer_wall = tiktoken_processes(tok_path, tmp / "docs.txt", workers)
                peer_walls[workers] = min(peer_walls[workers], peer_wall)
        (run, tiny), workers = ({w: walls[name, w] for w in (1, 2)} for name in (scale_input, "tiny")), (1, 2)
        rate = {w: scale_mb / (run[w][0] - tiny[w][0]) for w in workers}
        cpu_per_mb = {w: (run[w][1] - tiny[w][1]) / scale_mb for w in workers}
        peer_scaling = 2 * peer_walls[1] / peer_walls[2]  # each of the 2 processes encodes all the docs
        rows.append(Row(
            "prepare", "--workers 2 vs 1 (rate ratio)", rate[2] / rate[1], peer_scaling, "x",
            goal="ratio >= 0.9", detail=f"steady state, 4 equal sources, {scale_mb:.0f} MB: "
            f"{rate[1]:.1f} -> {rate[2]:.1f} MB/s, CPU s/MB {cpu_per_mb[1]:.3f} -> {cpu_per_mb[2]:.3f}; "
            f"peer: tiktoken alone in 2 processes vs 1 (what this machine gives; ideal 2.0); os.cpu_count()="
            f"{os.cpu_count()}, load {os.getloadavg()[0]:.1f}"))

        small, rss = 0.5 if quick else 4.0, {}  # peak RSS of the CLI: 10x the sources, one 10x larger source
        for name, n_sources, size in (("one", 1, small), ("ten", 10, small), ("big", 1, 10 * small)):
            make_pairs(tmp / name, n_sources, size)
            rss[name] = cli(name)[1]
    return rows + [Row("prepare", "peak RSS, 10x input as 10x sources", rss["ten"], rss["one"], "MB",
                       lower_is_better=True, goal="ratio >= 0.8, ours < 1000",
                       detail=f"peer: the same CLI on 1 source of {small:g} MB"),
                   Row("prepare", "peak RSS, one 10x larger source", rss["big"], rss["one"], "MB",
                       lower_is_better=True, detail="grows by the exact-duplicate hash set, ~70 B a pair")]


# ----------------------------------------------------------------------------------------------------
# mix.Mixture: opening 2,500 sources, sampling against nanoGPT's get_batch. The .bin files are sparse
# (holes read as zeros): page-cache and mapping costs are real, the disk is not measured.
N_SOURCES = 2_500


def make_sparse_sources(root: Path, n_tokens: int) -> None:
    """2,500 sparse .bin files (and tiny val files) with an index.json per the contract."""
    rng = np.random.default_rng(0)
    sizes = (n_tokens * rng.uniform(0.5, 1.0, N_SOURCES)).astype(int).tolist()
    words = (10 ** rng.uniform(3, 11, N_SOURCES)).astype(int).tolist()  # spread over all paper tiers
    counts, sources = {"n_docs": 1, "n_pairs": 1, "n_lines": 0}, {}
    for i, (size, n_words) in enumerate(zip(sizes, words)):
        name = f"eng_Latn-l{i:04d}_Latn"
        for path, n in ((root / f"{name}.bin", size), (root / f"{name}.val.bin", 100)):
            with open(path, "wb") as f:
                f.truncate(4 * n)
        sources[name] = {"kind": "bi", "langs": name.split("-"), "bin": f"{name}.bin", "sha256": None,
                         "val_bin": f"{name}.val.bin", **counts, "n_tokens": size, "n_words": n_words,
                         "val": {**counts, "n_tokens": 100, "n_words": 30}}
    (root / "tokenizer.model").write_bytes(b"-\n")
    tokenizer = {"file": "tokenizer.model", "sha256": hashlib.sha256(b"-\n").hexdigest(), "eos_id": 1}
    (root / "index.json").write_text(json.dumps({"format": 2, "dtype": "uint32", "complete": True,
                                                 "tokenizer": tokenizer, "sources": sources}))


def nanogpt_get_batch(bins, n_tokens, cdf, rng, batch_size, block_size):
    """nanoGPT's train.py get_batch (a fresh np.memmap per batch, torch.stack of slices), with a weighted
    choice of source per row."""
    rows = []
    for k in np.searchsorted(cdf, rng.random(batch_size), side="right").tolist():
        data = np.memmap(bins[k], dtype=np.uint32, mode="r")
        i = int(rng.integers(n_tokens[k] - block_size))
        rows.append(torch.from_numpy(data[i:i + block_size + 1].astype(np.int64)))
    w = torch.stack(rows)
    return w[:, :-1].contiguous(), w[:, 1:].contiguous()


def bench_mix(quick: bool) -> list[Row]:
    block, batch = 8192, 8
    n_tokens, n_batches = (20_000, 300) if quick else (200_000, 2_000)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        make_sparse_sources(root, n_tokens)
        doc, _ = mix.build_mix([root], mix.load_config(ROOT / "config" / "mix_bi.py"), root / "mix.json")
        (root / "mix.json").write_text(json.dumps(doc))
        t_open, m = timed(lambda: sampler.Mixture(root / "mix.json", block_size=block, seed=0))
        t_map, _ = timed(lambda: [m._tokens(k) for k in range(N_SOURCES)])
        for k in range(N_SOURCES):  # fault every page in: the warm (page-cache) case
            m._tokens(k).sum()
        t_windows, _ = timed(lambda: m.windows(0, np.arange(1_000_000)))

        def rate(get_batch, n_calls):  # M tokens/s of the fastest of 10 equal chunks
            t, _ = timed(lambda: [get_batch() for _ in range(n_calls // 10)], 10, warmup=True)
            return n_calls // 10 * batch * block / t / 1e6

        steps, rng = itertools.count(), np.random.default_rng(0)
        cdf = np.cumsum([s["weight"] for s in m.sources])
        ours = rate(lambda: m.get_batch(next(steps), 0, 0, 1, batch), n_batches)
        peer = rate(lambda: nanogpt_get_batch([str(b) for b in m._bins], [s["n_tokens"] for s in m.sources],
                                              cdf / cdf[-1], rng, batch, block), max(n_batches // 4, 20))
    return [Row("mix", "open 2,500 sources (Mixture())", t_open, unit="s", lower_is_better=True,
                detail=f"mix.json, index.json, 5,000 file sizes; mapping all .bin (first use) {t_map:.2f} s"),
            Row("mix", f"get_batch {batch}x{block}, 2,500 sources", ours, peer, "M tok/s", goal="ours >= 100",
                detail=f"warm page cache, 1 core; peer: nanoGPT get_batch + weighted source; window choice "
                f"(SplitMix64 + inverse CDF) {1 / t_windows:.1f} M sequences/s")]


# ----------------------------------------------------------------------------------------------------
# train.py's step (FSDP2 over a process group of one, the torchrun code path) vs a plain PyTorch loop
def bench_train(quick: bool) -> list[Row]:
    block, batch = 256, 8
    steps, rounds = (3, 2) if quick else (8, 3)
    with tempfile.TemporaryDirectory() as tmp:
        # pairs of the prepare benchmark through the real pipeline, with a 2048-rank BPE (the demo's size)
        data, mix_json = Path(tmp) / "data", Path(tmp) / "mix.json"
        texts = make_pairs(Path(tmp) / "in", 4, 0.5)[0]
        train_bpe(texts, 2048, Path(tmp) / "tokenizer.model")
        with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
            prepare_mala.main(["--input", f"{tmp}/in", "--out", str(data), "--tokenizer",
                               f"{tmp}/tokenizer.model"])
            mix.main([str(data), "--config", str(Path(__file__).parent / "config" / "mix_bi.py"),
                      "--out", str(mix_json)])
        model = demo_model(json.loads((data / "index.json").read_text())["tokenizer"]["n_vocab"])
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.95), weight_decay=0.1)
        mixture, counter = Mixture(mix_json, block), itertools.count()

        def plain_step():
            model(*mixture.get_batch(next(counter), 0, 0, 1, batch))[1].backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)

        def train_py(run: str, *overrides: str) -> float:  # train.py's best step (tok/s) with these settings
            train.main([f"--mix={mix_json}", "--model=demo", f"--block_size={block}",
                        f"--global_batch_size={batch}", f"--micro_batch_size={batch}",
                        f"--max_steps={steps}", "--eval_interval=0", "--ckpt_interval=0", "--export_hf=False",
                        "--device=cpu", "--dtype=float32", "--compile=False", *overrides,
                        f"--out_dir={tmp}/{run}"])
            log = [json.loads(line) for line in Path(f"{tmp}/{run}/log.jsonl").read_text().splitlines()]
            return max(e.get("tokens_per_s", 0) for e in log if e.get("step", 0) > 1)

        # the demo's CPU settings: bf16 pays only where the CPU multiplies bf16 natively (AMX, AVX512-BF16),
        # torch.compile only where inductor's CPU code beats the eager kernels at these tiny shapes
        plain, ours, bf16, compiled = float("inf"), 0.0, 0.0, 0.0
        for r in range(rounds):  # interleaved, best step of all rounds: the CPU is shared and noisy
            plain = min(plain, timed(plain_step, steps - 1, warmup=True)[0])
            ours = max(ours, train_py(f"fp32_{r}"))
            bf16 = max(bf16, train_py(f"bf16_{r}", "--dtype=bfloat16"))
            compiled = max(compiled, train_py(f"compiled_{r}", "--compile=True"))
    return [Row("train", f"train.py step {batch}x{block}, 1 process", ours, batch * block / plain, "tok/s",
                detail=f"demo preset, fp32, best step of {rounds} x {steps}; peer: plain loop, same model, "
                "batches and AdamW, no FSDP (ratio 1.0 = FSDP2 costs nothing)"),
            Row("train", "train.py bf16 vs fp32 (demo preset)", bf16, ours, "tok/s",
                detail="ratio > 1: bf16 pays on this CPU (config/demo_base.py uses fp32: close numbers "
                "everywhere, and no 10x slowdown on CPUs without native bf16)"),
            Row("train", "train.py compile=True vs eager (demo preset)", compiled, ours, "tok/s",
                detail="first steps (compiling) not counted; ratio > 1: compile pays on this CPU")]


# ----------------------------------------------------------------------------------------------------
# evaluate.py against the naive ways, same model and data: packed multiple choice, batched translation
WORDS = ("the cat dog house river city green small quick runs sleeps near over under with from "
         "maison chat chien rivière ville vert petit rapide dort sous avec").split()


@torch.no_grad()
def one_choice_per_forward(model, tok, items) -> list[list[float]]:
    """The naive scorer: one plain forward per choice, the context recomputed for every choice."""
    scores = []
    for item in items:
        context, row = tok.encode(item.context, bos=True), []
        for choice in item.choices:
            ids = tok.encode(" " + choice)
            logp = model(torch.tensor([context + ids]))[0][0, len(context) - 1:-1].log_softmax(-1)
            row.append(logp.gather(1, torch.tensor(ids)[:, None]).sum().item())
        scores.append(row)
    return scores


def bench_evaluate(quick: bool) -> list[Row]:
    rng = random.Random(0)
    sentence = lambda n_words: " ".join(rng.choice(WORDS) for _ in range(n_words)).capitalize() + "."
    with tempfile.TemporaryDirectory() as tmp:
        corpus = [f"[eng_Latn]: {sentence(12)}\n[fra_Latn]: {sentence(12)}\n" for _ in range(300)]
        tok = train_bpe(corpus, 400, Path(tmp) / "tokenizer.model")
    model = demo_model(tok.n_vocab).eval()
    n_questions, n_sentences, new_tokens = (8, 16, 48) if quick else (48, 48, 48)
    # belebele: passage + question + 4 listed answers, letter choices (lm-eval's format); arc: 4 answers
    passage = lambda: ("P: " + " ".join(sentence(15) for _ in range(6)) + f"\nQ: {sentence(8)}\n"
                       + "".join(f"{c}: {sentence(5)}\n" for c in "ABCD") + "Answer:")
    shapes = {"belebele": [MCItem(passage(), ["A", "B", "C", "D"], 0) for _ in range(n_questions)],
              "arc": [MCItem(f"Question: {sentence(15)}\nAnswer:",
                             [sentence(rng.randint(3, 8)) for _ in "abcd"], 0) for _ in range(n_questions)]}
    rows = []
    for shape, items in shapes.items():
        one_choice_per_forward(model, tok, items[:2])  # warm-up
        (t_packed, packed), (t_naive, naive) = timed_interleaved(
            lambda it=items: evaluate.score_choices(model, tok, it, batch_size=8),
            lambda it=items: one_choice_per_forward(model, tok, it), repeats=2, warmup=False)
        max_diff = max(abs(a - b) for p, q in zip(packed, naive) for a, b in zip(p, q))
        n, context = 4 * len(items), sum(len(tok.encode(it.context)) for it in items) / len(items)
        rows.append(Row("evaluate", f"{shape}-shaped MC, packed x 4 choices", n / t_packed, n / t_naive,
                        "choices/s", goal="ratio >= 3", detail=f"{len(items)} questions, context "
                        f"~{context:.0f} tokens, batch 8; peer: one forward per choice; max |dLL| "
                        f"{max_diff:.1e}"))

    dev = [(sentence(12), sentence(12)) for _ in range(20)]
    prompts = flores_prompts([d[0] for d in dev], [d[1] for d in dev],
                             [sentence(rng.randint(8, 16)) for _ in range(n_sentences)],
                             "eng_Latn", "fra_Latn", 0, "eng_Latn", "fra_Latn")
    evaluate.generate_lines(model, tok, prompts[:2], new_tokens, batch_size=16)  # warm-up
    (t_batched, batched), (t_single, single) = timed_interleaved(
        lambda: evaluate.generate_lines(model, tok, prompts, new_tokens, batch_size=16),
        lambda: evaluate.generate_lines(model, tok, prompts, new_tokens, batch_size=1), repeats=2,
        warmup=False)
    same = sum(a == b for a, b in zip(batched, single))
    return rows + [Row("evaluate", "translation, batch 16 vs 1", n_sentences / t_batched,
                       n_sentences / t_single, "sent/s", goal="ratio >= 4", detail=f"{n_sentences} 3-shot "
                       f"prompts, <= {new_tokens} new tokens, {same}/{n_sentences} identical outputs; peer: "
                       "one prompt per generate")]


# ----------------------------------------------------------------------------------------------------
AREAS = {"model": bench_model, "tokenizer": bench_tokenizer, "prepare": bench_prepare, "mix": bench_mix,
         "train": bench_train, "evaluate": bench_evaluate}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes: < 2 minutes on an idle 2-core box")
    parser.add_argument("--only", default=",".join(AREAS), help=f"comma-separated, of: {', '.join(AREAS)}")
    parser.add_argument("--json", help="also write the rows to this JSON file")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (see above)")
    parser.add_argument("--tokenizer", type=Path, help="Meta's Llama 3 tokenizer.model for the tokenizer and "
                        "prepare benchmarks (default: a 4k BPE trained here)")
    args = parser.parse_args(argv)
    global LLAMA3
    LLAMA3 = args.tokenizer
    areas = [a.strip() for a in args.only.split(",") if a.strip()]
    if not areas or any(a not in AREAS for a in areas):
        raise SystemExit(f"bench.py: --only {args.only!r}: choose areas from {', '.join(AREAS)}")
    torch.set_num_threads(args.threads)
    start, load = time.perf_counter(), os.getloadavg()[0]
    rows, failed = [], []
    for area in areas:
        print(f"{area} ...", end=" ", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        try:
            with contextlib.redirect_stdout(io.StringIO()):  # prepare and train print their own summaries
                rows += AREAS[area](args.quick)
        except Exception:
            failed.append(area)
            traceback.print_exc()
        print(f"{time.perf_counter() - t0:.0f} s", file=sys.stderr)
    meta = {"quick": args.quick, "threads": torch.get_num_threads(), "cpus": os.cpu_count(), "failed": failed,
            "wall_s": round(time.perf_counter() - start, 1), "load_avg": [load, os.getloadavg()[0]]}
    print(f"\nbench.py{' --quick' * args.quick}: {meta['threads']} torch thread(s), {meta['wall_s']:.0f} s "
          f"wall, {meta['cpus']} CPUs, load avg {load:.1f} -> {os.getloadavg()[0]:.1f}\n")
    print_table(rows)
    if args.json:
        write_atomic(args.json, json.dumps({**meta, "rows": [{**asdict(r), "ratio": r.ratio, "met": r.met}
                                                            for r in rows]}, indent=1))
    if failed:
        raise SystemExit(f"bench.py: area(s) failed: {', '.join(failed)} (traceback above)")


if __name__ == "__main__":
    main()
