"""mix.py: tiers, weights, kind shares, the deterministic sampler, validation and the CLI.

Synthetic data dirs: source k's train file holds k * 1e6 + position and its val file
k * 1e6 + 500_000 + position, so every sampled token says which file and offset it came from.
"""

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import mix
from cldr_corpus import BASE_LANGUAGES
from mix import PAPER_TIER_THRESHOLDS, TIERS, MixError
from sampler import Mixture

ROOT = Path(__file__).resolve().parent.parent
VAL_BASE = 500_000
# demo-scale thresholds (paper / 1e5) so small files land in every tier
THRESHOLDS = {"very_high": 100_000, "high": 10_000, "medium_high": 5_000, "medium": 1_000, "medium_low": 100,
              "low": 10, "very_low": 0}
RATES = {"very_high": 1.0, "high": 1.0, "medium_high": 2.0, "medium": 5.0, "medium_low": 10.0, "low": 20.0,
         "very_low": 50.0}
# name: (kind, n_tokens, n_words, val_tokens)
SOURCES = {
    "eng_Latn-fra_Latn": ("bi", 50_000, 20_000, 3_000),    # high
    "eng_Latn-wol_Latn": ("bi", 3_000, 1_500, 40),         # medium
    "eng_Latn-fuv_Latn": ("bi", 800, 50, 0),               # low, no val data
    "fra_Latn": ("mono", 40_000, 12_000, 2_000),           # high
    "wol_Latn": ("mono", 5_000, 600, 300),                 # medium_low
    "fuv_Latn": ("mono", 10, 5, 5),                        # very_low, shorter than a window
}


