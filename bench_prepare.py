"""
Speed and memory of prepare_mala.py, each against a peer measured in the same run.

    python bench_prepare.py [--quick]

- throughput: MB of raw pair text (UTF-8 bytes of src + tgt) per second per worker through the whole
  pipeline (read JSONL, clean, script check, dedup, pseudo-documents, encode_batch, write .bin) vs plain
  tiktoken encode_ordinary_batch (1 thread) of the same texts. Goal >= 0.8.
- scaling: --workers 2 vs --workers 1 on the same sources (ideal 2.0; needs 2 idle cores).
- peak RSS of the CLI (VmHWM inside a fresh interpreter) when the input grows 10x: by more sources
  (goal: flat, < 1 GB) and by one 10x larger source (grows by the exact-duplicate hash set, ~70 B a pair).
Tokenizer: Meta's Llama 3 tokenizer.model from ../shared/llama3 when present, else a small trained BPE.
"""

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import prepare_mala as pm

ROOT = Path(__file__).resolve().parent
LLAMA3 = ROOT.parent / "shared" / "llama3" / "tokenizer.model"
SYLLABLES = {"Latn": "ka to ri mu sel an dor ve li pra the ing".split(),
             "Cyrl": "ка то ри му сел ан дор ве ли пра ст ния".split(),
             "Deva": "का तो री मु सेल अन दोर वे ली प्रा स्त नि".split()}
CODES = "eng_Latn rus_Cyrl hin_Deva fra_Latn ukr_Cyrl mar_Deva deu_Latn bul_Cyrl npi_Deva ita_Latn".split()


def make_source(folder: Path, src: str, tgt: str, n_bytes: int, seed: int) -> list[str]:
    """A MaLA JSONL pair folder of about n_bytes of random (unique) sentences; returns the texts."""
    rng = random.Random(seed)
    vocab = {code: ["".join(rng.choices(SYLLABLES[code[-4:]], k=rng.randint(1, 4))) for _ in range(3000)]
             for code in (src, tgt)}
    folder.mkdir(parents=True)
    texts, size = [], 0
    with open(folder / "train.jsonl", "w") as f:
        while size < n_bytes:
            n = rng.randint(6, 20)
            a = " ".join(rng.choices(vocab[src], k=n)).capitalize() + "."
            b = " ".join(rng.choices(vocab[tgt], k=n + rng.randint(-2, 2))) + "."
            f.write(json.dumps({"src_text": a, "tgt_text": b}, ensure_ascii=False) + "\n")
            texts += [a, b]
            size += len(a.encode()) + len(b.encode())
    return texts


def make_input(root: Path, n_sources: int, mb_per_source: float, seed: int = 0) -> tuple[list[str], int]:
    texts = []
    for i in range(n_sources):  # up to 10 distinct pairs, mixed scripts
        src, tgt = CODES[i], CODES[(i + 4) % len(CODES)]
        texts += make_source(root / f"{src}-{tgt}", src, tgt, int(mb_per_source * 1e6), seed + i)
    return texts, sum(len(t.encode()) for t in texts)


def best_of(n: int, fn) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process, all threads) of the fastest of n runs."""
    runs = []
    for i in range(n):
        t0, c0 = time.perf_counter(), time.process_time()
        fn(i)
        runs.append((time.perf_counter() - t0, time.process_time() - c0))
    return min(runs)


PEAK_RSS_SCRIPT = """
import contextlib, io, resource, sys
sys.path.insert(0, sys.argv[1])
import prepare_mala
with contextlib.redirect_stdout(io.StringIO()):
    prepare_mala.main(sys.argv[2:])
try:  # VmHWM: this process image only (ru_maxrss keeps the forked parent's pages across exec on Linux)
    print([int(l.split()[1]) for l in open("/proc/self/status") if l.startswith("VmHWM:")][0])
except OSError:
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def peak_rss_mb(input_dir: Path, out: Path, tok_path: Path) -> float:
    """Peak resident memory of one whole CLI run, measured inside a fresh interpreter."""
    proc = subprocess.run([sys.executable, "-c", PEAK_RSS_SCRIPT, str(ROOT), "--input", str(input_dir),
                           "--out", str(out), "--tokenizer", str(tok_path), "--threads", "1"],
                          capture_output=True, text=True, check=True)
    return int(proc.stdout.split()[-1]) / 1024  # kB -> MB


