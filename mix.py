"""Resource tiers, Mix 1 / Mix 2, and the deterministic batch sampler.

    python mix.py DATA_DIR... --config config/mix_bi.py --out mix.json [--plot mix.png]

Reads the index.json of each data dir (written by prepare_mala.py), puts every source in a resource
tier by its whitespace-word count (the paper's thresholds), weights it by n_tokens x rate(tier), applies
the per-kind token shares of the paper's Table (Mix 1 / Mix 2), and writes mix.json: one entry per
source with tier, rate, weight, expected tokens and epochs. Prints a per-tier table and optionally
plots raw vs mixed share per tier.

`Mixture(mix_json, block_size, seed)` is the codebase's only batch sampler: the content of global
sequence g at a step is a pure function of (seed, step, g), so resuming needs no loader state and any
number of ranks sees the same global batch.
"""

import argparse
import json
import os
import sys
import zlib
from pathlib import Path

import numpy as np
import torch

# Resource tiers, highest first. Thresholds (minimum whitespace words) reproduce the paper's resource
# table exactly (EMMA-500 Llama 3, arXiv 2506.00469; see PAPER.md): very low is everything under 1M.
TIERS = ("very_high", "high", "medium_high", "medium", "medium_low", "low", "very_low")
PAPER_TIER_THRESHOLDS = {"very_high": 10_000_000_000, "high": 1_000_000_000, "medium_high": 500_000_000,
                         "medium": 100_000_000, "medium_low": 10_000_000, "low": 1_000_000, "very_low": 0}
CONFIG_KEYS = {"tier_thresholds", "tier_rates", "kinds", "kind_shares", "source_rates", "total_tokens",
               "max_epochs_warn"}
# Muennighoff et al. 2023 (Scaling Data-Constrained Language Models): returns of repeated data vanish
# after ~16 epochs, so that is where a warning starts to mean something.
DEFAULT_MAX_EPOCHS_WARN = 16.0
VAL_SEED = 20250531  # validation windows do not depend on the training seed: runs stay comparable


class MixError(ValueError):
    """Bad mix config, data dir or mix.json; the message names the file/key/source."""


# ----------------------------------------------------------------------------- config and data dirs

def load_config(path) -> dict:
    """Execute a mix config (a Python file of constants) and return its validated, completed globals."""
    path = Path(path)
    if not path.is_file():
        raise MixError(f"mix config {path} not found")
    namespace: dict = {}
    exec(compile(path.read_text(), str(path), "exec"), namespace)
    cfg = {k: v for k, v in namespace.items() if not k.startswith("_") and not isinstance(v, type(os))}
    unknown = sorted(set(cfg) - CONFIG_KEYS)
    if unknown:
        raise MixError(f"{path}: unknown key(s) {unknown}; known keys: {sorted(CONFIG_KEYS)}")
    for key in ("tier_rates", "kinds", "total_tokens"):
        if key not in cfg:
            raise MixError(f"{path}: missing required key {key!r}")
    cfg.setdefault("tier_thresholds", dict(PAPER_TIER_THRESHOLDS))
    cfg.setdefault("kind_shares", None)
    cfg.setdefault("source_rates", {})
    cfg.setdefault("max_epochs_warn", DEFAULT_MAX_EPOCHS_WARN)
    validate_config(cfg, str(path))
    return cfg


