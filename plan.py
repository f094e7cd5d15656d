"""Will it fit, how long will it take: a training config sized for N GPUs without a GPU, data or weights.

    python train.py config/bi.py --plan --gpus=512 [--gpu_memory_gb=64] [--gpu=MI250X] [--mfu=0.4]

The model is built on the meta device and sharded by fsdp.shard_model, the code path of training, over a
simulated world of N ranks (torch's fake process group: no communication happens); the per-rank shards are
read off the DTensors. Memory per rank adds what FSDP2 + AdamW keep (fp32 master weights, fp32 gradients,
two fp32 AdamW moments, all sharded), what a step gathers (the bf16 parameters of the blocks in flight and
the root's embeddings and output), gradient accumulation buffers, and activations of one micro-batch from
the formula in activation_bytes. FLOPs per token are model.flops_per_token, the formula of train.py's MFU.
Time and GPU-hours assume an MFU, printed as the assumption it is. Exits 1 with one line when the plan
cannot fit or the global batch does not divide over the GPUs.
"""

import math
from pathlib import Path

import torch
import torch.distributed as dist
from torch.distributed.device_mesh import init_device_mesh
from torch.testing._internal.distributed.fake_pg import FakeStore  # torch's fake process group

from checkpoint import read_config
from fsdp import parameter_names, shard_model
from model import PRESETS, Llama, ModelArgs

PLAN_FLAGS = {"gpus": 8, "gpu_memory_gb": 80.0, "gpu": "H100", "mfu": 0.40}  # --plan's own flags


def model_args(cfg: dict) -> tuple[ModelArgs, str]:
    """The init folder's architecture when it is on this machine, else the config's model preset."""
    init = Path(cfg["init"])
    if cfg["init"] != "scratch" and (init / "config.json").is_file():
        return read_config(init), str(init)
    if cfg["model"] not in PRESETS:
        raise SystemExit(f"plan: error: model {cfg['model']!r} is not a preset ({', '.join(PRESETS)})")
    return PRESETS[cfg["model"]], f"preset {cfg['model']}"


def shard_rows(rows: int, world: int) -> list[int]:
    """Rows of dim 0 on each rank: FSDP2 shards with torch.chunk (ceil(rows / world) each, the last ones
    fewer or none)."""
    sizes = [len(c) for c in torch.empty(rows, device="meta").chunk(world)]
    return sizes + [0] * (world - len(sizes))


def per_rank_numel(args: ModelArgs, cfg: dict, world: int, rank: int = 0) -> tuple[int, dict]:
    """(parameters on `rank`, {name: full shape}) from fsdp.shard_model over a fake process group."""
    dist.init_process_group("fake", store=FakeStore(), rank=rank, world_size=world)
    try:
        model = shard_model(args, cfg, init_device_mesh("cpu", (world,)))
        params = parameter_names(model)
        shapes = {name: tuple(p.shape) for name, p in params.items()}
        return sum(p.to_local().numel() for p in params.values()), shapes
    finally:
        dist.destroy_process_group()


def activation_bytes(args: ModelArgs, tokens: int, checkpointing: bool) -> int:
    """Activations kept for backward by one micro-batch of `tokens` tokens in bf16 (fp32 where our code
    computes in fp32), with flash attention (keeps q, k, v, output and the log-sum-exp, no T x T matrix).
    Per token and layer: two RMSNorms (fp32 input 4d + bf16 output 2d each), the block input 2d, q/k/v
    2(d + 2 kv), attention output and its copy 4d, log-sum-exp 4 per head, SwiGLU w1/w3/silu outputs and
    their product 8 ffn. With activation checkpointing only each block's input (2d) stays, plus one
    block's full set during its recomputation. Output layer: bf16 logits, their fp32 copy and its grad."""
    d, kv, heads, layers = args.dim, args.n_kv_heads * args.head_dim, args.n_heads, args.n_layers
    per_layer = 12 * d + 2 * d + 2 * (d + 2 * kv) + 4 * d + 4 * heads + 8 * args.ffn_dim
    blocks = layers * 2 * d + per_layer if checkpointing else layers * per_layer
    return tokens * (blocks + 10 * args.vocab_size)


