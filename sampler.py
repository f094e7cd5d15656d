"""The codebase's only batch sampler: `Mixture(mix_json, block_size, seed)` reads a mix.json (mix.py) and
its token files. Global sequence g of a step is a pure function of (seed, step, g): a source drawn by
weight, then a window of block_size + 1 tokens in it. Resuming needs no loader state, and any number of
ranks sees the same global batch. Validation sequences are fixed per tier / language, whatever the seed
or the world size.
"""

import json
import zlib
from pathlib import Path

import numpy as np
import torch

from mix import TIERS, MixError, check_size, read_index

VAL_SEED = 20250531  # validation windows do not depend on the training seed: runs stay comparable

_U64 = np.uint64


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """Steele et al.'s SplitMix64 finaliser, vectorised: a bijective 64-bit mixer (counter-based RNG)."""
    x = x + _U64(0x9E3779B97F4A7C15)
    x = (x ^ (x >> _U64(30))) * _U64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> _U64(27))) * _U64(0x94D049BB133111EB)
    return x ^ (x >> _U64(31))


def uniform(seed: int, step: int, g: np.ndarray, stream: int) -> np.ndarray:
    """Uniform floats in [0, 1), one per entry of g, a pure function of (seed, step, g, stream)."""
    mask = (1 << 64) - 1
    with np.errstate(over="ignore"):
        key = _splitmix64(np.array([(seed * 4 + stream) & mask], dtype=_U64))
        key = _splitmix64(key ^ np.array([step & mask], dtype=_U64))
        h = _splitmix64(key ^ np.asarray(g, dtype=_U64))
    return (h >> _U64(11)).astype(np.float64) * 2.0 ** -53


def _open_tokens(path: Path, n_tokens: int) -> np.ndarray:
    # torch.from_file maps the file (MAP_PRIVATE, pages loaded on touch) and closes its descriptor;
    # np.memmap would keep one fd per file (Python's mmap dups it), which 2 x 2,500 sources exhaust.
    if n_tokens == 0:
        return np.zeros(0, dtype=np.uint32)
    return torch.from_file(str(path), shared=False, size=n_tokens, dtype=torch.uint32).numpy()