def validate_config(cfg: dict, where: str = "mix config") -> None:
    for key in ("tier_thresholds", "tier_rates"):
        table = cfg[key]
        for tier in table:
            if tier not in TIERS:
                raise MixError(f"{where}: {key} names tier {tier!r}, which does not exist; tiers: {TIERS}")
        missing = [t for t in TIERS if t not in table]
        if missing:
            raise MixError(f"{where}: {key} lacks tier(s) {missing}")
    th = cfg["tier_thresholds"]
    if th["very_low"] != 0:
        raise MixError(f"{where}: tier_thresholds['very_low'] must be 0 (it is everything below 'low')")
    for upper, lower in zip(TIERS, TIERS[1:]):
        if not th[upper] > th[lower]:
            raise MixError(f"{where}: tier_thresholds must decrease: "
                           f"{upper}={th[upper]} <= {lower}={th[lower]}")
    for tier, rate in cfg["tier_rates"].items():
        if not rate >= 0:
            raise MixError(f"{where}: tier_rates[{tier!r}] = {rate} is negative")
    for name, rate in cfg["source_rates"].items():
        if not rate >= 0:
            raise MixError(f"{where}: source_rates[{name!r}] = {rate} is negative")
    if isinstance(cfg["kinds"], str) or not cfg["kinds"]:
        raise MixError(f"{where}: kinds must be a non-empty list of kinds, e.g. ['bi', 'mono']")
    if cfg["kind_shares"] is not None:
        for kind, share in cfg["kind_shares"].items():
            if kind not in cfg["kinds"]:
                raise MixError(f"{where}: kind_shares names kind {kind!r}, which is not in kinds "
                               f"{cfg['kinds']}")
            if not share >= 0:
                raise MixError(f"{where}: kind_shares[{kind!r}] = {share} is negative")
        missing = [k for k in cfg["kinds"] if k not in cfg["kind_shares"]]
        if missing:
            raise MixError(f"{where}: kinds {missing} have no entry in kind_shares")
    if not cfg["total_tokens"] > 0:
        raise MixError(f"{where}: total_tokens must be positive, got {cfg['total_tokens']}")


def tier_of(n_words: int, thresholds: dict) -> str:
    """The highest tier whose minimum word count n_words reaches (thresholds are inclusive minima)."""
    for tier in TIERS:
        if n_words >= thresholds[tier]:
            return tier
    raise MixError(f"negative word count {n_words}")


def _check_size(path: Path, n_tokens: int, what: str) -> None:
    if not path.is_file():
        raise MixError(f"{what}: {path} does not exist")
    size = path.stat().st_size
    if size != 4 * n_tokens:
        raise MixError(f"{what}: {path} holds {size} bytes = {size / 4:g} uint32 tokens, but index.json says "
                       f"n_tokens = {n_tokens}; re-run prepare_mala.py for this source")


def read_data_dirs(data_dirs) -> tuple[dict, list[dict]]:
    """index.json of each data dir -> (shared tokenizer block, flat list of sources), every file checked."""
    tokenizer, tokenizer_dir, sources, seen = None, None, [], {}
    for data_dir in map(Path, data_dirs):
        index_path = data_dir / "index.json"
        if not index_path.is_file():
            raise MixError(f"data dir {data_dir} has no index.json (prepare_mala.py writes it last; "
                           f"an unfinished or wrong dir?)")
        try:
            index = json.loads(index_path.read_text())
        except json.JSONDecodeError as e:
            raise MixError(f"{index_path}: not valid JSON ({e})") from None
        if index.get("format") != 1 or index.get("dtype") != "uint32":
            raise MixError(f"{index_path}: expected format 1 and dtype uint32, got "
                           f"format={index.get('format')!r} dtype={index.get('dtype')!r}")
        tok = index.get("tokenizer") or {}
        if "sha256" not in tok:
            raise MixError(f"{index_path}: tokenizer block lacks sha256")
        if tokenizer is None:
            tokenizer, tokenizer_dir = tok, data_dir
        elif tok["sha256"] != tokenizer["sha256"]:
            raise MixError(f"data dirs {tokenizer_dir} and {data_dir} use different tokenizers "
                           f"(sha256 {tokenizer['sha256'][:12]}... vs {tok['sha256'][:12]}...)")
        for name, entry in index.get("sources", {}).items():
            if name in seen:
                raise MixError(f"source {name!r} is in both {seen[name]} and {data_dir}; "
                               "names must be unique")
            seen[name] = data_dir
            try:
                src = {"name": name, "data_dir": data_dir, "kind": entry["kind"],
                       "langs": list(entry["langs"]),
                       "n_tokens": int(entry["n_tokens"]), "n_words": int(entry["n_words"]),
                       "val_tokens": int(entry["val"]["n_tokens"]), "sha256": entry.get("sha256"),
                       "bin": data_dir / entry["bin"], "val_bin": data_dir / entry["val_bin"]}
            except (KeyError, TypeError) as e:
                raise MixError(f"{index_path}: source {name!r} lacks field {e}") from None
            _check_size(src["bin"], src["n_tokens"], f"source {name!r}")
            _check_size(src["val_bin"], src["val_tokens"], f"source {name!r} (validation)")
            sources.append(src)
    if tokenizer is None:
        raise MixError("no data dirs given")
    return tokenizer, sources


