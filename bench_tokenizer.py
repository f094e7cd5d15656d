"""
Tokenizer benchmarks: BPE training time (8k merges on ~5 MB of multilingual text synthesised from Babel's
CLDR locale data), and, when Meta's tokenizer.model is present, encode throughput.

    python bench_tokenizer.py [--quick]
"""

import random
import sys
import tempfile
import time
from pathlib import Path

import babel
from babel import Locale

from tokenizer import Tokenizer, learn_bpe, pretokenize, train_bpe

LLAMA3_PATH = Path(__file__).resolve().parent.parent / "shared" / "llama3" / "tokenizer.model"


def cldr_text(n_chars: int, seed: int = 0, splice: bool = False) -> list[str]:
    """Lines of CLDR display names (languages, territories, months, days, currencies) in every locale:
    many scripts, real words. Deterministic for a seed. splice=True also glues random pieces of two names
    into new words, for a vocabulary as large as real text's (CLDR alone repeats the same names)."""
    rng = random.Random(seed)
    lines, total = [], 0
    locales = sorted(babel.localedata.locale_identifiers())
    while total < n_chars:
        for ident in locales:
            loc = Locale.parse(ident)
            names = [
                *loc.languages.values(),
                *loc.territories.values(),
                *loc.months["format"]["wide"].values(),
                *loc.days["format"]["wide"].values(),
                *loc.currencies.values(),
            ]
            rng.shuffle(names)
            if splice:
                names = [a[: rng.randint(1, 6)] + b[-rng.randint(1, 6) :] for a, b in zip(names, names[1:])]
            for i in range(0, len(names), 12):
                line = ", ".join(names[i : i + 12]) + f" {rng.randint(0, 99999)}.\n"
                lines.append(line)
                total += len(line)
            if total >= n_chars:
                break
    return lines


def bench(quick: bool) -> list[tuple[str, float, str]]:
    rows = []
    n_chars, vocab_size = (1_000_000, 2048) if quick else (5_000_000, 256 + 8192)
    for suffix, splice in (("", False), ("_spliced", True)):
        texts = cldr_text(n_chars, splice=splice)
        mb = sum(len(t.encode()) for t in texts) / 1e6
        t0 = time.perf_counter()
        words = pretokenize(texts)
        t1 = time.perf_counter()
        vocab, _, stats = learn_bpe(words, vocab_size)
        t2 = time.perf_counter()
        rows.append((f"bpe_pretokenize_s{suffix}", t1 - t0, f"{mb:.1f} MB, {len(words)} distinct pieces"))
        detail = f"{vocab_size - 256} merges, {stats['cascades']} cascades, {stats['shortcuts']} shortcuts"
        rows.append((f"bpe_train_s{suffix}", t2 - t1, detail))
    texts = cldr_text(n_chars)
    with tempfile.TemporaryDirectory() as d:
        tok = train_bpe(texts[:2000], 1024, Path(d) / "tokenizer.model")
        rows.append(("bpe_small_n_vocab", tok.n_vocab, "train_bpe(2000 lines, 1024) -> Tokenizer"))
    if LLAMA3_PATH.exists():
        tok = Tokenizer(LLAMA3_PATH)
        lines = texts[: len(texts) // (5 if quick else 1)]
        sample = ["".join(lines[i : i + 100]) for i in range(0, len(lines), 100)]  # ~10 KB documents
        n = sum(len(t) for t in sample)
        t0 = time.perf_counter()
        ids = [tok.encode(t) for t in sample]
        t1 = time.perf_counter()
        batch = tok.encode_batch(sample, num_threads=2)
        t2 = time.perf_counter()
        assert batch == ids
        n_tok = sum(map(len, ids))
        rows.append(("llama3_encode_Mchar_per_s", n / (t1 - t0) / 1e6, f"{n_tok} tokens, one thread"))
        detail = f"encode_batch of {len(sample)} ~10 KB documents, 2 threads"
        rows.append(("llama3_encode_batch_Mchar_per_s", n / (t2 - t1) / 1e6, detail))
        rows.append(("llama3_chars_per_token", n / n_tok, "on the CLDR text"))
    return rows


if __name__ == "__main__":
    quick = "--quick" in sys.argv
    for name, value, detail in bench(quick):
        print(f"{name:34s} {value:12.3f}  {detail}")