class Mixture:
    """Deterministic batches from mix.json: source by weight, then a window of block_size + 1 tokens.

    A source shorter than block_size + 1 tokens is read cyclically: its file is a sequence of whole
    `bos ... eos` documents, so wrapping joins an eos to a bos exactly as packing does, and the source
    appears several times in one window (it is repeated anyway: see its epochs in mix.json). Excluding
    such sources would drop the low tiers the paper oversamples (74 of the demo's 665 sampled sources
    are shorter than 257 tokens); raising would stop the demo.
    """

    def __init__(self, mix_json, block_size: int, seed: int = 0):
        mix_json = Path(mix_json)
        if not mix_json.is_file():
            raise MixError(f"mix file {mix_json} not found (write it with mix.py)")
        try:
            doc = json.loads(mix_json.read_text())
            self.sources, self.tokenizer = doc["sources"], doc["tokenizer"]
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            raise MixError(f"{mix_json} is not a mix.json of mix.py ({type(e).__name__}: {e})") from None
        self.block_size, self.seed = int(block_size), int(seed)
        base = mix_json.resolve().parent
        self._bins = [base / s["bin"] for s in self.sources]
        self._val_bins = [base / s["val_bin"] for s in self.sources]
        self._check_against_index(base, mix_json)
        for s, b, v in zip(self.sources, self._bins, self._val_bins):
            check_size(b, s["n_tokens"], f"{mix_json}: source {s['name']!r}")
            check_size(v, s["val_tokens"], f"{mix_json}: source {s['name']!r} (validation)")
        weights = np.array([s["weight"] for s in self.sources], dtype=np.float64)
        if (weights < 0).any() or not weights.sum() > 0:
            raise MixError(f"{mix_json}: weights must be >= 0 and not all zero")
        for s, w in zip(self.sources, weights):
            if w > 0 and s["n_tokens"] == 0:
                raise MixError(f"{mix_json}: source {s['name']!r} has weight {w} but no tokens")
        self._active = np.flatnonzero(weights > 0)  # only these are ever sampled
        cum = np.cumsum(weights[self._active])
        self._cdf = cum / cum[-1]
        self._n_tokens = np.array([s["n_tokens"] for s in self.sources], dtype=np.int64)
        self._train: list[np.ndarray | None] = [None] * len(self.sources)  # opened on first use
        # prepare_mala.py keeps a copy of its tokenizer in every data dir (read_index checked it)
        self.tokenizer_file = base / self.sources[0]["data_dir"] / self.tokenizer["file"]

    def _check_against_index(self, base: Path, mix_json: Path) -> None:
        """mix.json copies n_tokens / sha256 from index.json: a re-prepared data dir makes it stale."""
        for data_dir in sorted({s["data_dir"] for s in self.sources}):
            index_path = base / data_dir / "index.json"
            index = read_index(base / data_dir)
            if index["tokenizer"]["sha256"] != self.tokenizer["sha256"]:
                raise MixError(f"{mix_json}: the tokenizer of {index_path} changed since mix.py ran; "
                               "re-run mix.py")
            for s in (s for s in self.sources if s["data_dir"] == data_dir):
                entry = index["sources"].get(s["name"])
                if entry is None or entry["n_tokens"] != s["n_tokens"] or entry.get("sha256") != s["sha256"]:
                    raise MixError(f"{mix_json}: source {s['name']!r} differs from {index_path} (re-prepared "
                                   f"after mixing?); re-run mix.py")

    def _tokens(self, k: int) -> np.ndarray:
        arr = self._train[k]
        if arr is None:
            arr = self._train[k] = _open_tokens(self._bins[k], self.sources[k]["n_tokens"])
        return arr

    def windows(self, step: int, g: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(source index, start offset) of global sequences g at this step."""
        u = uniform(self.seed, step, g, 0)
        k = self._active[np.minimum(np.searchsorted(self._cdf, u, side="right"), len(self._active) - 1)]
        n = self._n_tokens[k]
        choices = np.where(n >= self.block_size + 1, n - self.block_size, n)
        start = np.minimum((uniform(self.seed, step, g, 1) * choices).astype(np.int64), choices - 1)
        return k, start

    def get_batch(self, step: int, micro_step: int, rank: int, world_size: int, batch_size: int):
        """x, y LongTensors [batch_size, block_size]: global sequences g = (micro_step*world+rank)*batch+i."""
        g0 = (micro_step * world_size + rank) * batch_size
        ks, starts = self.windows(step, np.arange(g0, g0 + batch_size, dtype=np.int64))
        T = self.block_size
        x = torch.empty((batch_size, T), dtype=torch.long)
        y = torch.empty((batch_size, T), dtype=torch.long)
        xn, yn = x.numpy(), y.numpy()
        for i, (k, o) in enumerate(zip(ks.tolist(), starts.tolist())):
            arr = self._tokens(k)
            if len(arr) >= T + 1:
                xn[i] = arr[o:o + T]
                yn[i] = arr[o + 1:o + T + 1]
            else:  # short source: cyclic window (see class docstring)
                w = arr[(o + np.arange(T + 1)) % len(arr)]
                xn[i], yn[i] = w[:-1], w[1:]
        return x, y

    def val_sequences(self, n: int, by: str = "tier") -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """n deterministic validation sequences (x, y) [n, block_size] per tier, source or language, from
        the .val.bin files; the same whatever the seed or the world size, so runs stay comparable.

        Rows go round-robin over the group's sources (each source counts equally, like a macro average
        over languages), each at a hashed offset. A val file shorter than a window is taken whole and
        padded: x with eos, y with -1 (ignored by the loss), so no repeated text is scored.
        """
        if by not in ("tier", "source", "lang"):
            raise MixError(f"val_sequences: by must be 'tier', 'source' or 'lang', got {by!r}")
        groups: dict[str, list[int]] = {}
        for k, s in enumerate(self.sources):
            if s["val_tokens"] > 0:
                keys = {"tier": [s["tier"]], "source": [s["name"]],
                        "lang": list(s["langs"]) if s["kind"] == "mono" else []}[by]
                for key in keys:
                    groups.setdefault(key, []).append(k)
        order = {t: i for i, t in enumerate(TIERS)}
        T, out = self.block_size, {}
        for key in sorted(groups, key=lambda key: (order.get(key, len(TIERS)), key)):
            members = groups[key]
            u = uniform(VAL_SEED, zlib.crc32(key.encode()), np.arange(n, dtype=np.int64), 2)
            x = torch.full((n, T), int(self.tokenizer.get("eos_id", 0)), dtype=torch.long)
            y = torch.full((n, T), -1, dtype=torch.long)
            for r in range(n):
                k = members[r % len(members)]
                arr = _open_tokens(self._val_bins[k], self.sources[k]["val_tokens"])
                o = min(int(u[r] * (len(arr) - T)), len(arr) - T - 1) if len(arr) >= T + 1 else 0
                w = torch.from_numpy(arr[o:o + T + 1].astype(np.int64))
                x[r, :len(w) - 1], y[r, :len(w) - 1] = w[:-1], w[1:]
            out[key] = (x, y)
        return out