# ----------------------------------------------------------------------------- the mix

def compute_mix(sources: list[dict], cfg: dict) -> tuple[list[dict], list[str]]:
    """Tier, rate, weight, expected tokens and epochs per source; returns (entries, notes to print).

    weight ~ n_tokens x rate (rate = source_rates[name], else tier_rates[tier]; 0 for kinds not in the
    mix). With kind_shares, the weights inside each kind are scaled so the kind gets its token share;
    kinds without any sampled source are dropped and the remaining shares renormalised.
    """
    names = {s["name"] for s in sources}
    for name in cfg["source_rates"]:
        if name not in names:
            raise MixError(f"mix config: source_rates names source {name!r}, "
                           "which is in none of the data dirs")
    entries, notes = [], []
    for s in sources:
        tier = tier_of(s["n_words"], cfg["tier_thresholds"])
        rate = float(cfg["source_rates"].get(s["name"], cfg["tier_rates"][tier]))
        if s["kind"] not in cfg["kinds"]:
            rate = 0.0
        entries.append({**s, "tier": tier, "rate": rate, "weight": s["n_tokens"] * rate})
    raw_total = sum(e["weight"] for e in entries)
    if raw_total <= 0:
        raise MixError(f"all weights are zero: no source of kinds {cfg['kinds']} "
                       "has tokens and a positive rate")
    shares = cfg["kind_shares"]
    if shares is None:
        for e in entries:
            e["weight"] /= raw_total
    else:
        per_kind = {k: sum(e["weight"] for e in entries if e["kind"] == k) for k in shares}
        live = {k: shares[k] for k in shares if per_kind[k] > 0 and shares[k] > 0}
        dropped = [k for k in shares if k not in live and shares[k] > 0]
        if not live:
            raise MixError(f"all weights are zero: no kind of kind_shares {shares} has sampled sources")
        norm = sum(live.values())
        if dropped:
            notes.append(f"note: kinds {dropped} have no sampled sources in these data dirs: dropped, shares "
                         "renormalised to " + ", ".join(f"{k} {v / norm:.1%}" for k, v in live.items()))
        for e in entries:
            k = e["kind"]
            e["weight"] = e["weight"] / per_kind[k] * live[k] / norm if k in live else 0.0
    for e in entries:
        e["expected_tokens"] = e["weight"] * cfg["total_tokens"]
        e["epochs"] = e["expected_tokens"] / e["n_tokens"] if e["n_tokens"] else 0.0
    over = sorted((e for e in entries if e["epochs"] > cfg["max_epochs_warn"]), key=lambda e: -e["epochs"])
    if over:
        notes.append(f"warning: {len(over)} source(s) would be repeated more than max_epochs_warn = "
                     f"{cfg['max_epochs_warn']:g} epochs, up to {over[0]['epochs']:.1f}: "
                     + ", ".join(f"{e['name']} ({e['epochs']:.1f})" for e in over[:8])
                     + (" ..." if len(over) > 8 else ""))
    return entries, notes


def tier_table(entries: list[dict], kinds) -> list[dict]:
    """Per-tier rows over the sources of the mix's kinds: sources, raw/sampled tokens, shares, max epochs."""
    included = [e for e in entries if e["kind"] in kinds]
    raw_total = sum(e["n_tokens"] for e in included) or 1
    sampled_total = sum(e["expected_tokens"] for e in included) or 1
    rows = []
    for tier in TIERS:
        group = [e for e in included if e["tier"] == tier]
        raw = sum(e["n_tokens"] for e in group)
        sampled = sum(e["expected_tokens"] for e in group)
        rows.append({"tier": tier, "sources": len(group), "raw_tokens": raw, "raw_share": raw / raw_total,
                     "sampled_tokens": sampled, "share": sampled / sampled_total,
                     "max_epochs": max((e["epochs"] for e in group), default=0.0)})
    return rows


def _human(x: float) -> str:
    for unit, scale in (("T", 1e12), ("B", 1e9), ("M", 1e6), ("k", 1e3)):
        if abs(x) >= scale:
            return f"{x / scale:.1f}{unit}"
    return f"{x:.0f}"


