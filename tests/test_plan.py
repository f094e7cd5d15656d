"""The paper's scale without a GPU: plan.py (train.py --plan) and the prepared GPU check's CPU smoke run."""

import dataclasses
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

import plan
import train
from model import PRESETS, Llama

ROOT = Path(__file__).resolve().parent.parent


def plan_cli(*argv):
    return subprocess.run([sys.executable, "train.py", *argv], cwd=ROOT, capture_output=True, text=True)


@pytest.mark.parametrize("world", [1, 8, 512])
def test_shards_of_llama3_8b_over_any_world(world):
    cfg = {**train.DEFAULTS, "model": "llama3_8b"}
    args = PRESETS["llama3_8b"]
    with torch.device("meta"):
        total = Llama(args).num_params()
    assert total == 8_030_261_248  # Meta's published count, exactly
    for rank in {0, world - 1}:  # FSDP2 itself, over a fake process group, at the first and the last rank
        local, shapes = plan.per_rank_numel(args, cfg, world, rank)
        rows = [(int(torch.tensor(s[1:]).prod()), plan.shard_rows(s[0], world)) for s in shapes.values()]
        per_rank = [sum(width * r[k] for width, r in rows) for k in range(world)]
        assert per_rank[rank] == local
    assert sum(per_rank) == total
    one_row_each = sum(width for width, _ in rows)  # a rank holds at most one row per tensor over its share
    assert max(per_rank) <= total / world + one_row_each


def test_flops_per_token_is_the_hand_count():
    a = dataclasses.replace(PRESETS["tiny"], vocab_size=300)  # dim 64, 2 layers, 4 heads, 2 kv heads, ffn 192
    with torch.device("meta"):
        model = Llama(a)
    per_layer = 64 * 64 + 2 * (64 * 32) + 64 * 64 + 3 * (64 * 192)  # wq, wk + wv (GQA), wo, w1 w2 w3
    matmuls = 2 * per_layer + 300 * 64  # and the output layer; embeddings are a lookup
    T = 100
    assert model.flops_per_token(T) == 6 * matmuls + 12 * 2 * 64 * T  # + attention scores and values


def test_plan_of_the_paper_configs_matches_their_budgets():
    for config, tokens in (("config/bi.py", "671,088,640,000 tokens (671B)"),
                           ("config/mono.py", "419,430,400,000 tokens (419B)")):
        start = time.perf_counter()
        result = plan_cli(config, "--plan", "--gpus=512", "--gpu=MI250X", "--gpu_memory_gb=64")
        assert result.returncode == 0, result.stderr
        assert time.perf_counter() - start < 30  # the target is seconds on 2 CPU cores
        out = result.stdout
        assert "parameters: 8,030,261,248 total" in out and tokens in out
        assert "1 per GPU x 512 GPUs x 4 micro-steps" in out and "ASSUMED 40% MFU" in out


def test_a_plan_that_cannot_run_is_one_line():
    result = plan_cli("config/bi.py", "--plan", "--gpus=3")
    assert result.returncode == 1 and result.stderr.count("\n") == 1
    assert result.stderr.startswith("plan: error: global_batch_size 2048 is not a multiple of micro_batch")
    result = plan_cli("config/bi.py", "--plan", "--gpus=8", "--gpu_memory_gb=24")
    assert result.returncode == 1 and result.stderr.count("\n") == 1
    assert result.stderr.startswith("plan: error: needs 33.3 GB per GPU, more than --gpu_memory_gb=24")
    assert "memory per rank" in result.stdout  # the plan itself was printed first


def test_the_gpu_check_runs_its_steps_on_the_cpu(tmp_path):
    out = tmp_path / "gpu_check.json"
    result = subprocess.run([sys.executable, "scripts/gpu_check.py", "--cpu-smoke", "--json", str(out)],
                            cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    steps = {r["step"]: r for r in json.loads(out.read_text())}
    assert list(steps) == ["parity", "attention", "train", "decode", "torchrun"]
    assert all(r.get("ok", True) is True and "error" not in r for r in steps.values()), steps
    assert steps["decode"]["same_tokens"] is True and steps["torchrun"]["returncode"] == 0