def plan(cfg: dict, gpus: int, gpu_memory_gb: float, gpu: str, mfu: float, peak_flops: dict):
    """(the plan as lines to print, GB needed per GPU); raises SystemExit(one line) when it cannot run."""
    args, source = model_args(cfg)
    per_step = cfg["micro_batch_size"] * gpus
    if cfg["global_batch_size"] % per_step:
        raise SystemExit(f"plan: error: global_batch_size {cfg['global_batch_size']} is not a multiple of "
                         f"micro_batch_size {cfg['micro_batch_size']} x {gpus} GPUs = {per_step}")
    if gpu not in peak_flops:
        raise SystemExit(f"plan: error: --gpu={gpu}: one of {', '.join(peak_flops)}")
    accum = cfg["global_batch_size"] // per_step
    local0, shapes = per_rank_numel(args, cfg, gpus)
    with torch.device("meta"):
        model = Llama(args)
    total = model.num_params()
    rows = [(math.prod(s[1:]), shard_rows(s[0], gpus)) for s in shapes.values()]
    ranks = [sum(width * per_rank[r] for width, per_rank in rows) for r in range(gpus)]
    assert ranks[0] == local0 and sum(ranks) == total  # the rule above is what FSDP2 did
    shard, GB = max(ranks), 1e9
    block = sum(p.numel() for p in model.layers[0].parameters())
    root = total - args.n_layers * block  # embeddings, final norm, output: gathered for the whole step
    accumulation = 2 * total if accum > 1 and not cfg["grad_sync_per_micro_step"] else 0
    memory = {"parameters (fp32 shard)": 4 * shard, "gradients (fp32 shard)": 4 * shard,
              "AdamW moments (2 x fp32 shard)": 8 * shard,
              "gathered bf16 parameters (2 blocks + root)": 2 * (2 * block + root),
              "unsharded bf16 gradient accumulation": accumulation,
              f"activations, micro-batch {cfg['micro_batch_size']} x {cfg['block_size']} (AC "
              f"{'on' if cfg['activation_checkpointing'] else 'off'})": activation_bytes(
                  args, cfg["micro_batch_size"] * cfg["block_size"], cfg["activation_checkpointing"])}
    other_ac = activation_bytes(args, cfg["micro_batch_size"] * cfg["block_size"],
                                not cfg["activation_checkpointing"])
    flops_token = model.flops_per_token(cfg["block_size"])
    tokens_step = cfg["global_batch_size"] * cfg["block_size"]
    run_tokens = tokens_step * cfg["max_steps"]
    gpu_hours = run_tokens * flops_token / (mfu * peak_flops[gpu]) / 3600
    need = sum(memory.values()) / GB
    lines = [f"plan for {gpus} x {gpu} ({gpu_memory_gb:g} GB), model {source}: {args.n_layers} layers, dim "
             f"{args.dim}, vocab {args.vocab_size}",
             f"parameters: {total:,} total; per rank (FSDP2, fake process group of {gpus}): "
             f"max {max(ranks):,}, min {min(ranks):,}",
             f"batch: {cfg['global_batch_size']} x {cfg['block_size']} = {tokens_step:,} tokens per step = "
             f"{cfg['micro_batch_size']} per GPU x {gpus} GPUs x {accum} micro-steps",
             "memory per rank (GB):"]
    lines += [f"  {name:<58} {b / GB:8.2f}" for name, b in memory.items()]
    lines += [f"  {'total':<58} {need:8.2f}",
              f"  (activations with activation_checkpointing={not cfg['activation_checkpointing']}: "
              f"{other_ac / GB:.2f})",
              f"FLOPs per token: {flops_token:.4g} (6 x matmul parameters + 12 x layers x dim x block_size: "
              "train.py's MFU)",
              f"run: {cfg['max_steps']:,} steps x {tokens_step:,} = {run_tokens:,} tokens "
              f"({run_tokens / 1e9:.0f}B)",
              f"at an ASSUMED {mfu:.0%} MFU of {peak_flops[gpu] / 1e12:g} TFLOP/s per {gpu}: "
              f"{gpu_hours:,.0f} GPU-hours, {gpu_hours / gpus:,.1f} hours ({gpu_hours / gpus / 24:.1f} days) "
              f"on {gpus} GPUs"]
    return lines, need


def parse_flags(argv: list[str]) -> tuple[list[str], dict]:
    """Split --gpus= / --gpu_memory_gb= / --gpu= / --mfu= (and --plan) from train.py's own arguments."""
    flags, rest = dict(PLAN_FLAGS), []
    for arg in argv:
        key, eq, value = arg.removeprefix("--").partition("=")
        if arg.startswith("--") and key in flags and eq:
            try:
                flags[key] = type(PLAN_FLAGS[key])(value)
            except ValueError:
                raise SystemExit(f"plan: error: {arg}: expected a {type(PLAN_FLAGS[key]).__name__}") from None
        elif arg != "--plan":
            rest.append(arg)
    return rest, flags


def main(cfg: dict, flags: dict, peak_flops: dict) -> None:
    lines, need = plan(cfg, flags["gpus"], flags["gpu_memory_gb"], flags["gpu"], flags["mfu"], peak_flops)
    print("\n".join(lines))
    if need > flags["gpu_memory_gb"]:
        raise SystemExit(f"plan: error: needs {need:.1f} GB per GPU, more than --gpu_memory_gb="
                         f"{flags['gpu_memory_gb']:g}: more GPUs, a smaller micro_batch_size, or "
                         "activation_checkpointing=True")


if __name__ == "__main__":
    raise SystemExit("run it as: python train.py CONFIG --plan --gpus=N (it reads train.py's config)")