def bench(quick: bool) -> list[tuple[str, float, str]]:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        if LLAMA3.exists():
            tok_path, tok_name = LLAMA3, "llama3"
        else:
            texts, _ = make_input(tmp / "tok_text", 1, 0.5)
            tok_path, tok_name = tmp / "tok.model", "trained BPE 8192"
            from tokenizer import train_bpe

            train_bpe(texts, 8192, tok_path)
        tok = pm.load_tokenizer(str(tok_path))

        # throughput, 1 worker, against tiktoken on the same texts; best of 2 (the machine is shared)
        mb = 1.0 if quick else 5.0
        texts, n_bytes = make_input(tmp / "thr", 4, mb)
        opts = pm.Options(out="", tokenizer=str(tok_path), threads=1)

        def pipeline(run):
            run_opts = pm.Options(**{**vars(opts), "out": str(tmp / f"out{run}")})
            pm.prepare([str(tmp / "thr")], run_opts, workers=1)

        # the peer gets the same batching the pipeline uses: 10 pairs a text, 512 texts a call
        docs = ["\n".join(texts[i:i + 20]) for i in range(0, len(texts), 20)]

        def tiktoken_only(run):
            for i in range(0, len(docs), opts.batch_docs):
                tok.model.encode_ordinary_batch(docs[i:i + opts.batch_docs], num_threads=1)

        (t_pipe, cpu_pipe), (t_tik, cpu_tik) = best_of(2, pipeline), best_of(2, tiktoken_only)
        pipe, tik = n_bytes / 1e6 / t_pipe, n_bytes / 1e6 / t_tik
        rows.append(("prepare_mb_s_per_worker_vs_tiktoken", pipe / tik,
                     f"{pipe:.2f} MB/s vs tiktoken encode_ordinary_batch {tik:.2f} MB/s (wall), "
                     f"{n_bytes / 1e6:.1f} MB, {tok_name}, goal >= 0.8"))
        rows.append(("prepare_cpu_s_per_mb_vs_tiktoken", cpu_tik / cpu_pipe,
                     f"{cpu_pipe / n_bytes * 1e6:.3f} vs {cpu_tik / n_bytes * 1e6:.3f} CPU s/MB: the pipeline"
                     " encodes on a second thread while it cleans the next batch"))

        # scaling with --workers 2 (includes spawning the workers and their tokenizer load)
        t0 = time.perf_counter()
        pm.prepare([str(tmp / "thr")], pm.Options(**{**vars(opts), "out": str(tmp / "out_w2")}), workers=2)
        t_two = time.perf_counter() - t0
        rows.append(("prepare_workers2_speedup", t_pipe / t_two,
                     f"{n_bytes / 1e6 / t_two / 2:.2f} MB/s per worker with 2 workers incl. their start, "
                     f"ideal 2.0x (os.cpu_count()={os.cpu_count()}, load avg {os.getloadavg()[0]:.1f})"))

        # peak RSS: 10x more input as 10x the sources, and as one 10x larger source
        small = 0.5 if quick else 4.0
        make_input(tmp / "rss1", 1, small)
        make_input(tmp / "rss10", 10, small)
        make_input(tmp / "rss1big", 1, 10 * small)
        base = peak_rss_mb(tmp / "rss1", tmp / "o_rss1", tok_path)
        many = peak_rss_mb(tmp / "rss10", tmp / "o_rss10", tok_path)
        big = peak_rss_mb(tmp / "rss1big", tmp / "o_rss1big", tok_path)
        rows.append(("peak_rss_10x_sources_ratio", many / base,
                     f"{base:.0f} MB -> {many:.0f} MB for {small:g} MB -> 10x{small:g} MB of pairs, "
                     "goal ~1.0, < 1 GB"))
        rows.append(("peak_rss_10x_one_source_ratio", big / base,
                     f"{base:.0f} MB -> {big:.0f} MB for one source of {small:g} -> {10 * small:g} MB "
                     "(dedup hash set ~70 B/pair)"))
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="prepare_mala.py benchmarks")
    parser.add_argument("--quick", action="store_true", help="small inputs, < 25 s")
    args = parser.parse_args()
    import contextlib
    import io

    with contextlib.redirect_stdout(io.StringIO()):  # prepare() prints its summary tables
        results = bench(args.quick)
    width = max(len(name) for name, _, _ in results)
    for name, value, detail in results:
        print(f"{name:<{width}}  {value:8.3f}  {detail}")