def format_table(rows: list[dict]) -> str:
    head = f"{'tier':<12} {'sources':>7} {'raw tokens':>10} {'raw share':>9} {'sampled':>9} {'share':>7} " \
           f"{'max epochs':>10}"
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(f"{r['tier']:<12} {r['sources']:>7} {_human(r['raw_tokens']):>10} "
                     f"{r['raw_share']:>9.1%} "
                     f"{_human(r['sampled_tokens']):>9} {r['share']:>7.1%} {r['max_epochs']:>10.2f}")
    total = {k: sum(r[k] for r in rows) for k in ("sources", "raw_tokens", "sampled_tokens")}
    lines.append(f"{'total':<12} {total['sources']:>7} {_human(total['raw_tokens']):>10} {'':>9} "
                 f"{_human(total['sampled_tokens']):>9}")
    return "\n".join(lines)


def build_mix(data_dirs, cfg: dict, out_path) -> tuple[dict, list[str]]:
    """The mix.json document for these data dirs (paths relative to out_path's folder), plus notes."""
    tokenizer, sources = read_data_dirs(data_dirs)
    entries, notes = compute_mix(sources, cfg)
    base = Path(out_path).resolve().parent
    rel = lambda p: os.path.relpath(Path(p).resolve(), base)
    keys = ("name", "data_dir", "kind", "langs", "tier", "rate", "weight", "n_tokens", "n_words",
            "val_tokens", "expected_tokens", "epochs", "bin", "val_bin", "sha256")
    paths = ("data_dir", "bin", "val_bin")
    out_sources = [{k: rel(e[k]) if k in paths else e[k] for k in keys} for e in entries]
    config = {k: cfg[k] for k in sorted(CONFIG_KEYS)}
    doc = {"format": 1, "config": config, "tokenizer": tokenizer, "total_tokens": cfg["total_tokens"],
           "tiers": tier_table(entries, cfg["kinds"]), "sources": out_sources}
    return doc, notes


