"""Resource tiers and mixes: Mix 1 (with bitext) and Mix 2 (without), as mix.json.

    python mix.py DATA_DIR... --config config/mix_bi.py --out mix.json [--plot mix.png]

Reads the index.json of each data dir (written by prepare_mala.py; an unfinished prepare is refused),
puts every source in a resource tier by its whitespace-word count, weights it by n_tokens x rate(tier),
applies the per-kind token shares of the mix, and writes mix.json: one entry per source with tier, rate,
weight, expected tokens and epochs. Prints a per-tier table and optionally plots raw vs mixed share per
tier. docs/method.md says which thresholds, rates and shares are the paper's and which are ours.

sampler.py reads mix.json during training (Mixture).
"""

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

from common import HelpFormatter, read_config_file, write_atomic
from prepare_mala import InputError
from prepare_mala import read_index as read_prepared_index

# Resource tiers, highest first. Thresholds (minimum whitespace words) reproduce the paper's resource
# table (docs/method.md): very low is everything under 1M.
TIERS = ("very_high", "high", "medium_high", "medium", "medium_low", "low", "very_low")
PAPER_TIER_THRESHOLDS = {"very_high": 10_000_000_000, "high": 1_000_000_000, "medium_high": 500_000_000,
                         "medium": 100_000_000, "medium_low": 10_000_000, "low": 1_000_000, "very_low": 0}
CONFIG_KEYS = {"tier_thresholds", "tier_rates", "kinds", "kind_shares", "source_rates", "total_tokens",
               "max_epochs_warn", "replay_sources", "replay_share"}
# Muennighoff et al. 2023 (Scaling Data-Constrained Language Models): returns of repeated data vanish
# after ~16 epochs, so that is where a warning starts to mean something.
DEFAULT_MAX_EPOCHS_WARN = 16.0


class MixError(ValueError):
    """Bad mix config, data dir or mix.json; the message names the file/key/source."""


# ----------------------------------------------------------------------------- config and data dirs

def load_config(path) -> dict:
    """A mix config, checked and completed with the defaults."""
    try:
        cfg = read_config_file(path)
    except ValueError as e:
        raise MixError(str(e)) from None
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
    cfg.setdefault("replay_sources", [])
    cfg.setdefault("replay_share", 0.0)
    validate_config(cfg, str(path))
    return cfg


def validate_config(cfg: dict, where: str = "mix config") -> None:
    def check(ok: bool, message: str):
        if not ok:
            raise MixError(f"{where}: {message}")

    for key in ("tier_thresholds", "tier_rates"):
        for tier in cfg[key]:
            check(tier in TIERS, f"{key} names tier {tier!r}, which does not exist; tiers: {TIERS}")
        missing = [t for t in TIERS if t not in cfg[key]]
        check(not missing, f"{key} lacks tier(s) {missing}")
    th = cfg["tier_thresholds"]
    check(th["very_low"] == 0, "tier_thresholds['very_low'] must be 0 (it is everything below 'low')")
    for upper, lower in zip(TIERS, TIERS[1:]):
        check(th[upper] > th[lower], f"tier_thresholds must decrease: {upper}={th[upper]} <= "
                                     f"{lower}={th[lower]}")
    for key in ("tier_rates", "source_rates", "kind_shares"):
        for name, value in (cfg[key] or {}).items():
            check(value >= 0, f"{key}[{name!r}] = {value} is negative")
    check(not isinstance(cfg["kinds"], str) and cfg["kinds"], "kinds must be a non-empty list of kinds")
    if cfg["kind_shares"] is not None:
        for kind in cfg["kind_shares"]:
            check(kind in cfg["kinds"], f"kind_shares names kind {kind!r}, not in kinds {cfg['kinds']}")
        missing = [k for k in cfg["kinds"] if k not in cfg["kind_shares"]]
        check(not missing, f"kinds {missing} have no entry in kind_shares")
    check(cfg["total_tokens"] > 0, f"total_tokens must be positive, got {cfg['total_tokens']}")
    check(0 <= cfg["replay_share"] < 1, f"replay_share must be in [0, 1), got {cfg['replay_share']}")
    check(not cfg["replay_share"] or cfg["replay_sources"], "replay_share > 0 needs replay_sources")


def tier_of(n_words: int, thresholds: dict) -> str:
    """The highest tier whose minimum word count n_words reaches (thresholds are inclusive minima)."""
    for tier in TIERS:
        if n_words >= thresholds[tier]:
            return tier
    raise MixError(f"negative word count {n_words}")


def check_size(path: Path, n_tokens: int, what: str) -> None:
    if not path.is_file():
        raise MixError(f"{what}: {path} does not exist")
    size = path.stat().st_size
    if size != 4 * n_tokens:
        raise MixError(f"{what}: {path} holds {size} bytes = {size / 4:g} uint32 tokens, but index.json says "
                       f"n_tokens = {n_tokens}; re-run prepare_mala.py for this source")


def read_index(data_dir: Path) -> dict:
    try:  # prepare_mala.py refuses an unfinished prepare
        return read_prepared_index(data_dir)
    except InputError as e:
        raise MixError(str(e)) from None


def read_data_dirs(data_dirs) -> tuple[dict, list[dict]]:
    """index.json of each data dir -> (shared tokenizer block, flat list of sources), every file checked."""
    tokenizer, tokenizer_dir, sources, seen = None, None, [], {}
    for data_dir in map(Path, data_dirs):
        index = read_index(data_dir)
        index_path, tok = data_dir / "index.json", index["tokenizer"]
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
            check_size(src["bin"], src["n_tokens"], f"source {name!r}")
            check_size(src["val_bin"], src["val_tokens"], f"source {name!r} (validation)")
            sources.append(src)
    if tokenizer is None:
        raise MixError("no data dirs given")
    return tokenizer, sources


# ----------------------------------------------------------------------------- the mix

def compute_mix(sources: list[dict], cfg: dict) -> tuple[list[dict], list[str]]:
    """Tier, rate, weight, expected tokens and epochs per source; returns (entries, notes to print).

    weight ~ n_tokens x rate (rate = source_rates[name], else tier_rates[tier]; 0 for kinds not in the
    mix). With kind_shares, the weights inside each kind are scaled so the kind gets its token share;
    kinds without any sampled source are dropped and the remaining shares renormalised. replay_sources get
    replay_share of the tokens on top, by their sizes (of any kind); the mix above 1 - replay_share.
    """
    names, replay, replay_share = {s["name"] for s in sources}, set(cfg.get("replay_sources", [])), \
        cfg.get("replay_share", 0.0)
    for key, listed in (("source_rates", cfg["source_rates"]), ("replay_sources", replay)):
        for name in listed:
            if name not in names:
                raise MixError(f"mix config: {key} names source {name!r}, which is in none of the data dirs")
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
    # replay (the data a continued model was trained on, against forgetting): replay_share of the tokens
    # go to the replay sources by their sizes, whatever the mix's kinds; the mix above gets the rest
    replay_tokens = sum(e["n_tokens"] for e in entries if e["name"] in replay)
    for e in entries:
        e["weight"] = (1 - replay_share) * e["weight"] + (
            replay_share * e["n_tokens"] / replay_tokens if e["name"] in replay else 0.0)
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
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
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
    write_atomic(out, json.dumps(doc, indent=1) + "\n")
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


if __name__ == "__main__":
    main(sys.argv[1:])