def make_data_dir(root: Path, sources: dict, tokenizer: bytes = b"tokenizer A\n", first_id: int = 0):
    """Write <name>.bin / .val.bin, the tokenizer copy and index.json exactly per the contract (as a finished
    prepare_mala.py run leaves them); returns name -> file id k."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "tokenizer.model").write_bytes(tokenizer)
    index = {"format": 2, "dtype": "uint32", "complete": True, "pending": [], "command": "prepare_mala.py",
             "tokenizer": {"file": "tokenizer.model", "sha256": hashlib.sha256(tokenizer).hexdigest(),
                           "n_vocab": 8448, "bos_id": 8192, "eos_id": 8193},
             "sources": {}}
    ids = {}
    for k, (name, (kind, n_tokens, n_words, val_tokens)) in enumerate(sources.items(), start=first_id):
        ids[name] = k
        (k * 1_000_000 + np.arange(n_tokens, dtype=np.uint32)).astype(np.uint32).tofile(root / f"{name}.bin")
        (k * 1_000_000 + VAL_BASE + np.arange(val_tokens)).astype(np.uint32).tofile(root / f"{name}.val.bin")
        langs = name.split("-")
        counts = {"n_docs": 3, "n_pairs": 30 if kind == "bi" else 0, "n_lines": 0 if kind == "bi" else 30}
        index["sources"][name] = {
            "kind": kind, "langs": langs, "bin": f"{name}.bin", "val_bin": f"{name}.val.bin", **counts,
            "n_tokens": n_tokens, "n_words": n_words, "sha256": f"sha-{name}",
            "val": {**counts, "n_tokens": val_tokens, "n_words": val_tokens // 3, "sha256": f"val-{name}"},
            "dropped": {"empty": 0, "bad_utf8": 0, "malformed": 0, "script_mismatch": 0, "too_long": 0,
                        "duplicate": 0}}
    (root / "index.json").write_text(json.dumps(index))
    return ids


def write_config(path: Path, **overrides) -> Path:
    cfg = {"tier_thresholds": THRESHOLDS, "tier_rates": RATES, "kinds": ["bi", "mono"], "kind_shares": None,
           "source_rates": {}, "total_tokens": 1_000_000, "max_epochs_warn": 16}
    cfg.update(overrides)
    path.write_text("".join(f"{k} = {v!r}\n" for k, v in cfg.items()))
    return path


def make_mix(tmp_path: Path, name="mix", dirs=None, **overrides) -> Path:
    cfg = mix.load_config(write_config(tmp_path / f"{name}_config.py", **overrides))
    out = tmp_path / f"{name}.json"
    doc, _ = mix.build_mix(dirs or [tmp_path / "data"], cfg, out)
    out.write_text(json.dumps(doc))
    return out


@pytest.fixture
def data(tmp_path):
    return make_data_dir(tmp_path / "data", SOURCES)


# ----------------------------------------------------------------------------- tiers and weights

@pytest.mark.parametrize("tier", TIERS[:-1])
def test_tier_at_exact_thresholds(tier):
    th = PAPER_TIER_THRESHOLDS[tier]
    below = TIERS[TIERS.index(tier) + 1]
    assert mix.tier_of(th, PAPER_TIER_THRESHOLDS) == tier
    assert mix.tier_of(th - 1, PAPER_TIER_THRESHOLDS) == below
    assert mix.tier_of(0, PAPER_TIER_THRESHOLDS) == "very_low"
    assert mix.tier_of(10**12, PAPER_TIER_THRESHOLDS) == "very_high"


def test_weights_expected_tokens_and_epochs():
    src = lambda name, kind, n_tokens, n_words: {"name": name, "kind": kind, "n_tokens": n_tokens,
                                                 "n_words": n_words}
    sources = [src("a", "bi", 1000, 20_000), src("b", "bi", 100, 50), src("c", "mono", 300, 6_000),
               src("d", "code", 500, 20_000)]
    cfg = {"tier_thresholds": THRESHOLDS, "tier_rates": RATES, "kinds": ["bi", "mono"], "kind_shares": None,
           "source_rates": {"c": 0.5}, "total_tokens": 6300, "max_epochs_warn": 16}
    entries, notes = mix.compute_mix(sources, cfg)
    e = {x["name"]: x for x in entries}
    assert [e[n]["tier"] for n in "abcd"] == ["high", "low", "medium_high", "high"]
    # raw weights: a 1000 x 1, b 100 x 20 (low), c 300 x 0.5 (override), d excluded kind -> 0
    assert [e[n]["rate"] for n in "abcd"] == [1.0, 20.0, 0.5, 0.0]
    total = 1000 + 2000 + 150
    for n, raw in (("a", 1000), ("b", 2000), ("c", 150), ("d", 0)):
        assert e[n]["weight"] == pytest.approx(raw / total)
        assert e[n]["expected_tokens"] == pytest.approx(raw / total * 6300)
    assert e["a"]["epochs"] == pytest.approx(2.0) and e["b"]["epochs"] == pytest.approx(40.0)
    assert e["c"]["epochs"] == pytest.approx(1.0) and e["d"]["epochs"] == 0
    assert sum(x["weight"] for x in entries) == pytest.approx(1.0)
    assert len(notes) == 1 and "1 source(s)" in notes[0] and "b (40.0)" in notes[0]


def test_replay_takes_its_share_in_either_mix():
    """The replay sources (a continued model's own data) get replay_share of the tokens by their sizes on
    top of their place in the mix, whatever its kinds: Mix 2 differs from Mix 1 by the bitext alone."""
    sources = [{"name": n, "kind": k, "n_tokens": t, "n_words": w} for n, (k, t, w, _) in SOURCES.items()]
    replay = ["eng_Latn-fra_Latn", "fra_Latn"]  # a bi and a mono source
    cfg = {"tier_thresholds": THRESHOLDS, "tier_rates": RATES, "kind_shares": None, "source_rates": {},
           "total_tokens": 1000, "max_epochs_warn": 16, "replay_sources": replay, "replay_share": 0.2}
    plain = {kinds[0]: {e["name"]: e["weight"] for e in mix.compute_mix(sources, {
        **cfg, "kinds": kinds, "replay_share": 0.0})[0]} for kinds in (["bi", "mono"], ["mono"])}
    mixes = {kinds[0]: {e["name"]: e["weight"] for e in mix.compute_mix(sources, {**cfg, "kinds": kinds})[0]}
             for kinds in (["bi", "mono"], ["mono"])}
    for kind, weights in mixes.items():
        assert sum(weights.values()) == pytest.approx(1.0)
        for name, w in weights.items():
            on_top = 0.2 * {"eng_Latn-fra_Latn": 50_000, "fra_Latn": 40_000}.get(name, 0) / 90_000
            assert w == pytest.approx(0.8 * plain[kind][name] + on_top), (kind, name)
    assert mixes["mono"]["eng_Latn-fra_Latn"] == pytest.approx(0.2 * 50_000 / 90_000)  # bitext as replay only
    assert mixes["mono"]["eng_Latn-wol_Latn"] == 0 < mixes["bi"]["eng_Latn-wol_Latn"]
    with pytest.raises(MixError, match="replay_sources names source 'xyz'"):
        mix.compute_mix(sources, {**cfg, "kinds": ["mono"], "replay_sources": ["xyz"]})


def test_kind_shares_mix1_and_mix2_from_configs():
    sources = [{"name": n, "kind": k, "n_tokens": t, "n_words": w} for n, (k, t, w, _) in SOURCES.items()]
    mix1 = mix.load_config(ROOT / "config" / "mix_bi.py") | {"tier_thresholds": THRESHOLDS}
    entries, notes = mix.compute_mix(sources, mix1)
    share = lambda kind: sum(e["weight"] for e in entries if e["kind"] == kind)
    assert share("bi") == pytest.approx(0.323 / (0.323 + 0.263))
    assert share("mono") == pytest.approx(0.263 / (0.323 + 0.263))
    assert "['code', 'papers', 'instructions', 'books']" in notes[0] and "bi 55.1%" in notes[0]
    # inside a kind, weights stay proportional to n_tokens x rate
    e = {x["name"]: x for x in entries}
    assert (e["eng_Latn-fra_Latn"]["tier"], e["eng_Latn-wol_Latn"]["tier"], e["wol_Latn"]["tier"]) == (
        "high", "medium", "medium_low")  # 20,000 / 1,500 / 600 words
    assert e["wol_Latn"]["weight"] / e["fra_Latn"]["weight"] == pytest.approx(5_000 * 10.0 / (40_000 * 1.0))
    mix2 = mix.load_config(ROOT / "config" / "mix_mono.py") | {"tier_thresholds": THRESHOLDS}
    entries, _ = mix.compute_mix(sources, mix2)
    assert share("bi") == 0 and share("mono") == pytest.approx(1.0)
    assert all(e["rate"] == 0 for e in entries if e["kind"] == "bi")


def test_config_files():
    paper = {n: mix.load_config(ROOT / "config" / f"mix_{n}.py") for n in ("bi", "mono")}
    demo = {n: mix.load_config(ROOT / "config" / f"mix_demo_{n}.py") for n in ("base", "bi", "mono")}
    assert paper["bi"]["total_tokens"] == 671_000_000_000 and paper["mono"]["total_tokens"] == 419_000_000_000
    assert paper["bi"]["tier_thresholds"] == PAPER_TIER_THRESHOLDS == paper["mono"]["tier_thresholds"]
    assert sum(paper["bi"]["kind_shares"].values()) == pytest.approx(1.0)
    assert "bi" not in paper["mono"]["kinds"]
    assert set(paper["bi"]["kinds"]) - {"bi"} == set(paper["mono"]["kinds"])
    # Mix 2 is Mix 1 without bilingual data: the paper's Mix 2 column is Mix 1's renormalised
    rest = 1 - paper["bi"]["kind_shares"]["bi"]
    for kind, share in paper["mono"]["kind_shares"].items():
        assert share == pytest.approx(paper["bi"]["kind_shares"][kind] / rest, abs=1e-3)
    rates = paper["bi"]["tier_rates"]
    assert 20 <= rates["low"] / rates["high"] <= 50 and 20 <= rates["very_low"] / rates["high"] <= 50
    for cfg in demo.values():  # the demo's own thresholds, in the paper's order
        assert list(cfg["tier_thresholds"]) == list(PAPER_TIER_THRESHOLDS)
        assert cfg["tier_thresholds"] == demo["base"]["tier_thresholds"]
    assert demo["bi"]["tier_rates"] == rates == demo["mono"]["tier_rates"]
    # the demo's base model knows six big languages: no tier is sampled, only their mono and bitext with
    # English; Mix 1 and Mix 2 replay exactly those
    assert not any(demo["base"]["tier_rates"].values())
    base_langs = {lang for name in demo["base"]["source_rates"] for lang in name.split("-")}
    assert base_langs == set(BASE_LANGUAGES) and len(demo["base"]["source_rates"]) == 6 + 5
    assert set(demo["bi"]["replay_sources"]) == set(demo["base"]["source_rates"]) == set(
        demo["mono"]["replay_sources"]) and demo["bi"]["replay_share"] == demo["mono"]["replay_share"] > 0


# ----------------------------------------------------------------------------- the sampler

def _source_and_position(x: torch.Tensor):
    return (x // 1_000_000).numpy(), (x % 1_000_000).numpy()


def test_realised_shares_and_windows_inside_one_file(tmp_path, data):
    T = 16
    m = Mixture(make_mix(tmp_path), block_size=T, seed=1)
    names = [s["name"] for s in m.sources]
    counts = np.zeros(len(names))
    for step in range(200):
        x, y = m.get_batch(step, 0, 0, 1, 200)
        assert x.shape == y.shape == (200, T) and x.dtype == y.dtype == torch.long
        assert torch.equal(x[:, 1:], y[:, :-1])
        window = torch.cat([x, y[:, -1:]], dim=1)
        src, pos = _source_and_position(window)
        assert (src == src[:, :1]).all(), "a window crosses files"
        for row_src, row_pos in zip(src[:, 0], pos):
            name = names[data_index := [data[n] for n in names].index(row_src)]
            n = SOURCES[name][1]
            assert (row_pos == (row_pos[0] + np.arange(T + 1)) % n).all(), "not a contiguous window"
            if n >= T + 1:
                assert row_pos[-1] < n  # never wraps when the file is long enough
            counts[data_index] += 1
    realised = counts / counts.sum()
    for name, r, s in zip(names, realised, m.sources):
        assert abs(r - s["weight"]) < 0.01, (name, r, s["weight"])
    # window starts cover [0, n - T - 1] (first and last token reachable: no off-by-one at either end)
    k, start = m.windows(0, np.arange(2_000_000))
    for i, name in enumerate(names):
        n = SOURCES[name][1]
        assert start[k == i].min() == 0 and start[k == i].max() == (n - T - 1 if n > T else n - 1), name


def test_mix2_never_yields_bilingual_tokens(tmp_path, data):
    m = Mixture(make_mix(tmp_path, kinds=["mono"]), block_size=8, seed=0)
    bi_ids = {data[n] for n, spec in SOURCES.items() if spec[0] == "bi"}
    seen = set()
    for step in range(50):
        x, y = m.get_batch(step, 0, 0, 1, 64)
        seen |= set(np.unique(_source_and_position(torch.cat([x, y], 1))[0]).tolist())
    assert seen and not seen & bi_ids
    assert seen == {data[n] for n, spec in SOURCES.items() if spec[0] == "mono"}


def test_same_batch_across_instances_and_world_sizes(tmp_path, data):
    path = make_mix(tmp_path)
    a, b = Mixture(path, block_size=12, seed=3), Mixture(path, block_size=12, seed=3)
    for step in range(4):  # b has seen other steps first: no hidden state
        b.get_batch(step, 1, 0, 1, 8)
    global_batch, batch_size = 16, 2
    reference = a.get_batch(7, 0, 0, 1, global_batch)
    assert all(torch.equal(p, q) for p, q in zip(reference, b.get_batch(7, 0, 0, 1, global_batch)))
    for world in (1, 2, 4):
        grad_accum = global_batch // (batch_size * world)
        parts = [b.get_batch(7, micro, rank, world, batch_size)
                 for micro in range(grad_accum) for rank in range(world)]  # in order of g
        assert torch.equal(torch.cat([p[0] for p in parts]), reference[0])
        assert torch.equal(torch.cat([p[1] for p in parts]), reference[1])
    assert not torch.equal(a.get_batch(8, 0, 0, 1, global_batch)[0], reference[0])
    assert not torch.equal(Mixture(path, block_size=12, seed=4).get_batch(7, 0, 0, 1, global_batch)[0],
                           reference[0])


def test_val_sequences(tmp_path, data):
    T = 8
    path = make_mix(tmp_path, kinds=["mono"])
    m = Mixture(path, block_size=T, seed=0)
    by_tier, by_source, by_lang = (m.val_sequences(12, by=by) for by in ("tier", "source", "lang"))
    # all sources (weight-0 bi included), none without val data, tiers in TIERS order
    assert list(by_tier) == ["high", "medium", "medium_low", "very_low"]
    assert set(by_source) == {n for n, spec in SOURCES.items() if spec[3] > 0}
    assert set(by_lang) == {"fra_Latn", "wol_Latn", "fuv_Latn"}
    for key, (x, y) in by_source.items():
        assert x.shape == y.shape == (12, T)
        real = (y != -1).numpy()  # padding only in rows of val files shorter than a window
        src, pos = _source_and_position(x)
        assert real.any() and (src[real] == data[key]).all() and (pos[real] >= VAL_BASE).all()
    # the 5-token val file: whole file once, x padded with eos, y with -1 (ignored by the loss)
    x, y = by_lang["fuv_Latn"]
    k = data["fuv_Latn"] * 1_000_000 + VAL_BASE
    assert x[0].tolist() == [k, k + 1, k + 2, k + 3] + [8193] * 4
    assert y[0].tolist() == [k + 1, k + 2, k + 3, k + 4] + [-1] * 4
    # the high tier holds two sources: rows alternate between them
    src = _source_and_position(by_tier["high"][0])[0][:, 0]
    assert src.tolist() == [data["eng_Latn-fra_Latn"], data["fra_Latn"]] * 6
    # deterministic, independent of the training seed, and a longer set starts with the shorter one
    again = Mixture(path, block_size=T, seed=99).val_sequences(24, by="tier")
    assert all(torch.equal(by_tier[k][0], again[k][0][:12]) and torch.equal(by_tier[k][1], again[k][1][:12])
               for k in by_tier)
    with pytest.raises(MixError, match="'kind'"):
        m.val_sequences(4, by="kind")


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc to count file descriptors")
def test_many_sources_hold_no_file_descriptors(tmp_path):
    sources = {f"src{i:03d}": ("mono", 200, 2_000, 20) for i in range(300)}
    make_data_dir(tmp_path / "data", sources)
    m = Mixture(make_mix(tmp_path), block_size=16)
    before = len(os.listdir("/proc/self/fd"))
    for step in range(20):
        m.get_batch(step, 0, 0, 1, 256)
    assert sum(a is not None for a in m._train) > 250  # most files are mapped now
    m.val_sequences(2, by="source")
    assert len(os.listdir("/proc/self/fd")) == before


# ----------------------------------------------------------------------------- bad input

def _bad(tmp_path, data_dirs=None, **overrides):
    cfg = mix.load_config(write_config(tmp_path / "bad_config.py", **overrides))
    return mix.build_mix(data_dirs or [tmp_path / "data"], cfg, tmp_path / "bad.json")


@pytest.mark.parametrize("overrides, message", [
    ({"tier_rates": {**RATES, "ultra": 1.0}}, "tier_rates names tier 'ultra'"),
    ({"tier_thresholds": {**THRESHOLDS, "huge": 10**9}}, "tier_thresholds names tier 'huge'"),
    ({"tier_rates": {**RATES, "low": -1.0}}, r"tier_rates\['low'\] = -1.0 is negative"),
    ({"source_rates": {"fra_Latn": -2}}, r"source_rates\['fra_Latn'\] = -2 is negative"),
    ({"kind_shares": {"bi": 0.5}}, r"kinds \['mono'\] have no entry in kind_shares"),
    ({"tier_thresholds": {**THRESHOLDS, "low": 1_000}}, "must decrease: medium_low=100 <= low=1000"),
    ({"total_tokens": 0}, "total_tokens must be positive"),
])
def test_bad_config(tmp_path, data, overrides, message):
    with pytest.raises(MixError, match=message) as e:
        _bad(tmp_path, **overrides)
    assert "bad_config.py" in str(e.value)


def test_bad_config_keys(tmp_path):
    path = write_config(tmp_path / "typo.py")
    path.write_text(path.read_text() + "tier_rate = {}\n")
    with pytest.raises(MixError, match=r"typo.py: unknown key\(s\) \['tier_rate'\]"):
        mix.load_config(path)
    path.write_text("kinds = ['mono']\ntotal_tokens = 5\n")
    with pytest.raises(MixError, match="missing required key 'tier_rates'"):
        mix.load_config(path)


def test_bad_data(tmp_path, data):
    with pytest.raises(MixError, match="source_rates names source 'xyz_Latn'"):
        _bad(tmp_path, source_rates={"xyz_Latn": 2.0})
    with pytest.raises(MixError, match="all weights are zero"):
        _bad(tmp_path, tier_rates=dict.fromkeys(TIERS, 0.0))
    with pytest.raises(MixError, match="all weights are zero"):
        _bad(tmp_path, kinds=["code"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(MixError, match=f"data dir {tmp_path / 'empty'} has no index.json"):
        _bad(tmp_path, data_dirs=[tmp_path / "data", tmp_path / "empty"])
    make_data_dir(tmp_path / "other_tok", {"deu_Latn": ("mono", 100, 100, 10)}, tokenizer=b"tokenizer B\n")
    with pytest.raises(MixError, match=f"{tmp_path / 'data'} and {tmp_path / 'other_tok'} use different tok"):
        _bad(tmp_path, data_dirs=[tmp_path / "data", tmp_path / "other_tok"])
    make_data_dir(tmp_path / "dup", {"wol_Latn": ("mono", 100, 100, 10)})
    with pytest.raises(MixError, match="source 'wol_Latn' is in both"):
        _bad(tmp_path, data_dirs=[tmp_path / "data", tmp_path / "dup"])
    with open(tmp_path / "data" / "wol_Latn.bin", "ab") as f:
        f.write(b"\0" * 4)
    with pytest.raises(MixError, match=r"wol_Latn.bin holds 20004 bytes .* n_tokens = 5000"):
        _bad(tmp_path)
    (tmp_path / "data" / "fra_Latn.val.bin").unlink()
    with pytest.raises(MixError, match="fra_Latn.val.bin does not exist"):
        mix.read_data_dirs([tmp_path / "data"])


def test_mixture_checks_files_at_init(tmp_path, data):
    path = make_mix(tmp_path)
    with open(tmp_path / "data" / "fra_Latn.bin", "r+b") as f:
        f.truncate(400)
    with pytest.raises(MixError, match="source 'fra_Latn'.* 400 bytes"):
        Mixture(path, block_size=8)
    make_data_dir(tmp_path / "data", {**SOURCES, "wol_Latn": ("mono", 6_000, 600, 300)})
    with pytest.raises(MixError, match="source 'wol_Latn' differs from .*index.json"):
        Mixture(path, block_size=8)
    with pytest.raises(MixError, match="not found"):
        Mixture(tmp_path / "nope.json", block_size=8)
    (tmp_path / "junk.json").write_text('{"format": 1}')
    with pytest.raises(MixError, match="junk.json is not a mix.json of mix.py"):
        Mixture(tmp_path / "junk.json", block_size=8)


# ----------------------------------------------------------------------------- CLI

def test_cli_round_trip_table_and_plot(tmp_path, data, capsys):
    pytest.importorskip("matplotlib")
    out, png = tmp_path / "out" / "mix.json", tmp_path / "out" / "mix.png"
    config = write_config(tmp_path / "c.py", kind_shares={"bi": 0.323, "mono": 0.263, "code": 0.15},
                          kinds=["bi", "mono", "code"], total_tokens=5)
    mix.main([str(tmp_path / "data"), "--config", str(config), "--out", str(out), "--plot", str(png),
              "--total-tokens", "1e6"])
    printed = capsys.readouterr().out
    assert "tier " in printed and "max epochs" in printed
    assert "renormalised to bi 55.1%, mono 44.9%" in printed
    high = next(line for line in printed.splitlines() if line.startswith("high "))
    assert high.split()[1] == "2"  # two sources in the high tier
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    doc = json.loads(out.read_text())
    assert doc["total_tokens"] == 1_000_000
    assert doc["tokenizer"]["sha256"] == hashlib.sha256(b"tokenizer A\n").hexdigest()
    assert doc["config"]["tier_thresholds"] == THRESHOLDS
    assert len(doc["sources"]) == len(SOURCES)
    assert sum(s["weight"] for s in doc["sources"]) == pytest.approx(1)
    for s in doc["sources"]:
        assert s["bin"] == f"../data/{s['name']}.bin" and s["data_dir"] == "../data"
        assert s["expected_tokens"] == pytest.approx(s["weight"] * 1e6)
    m = Mixture(out, block_size=8)
    assert [s["name"] for s in m.sources] == list(SOURCES) and m.tokenizer["eos_id"] == 8193
    x, _ = m.get_batch(0, 0, 0, 1, 4)
    assert x.shape == (4, 8)


def test_cli_without_matplotlib(tmp_path, data, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    png = tmp_path / "mix.png"
    mix.main([str(tmp_path / "data"), "--config", str(ROOT / "config" / "mix_mono.py"),
              "--out", str(tmp_path / "mix.json"), "--plot", str(png)])
    assert "matplotlib is not installed" in capsys.readouterr().out and not png.exists()


def test_cli_error_exits_nonzero_without_output(tmp_path, data):
    config = write_config(tmp_path / "c.py", source_rates={"nope_Latn": 1.0})
    out = tmp_path / "mix.json"
    r = subprocess.run([sys.executable, str(ROOT / "mix.py"), str(tmp_path / "data"), "--config", str(config),
                        "--out", str(out)], capture_output=True, text=True)
    assert r.returncode != 0 and "mix.py: error:" in r.stderr and "'nope_Latn'" in r.stderr
    assert "Traceback" not in r.stderr and not out.exists()