def write_atomic(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def plot_mix(rows: list[dict], path: Path, title: str) -> bool:
    """Bar chart of raw vs mixed token share per tier; False (and nothing written) without matplotlib."""
    try:
        import matplotlib
        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    xs = np.arange(len(rows))
    fig, ax = plt.subplots(figsize=(8, 4))
    ax.bar(xs - 0.2, [100 * r["raw_share"] for r in rows], 0.4, label="raw data")
    ax.bar(xs + 0.2, [100 * r["share"] for r in rows], 0.4, label="mix")
    ax.set_xticks(xs, [r["tier"].replace("_", " ") for r in rows])
    ax.set_ylabel("share of tokens (%)")
    ax.set_title(title)
    ax.legend()
    fig.tight_layout()
    tmp = path.with_name(path.name + ".tmp")
    fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
    os.replace(tmp, path)
    return True


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data_dirs", nargs="+", help="folders with index.json (prepare_mala.py output)")
    parser.add_argument("--config", required=True, help="mix config, e.g. config/mix_bi.py")
    parser.add_argument("--out", required=True, help="mix.json to write")
    parser.add_argument("--plot", help="PNG of raw vs mixed share per tier (needs matplotlib)")
    parser.add_argument("--total-tokens", type=float, help="override the config's total_tokens")
    args = parser.parse_args(argv)
    try:
        cfg = load_config(args.config)
        if args.total_tokens is not None:
            cfg["total_tokens"] = int(args.total_tokens)
            validate_config(cfg, "--total-tokens")
        doc, notes = build_mix(args.data_dirs, cfg, args.out)
    except MixError as e:
        raise SystemExit(f"mix.py: error: {e}") from None
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(out, (json.dumps(doc, indent=1) + "\n").encode())
    print(f"{args.config}: {len(doc['sources'])} sources, total {_human(doc['total_tokens'])} tokens, "
          f"kinds {cfg['kinds']}")
    print(format_table(doc["tiers"]))
    kinds = sorted({s["kind"] for s in doc["sources"]})
    print("kind shares: " + ", ".join(f"{k} {sum(s['weight'] for s in doc['sources'] if s['kind'] == k):.1%}"
                                      for k in kinds))
    for note in notes:
        print(note)
    print(f"wrote {out}")
    if args.plot:
        if plot_mix(doc["tiers"], Path(args.plot), f"{Path(args.config).stem}: share per tier"):
            print(f"wrote {args.plot}")
        else:
            print("note: matplotlib is not installed: no plot (the table above has the same numbers)")


# ----------------------------------------------------------------------------- the sampler

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
    are shorter than 257 tokens); raising would stop the demo. n_short counts them.
    """

    def __init__(self, mix_json, block_size: int, seed: int = 0):
        mix_json = Path(mix_json)
        if not mix_json.is_file():
            raise MixError(f"mix file {mix_json} not found (write it with mix.py)")
        try:
            doc = json.loads(mix_json.read_text())
            self.sources: list[dict] = doc["sources"]
            self.tokenizer: dict = doc["tokenizer"]
            self.total_tokens = doc["total_tokens"]
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            raise MixError(f"{mix_json} is not a mix.json of mix.py ({type(e).__name__}: {e})") from None
        self.block_size, self.seed = int(block_size), int(seed)
        self.config = doc.get("config", {})
        base = mix_json.resolve().parent
        self._bins = [base / s["bin"] for s in self.sources]
        self._val_bins = [base / s["val_bin"] for s in self.sources]
        self._check_against_index(base, mix_json)
        for s, b, v in zip(self.sources, self._bins, self._val_bins):
            _check_size(b, s["n_tokens"], f"{mix_json}: source {s['name']!r}")
            _check_size(v, s["val_tokens"], f"{mix_json}: source {s['name']!r} (validation)")
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
        self.n_short = int((self._n_tokens[self._active] < self.block_size + 1).sum())

    def _check_against_index(self, base: Path, mix_json: Path) -> None:
        """mix.json copies n_tokens / sha256 from index.json: a re-prepared data dir makes it stale."""
        for data_dir in sorted({s["data_dir"] for s in self.sources}):
            index_path = base / data_dir / "index.json"
            if not index_path.is_file():
                raise MixError(f"{mix_json}: data dir {base / data_dir} has no index.json")
            index = json.loads(index_path.read_text())
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

    def val_batches(self, batch_size: int, n_batches: int, by: str = "tier") -> dict[str, list[tuple]]:
        """Deterministic (x, y) batches from the .val.bin of all sources, grouped by tier, source or lang.

        Rows go round-robin over the group's sources (each source counts equally, like a macro average
        over languages), each at a hashed offset. A val file shorter than a window is taken whole and
        padded: x with eos, y with -1 (ignored by the loss), so no repeated text is scored.
        """
        groups: dict[str, list[int]] = {}
        for k, s in enumerate(self.sources):
            if s["val_tokens"] == 0:
                continue
            if by == "tier":
                keys = [s["tier"]]
            elif by == "source":
                keys = [s["name"]]
            elif by == "lang":
                keys = list(s["langs"]) if s["kind"] == "mono" else []
            else:
                raise MixError(f"val_batches: by must be 'tier', 'source' or 'lang', got {by!r}")
            for key in keys:
                groups.setdefault(key, []).append(k)
        order = {t: i for i, t in enumerate(TIERS)}
        pad = int(self.tokenizer.get("eos_id", 0))
        T = self.block_size
        out, val_tokens = {}, {}
        for key in sorted(groups, key=lambda key: (order.get(key, len(TIERS)), key)):
            members = groups[key]
            rows = np.arange(batch_size * n_batches, dtype=np.int64)
            u = uniform(VAL_SEED, zlib.crc32(key.encode()), rows, 2)
            batches = []
            for b in range(n_batches):
                x = torch.full((batch_size, T), pad, dtype=torch.long)
                y = torch.full((batch_size, T), -1, dtype=torch.long)
                for i in range(batch_size):
                    r = b * batch_size + i
                    k = members[r % len(members)]
                    if k not in val_tokens:
                        val_tokens[k] = _open_tokens(self._val_bins[k], self.sources[k]["val_tokens"])
                    arr = val_tokens[k]
                    if len(arr) >= T + 1:
                        o = min(int(u[r] * (len(arr) - T)), len(arr) - T - 1)
                        w = arr[o:o + T + 1]
                    else:
                        w = arr
                    x[i, :len(w) - 1] = torch.from_numpy(w[:-1].astype(np.int64))
                    y[i, :len(w) - 1] = torch.from_numpy(w[1:].astype(np.int64))
                batches.append((x, y))
            out[key] = batches
        return out


if __name__ == "__main__":
    main(sys.argv[1:])
