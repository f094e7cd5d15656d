"""
Continual pre-training (or pre-training from scratch) of Llama on a mix.json, nanoGPT style.

    python train.py config/demo_base.py                         # one process (CPU or one GPU)
    torchrun --nproc_per_node=8 train.py config/bi.py           # one node, FSDP2 over 8 GPUs
    python train.py config/demo_bi.py --max_steps=50 --lr=3e-4  # any key can be overridden
    python train.py config/demo_bi.py --resume                  # continue from out_dir/ckpt/latest
    python train.py config/bi.py --plan --gpus=512              # will it fit, how long (plan.py)

Configuration: the defaults below, then each config/*.py named on the command line (its assignments
override the defaults), then --key=value (parsed with ast.literal_eval, a bare word is a string; checked
against the default's type). The global batch is the experiment: grad accumulation follows from the
world size at run time. Relative paths are relative to the working directory.

Outputs in out_dir: ckpt/step_<N>/ (torch.distributed.checkpoint shards of model + optimizer, meta.json,
per-rank RNG state), ckpt/latest (name of the newest complete checkpoint), log.jsonl (a header line with
the config, then {"step", "loss", "lr", "grad_norm", "tokens_per_s", "mfu"?} and {"step", "val"} lines),
and hf/ at the end (a Hugging Face folder, see checkpoint.py; `python checkpoint.py` exports any step).

One code path: without torchrun, train.py makes a process group of one (in-memory store), so FSDP2,
DTensor and torch.distributed.checkpoint run the same code in one process as on 512 GPUs. Checkpoints
move between world sizes. Multi-node: out_dir must be on a filesystem all nodes share.
"""

import ast
import dataclasses
import hashlib
import json
import math
import os
import re
import shutil
import sys
import time
from pathlib import Path

import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
    get_state_dict,
    set_state_dict,
)
from torch.distributed.fsdp import FSDPModule
from torch.distributed.tensor import DTensor

import plan
from checkpoint import DTYPES, CheckpointError, check_export_folder, find_step_dir, save_hf
from checkpoint import read_config as read_model_config
from common import read_config_file, write_atomic
from fsdp import build_model, setup_distributed
from model import PRESETS, ModelArgs
from sampler import Mixture

# ----------------------------------------------------------------------------- default config
# I/O
out_dir = "out/run"  # checkpoints, log.jsonl and the exported Hugging Face folder (hf/)
init = "scratch"  # "scratch", a Hugging Face / Meta folder, or our checkpoint (step dir, ckpt dir, out_dir)
model = "demo"  # model.PRESETS name, for init="scratch" (vocab_size comes from the tokenizer)
mix = ""  # mix.json written by mix.py
resume = False  # continue from out_dir/ckpt/latest (starts from init when there is none yet)
# batch: the global batch is the experiment; micro-steps per optimizer step follow from the world size
block_size = 256  # tokens per sequence
global_batch_size = 8  # sequences per optimizer step, all ranks together
micro_batch_size = 8  # sequences per rank per forward/backward: accumulation = global / (micro x ranks)
seed = 0  # data order (Mixture) and scratch init
# optimizer and schedule: linear warmup, cosine decay to min_lr (docs/method.md: our reconstruction)
max_steps = 1000  # optimizer steps of the whole run
lr = 1e-4  # peak; the paper's CPT value (Llama 3's own 3e-4 gave loss spikes)
min_lr = 1e-5  # 10% of peak
warmup_steps = 100  # linear warmup from 0 to lr
lr_decay_steps = 0  # step at which the cosine reaches min_lr; 0 = max_steps
weight_decay = 0.1  # AdamW, on matmuls and embeddings (not norms)
beta1 = 0.9  # AdamW first-moment decay
beta2 = 0.95  # AdamW second-moment decay (Llama 3's and nanoGPT's)
grad_clip = 1.0  # 0 = no clipping (the norm is still logged)
grad_sync_per_micro_step = False  # True: reduce-scatter every micro-step (grads stay sharded: less memory)
# eval, logging, checkpoints
log_interval = 1  # a train line (loss, lr, grad norm, tokens/s, MFU) every N steps
eval_interval = 100  # validation loss per tier and for English every N steps (0 = never)
eval_sequences = 32  # validation sequences per group: the same ones whatever the world size
ckpt_interval = 500  # 0 = only at the end
keep_ckpts = 3  # keep the newest K checkpoints of this run (0 = all)
export_hf = True  # write out_dir/hf, a Hugging Face folder, at the end of the run
export_dtype = "float32"  # dtype of the exported safetensors
wandb_log = False  # also log to Weights & Biases (pip install wandb)
wandb_project = "emma500-llama3"  # wandb project name
wandb_run_name = ""  # wandb run name ("" = wandb's own)
# system
device = "cuda" if torch.cuda.is_available() else "cpu"  # torchrun: each rank its own GPU (LOCAL_RANK)
dtype = "bfloat16" if torch.cuda.is_available() else "float32"  # FSDP2 compute dtype; reduce is fp32
compile = False  # torch.compile each block
activation_checkpointing = False  # recompute each block in backward
# -----------------------------------------------------------------------------
DEFAULTS = {k: v for k, v in globals().items() if not k.startswith("_") and isinstance(v, (int, float, str))}

# dense bf16 peak FLOP/s per torch device (vendor data sheets), matched as a substring of the device name.
# An MI250X card (383 TFLOP/s) shows up as two devices (GCDs), the paper's "512 GPUs": 191.5 each.
PEAK_BF16_FLOPS = {"H200": 989e12, "H100": 989e12, "A100": 312e12, "MI300X": 1307e12, "MI250X": 191.5e12,
                   "L40S": 362e12, "A10G": 70e12}
CKPT_NAME = re.compile(r"step_(\d+)$")


def die(message: str):
    """A user error: one line, from rank 0 only (every rank finds the same error), exit status 1."""
    if int(os.environ.get("RANK", "0")) == 0:
        print(f"train.py: error: {message}", file=sys.stderr, flush=True)
    raise SystemExit(1)


def usage() -> str:
    """--help: the docstring, the default config block (every key, its default, its meaning), config files."""
    source = Path(__file__).read_text()
    block = source[source.index("# I/O\n"):source.index("# ---", source.index("# I/O\n"))]
    configs = sorted(p.name for p in (Path(__file__).parent / "config").glob("*.py") if p.name[0] != "_")
    flags = " ".join(f"--{k}={v}" for k, v in plan.PLAN_FLAGS.items())  # --plan's own, with their defaults
    return (f"{__doc__.strip()}\n\nConfig keys with their defaults (set them in a config file or as "
            f"--key=value):\n\n{block}\nConfig files (config/): {', '.join(configs)}\n--plan flags "
            f"(plan.py; defaults): {flags}\n")


def check_type(key: str, value, where: str):
    """The value must have the default's type (an int is accepted for a float)."""
    default = DEFAULTS[key]
    if isinstance(default, float) and type(value) is int:
        return float(value)
    if type(value) is not type(default):
        die(f"{where}: {key} must be {type(default).__name__} (default {default!r}), got "
            f"{type(value).__name__} {value!r}")
    return value


def resolve_config(argv: list[str]) -> dict:
    """defaults -> config files (in order) -> --key=value overrides."""
    cfg = dict(DEFAULTS)
    unknown = lambda key, where: die(f"{where}: unknown key {key!r}; valid keys: {', '.join(DEFAULTS)}")
    for arg in argv:
        if arg.startswith("--"):
            key, eq, text = arg[2:].partition("=")
            if not eq:
                if key != "resume":
                    die(f"{arg}: expected --key=value (or --resume, --plan, --help)")
                text = "True"
            if key not in cfg:
                unknown(key, arg)
            try:
                value = ast.literal_eval(text)
            except (ValueError, SyntaxError):
                value = text  # a bare word: --out_dir=out/x
            cfg[key] = check_type(key, value, arg)
        else:
            try:
                values = read_config_file(arg)
            except ValueError as e:
                die(str(e))
            for key, value in values.items():
                if key not in cfg:
                    unknown(key, arg)
                cfg[key] = check_type(key, value, arg)
    if cfg["dtype"] not in ("float32", "bfloat16"):  # float16 would need a loss scaler
        die(f"dtype must be 'float32' or 'bfloat16', got {cfg['dtype']!r}")
    if cfg["export_dtype"] not in DTYPES:
        die(f"export_dtype must be one of {list(DTYPES)}, got {cfg['export_dtype']!r}")
    for key in ("block_size", "global_batch_size", "micro_batch_size", "max_steps", "eval_sequences"):
        if cfg[key] < 1:
            die(f"{key} must be >= 1, got {cfg[key]}")
    return cfg


def micro_steps(cfg: dict, world: int) -> int:
    """Micro-steps per optimizer step: global_batch_size / (micro_batch_size x world), which must divide."""
    per_micro_step = cfg["micro_batch_size"] * world
    if cfg["global_batch_size"] % per_micro_step:
        die(f"global_batch_size {cfg['global_batch_size']} is not a multiple of micro_batch_size "
            f"{cfg['micro_batch_size']} x {world} ranks = {per_micro_step}: change one of them")
    return cfg["global_batch_size"] // per_micro_step


def lr_at(step: int, cfg: dict) -> float:
    """Linear warmup to lr over warmup_steps, then cosine decay to min_lr at lr_decay_steps (then flat)."""
    decay_steps = cfg["lr_decay_steps"] or cfg["max_steps"]
    if step < cfg["warmup_steps"]:
        return cfg["lr"] * (step + 1) / (cfg["warmup_steps"] + 1)
    if step >= decay_steps:
        return cfg["min_lr"]
    progress = (step - cfg["warmup_steps"]) / max(1, decay_steps - cfg["warmup_steps"])
    return cfg["min_lr"] + 0.5 * (1.0 + math.cos(math.pi * progress)) * (cfg["lr"] - cfg["min_lr"])


# ----------------------------------------------------------------------------- checks before any compute


@dataclasses.dataclass
class Plan:
    """Everything checked before a process group or a model exists: bad input fails here, fast."""
    mixture: Mixture
    mix_sha256: str
    args: ModelArgs
    source: tuple  # ("scratch" | "hf" | "ckpt", path)
    grad_accum: int
    resume_dir: Path | None
    resume_meta: dict | None


def model_args_for(cfg: dict, n_vocab: int) -> tuple[ModelArgs, tuple]:
    """ModelArgs of the run and what init holds: ("scratch"|"hf"|"ckpt", path)."""
    if cfg["init"] == "scratch":
        if cfg["model"] not in PRESETS:
            die(f"model {cfg['model']!r} is not a preset; presets: {', '.join(PRESETS)}")
        args, source = dataclasses.replace(PRESETS[cfg["model"]], vocab_size=n_vocab), ("scratch", None)
    else:
        folder = Path(cfg["init"])
        if not folder.is_dir():
            die(f"init folder {folder} not found (init is 'scratch', a Hugging Face folder or a checkpoint)")
        try:
            step_dir = find_step_dir(folder)
            if step_dir is not None:
                meta = json.loads((step_dir / "meta.json").read_text())
                args, source = ModelArgs(**meta["model_args"]), ("ckpt", step_dir)
            else:  # a Hugging Face folder (config.json) or Meta's (params.json)
                args, source = read_model_config(folder), ("hf", folder)
        except (OSError, ValueError) as e:
            die(f"init folder {folder}: {e}")
        if args.vocab_size < n_vocab:
            die(f"init {folder} has vocab_size {args.vocab_size} < the tokenizer's n_vocab {n_vocab}")
    if cfg["block_size"] > args.max_seq_len:
        die(f"block_size {cfg['block_size']} > the model's max_seq_len {args.max_seq_len}")
    return args, source


def plan_run(cfg: dict, world: int) -> Plan:
    if not Path(cfg["mix"]).is_file():
        die(f"mix {cfg['mix']!r} not found (set mix= to a mix.json written by mix.py)")
    try:
        mixture = Mixture(cfg["mix"], cfg["block_size"], seed=cfg["seed"])
    except (OSError, ValueError, KeyError) as e:
        die(f"mix {cfg['mix']}: {e}")
    with open(cfg["mix"], "rb") as f:
        mix_sha256 = hashlib.file_digest(f, "sha256").hexdigest()
    args, source = model_args_for(cfg, mixture.tokenizer["n_vocab"])
    grad_accum = micro_steps(cfg, world)
    out, meta = Path(cfg["out_dir"]), None
    try:
        resume_dir = find_step_dir(out / "ckpt")
        if cfg["export_hf"]:
            check_export_folder(out / "hf")  # fails now, not after the whole run
    except CheckpointError as e:
        die(str(e))
    if resume_dir is not None and not cfg["resume"]:
        die(f"{out} holds checkpoints of a run (latest: {resume_dir.name}): add --resume to continue it, or "
            "choose another out_dir")
    if resume_dir is not None:  # refuse a checkpoint of another model before anything is built
        meta = json.loads((resume_dir / "meta.json").read_text())
        ours = dataclasses.asdict(args)
        if diffs := [f"{k}: checkpoint {v!r}, this run {ours.get(k)!r}" for k, v in meta["model_args"].items()
                     if ours.get(k) != v]:
            die(f"cannot resume from {resume_dir}: the model differs ({'; '.join(diffs)})")
        if meta["mix_sha256"] != mix_sha256:
            print(f"warning: {cfg['mix']} changed since {resume_dir} was written")
    if cfg["wandb_log"]:
        try:
            import wandb  # noqa: F401  (optional: only for wandb_log=True)
        except ImportError:
            die("wandb_log=True but wandb is not installed (pip install wandb)")
    return Plan(mixture, mix_sha256, args, source, grad_accum, resume_dir, meta)


@torch.no_grad()
def validate(model, val: dict, rank: int, world: int, micro: int, device) -> dict:
    """Token-weighted mean loss per group over its fixed sequences. Rank r scores rows r, r + world, ...;
    every rank runs the same number of forwards (FSDP gathers collectively), padded with ignored rows."""
    out = {}
    for group, (x, y) in val.items():
        per_rank = -(-len(x) // (world * micro)) * micro
        pad = per_rank * world - len(x)
        x = torch.cat([x, x[:1].expand(pad, -1)])
        y = torch.cat([y, torch.full((pad, y.shape[1]), -1, dtype=y.dtype)])
        total = torch.zeros(2, device=device)
        for rows in torch.arange(rank, len(x), world).split(micro):
            xb, yb = x[rows].to(device), y[rows].to(device)
            _, loss = model(xb, yb)
            n = (yb != -1).sum()
            total += torch.stack([torch.where(n > 0, loss.float() * n, 0.0), n.float()])
        dist.all_reduce(total)
        out[group] = (total[0] / total[1]).item()
    # a forward without backward leaves the modules with reshard_after_forward=False (root, last block)
    # gathered; the next step would then differ in the last bits from a run resumed here
    for module in model.modules():
        if isinstance(module, FSDPModule):
            module.reshard()
    return out


def peak_flops(device) -> float | None:
    if device.type != "cuda":
        return None
    name = torch.cuda.get_device_name(device)
    return next((v for k, v in PEAK_BF16_FLOPS.items() if k in name), None)


# ----------------------------------------------------------------------------- checkpoints and the log


def save_checkpoint(ckpt_dir: Path, step: int, model, optimizer, meta: dict, rank: int, keep: int):
    """Write step_<N>.tmp, then (rank 0, after a barrier) rename it to step_<N>, point `latest` at it and
    prune this run's older checkpoints (never the new one, never a higher step)."""
    final, tmp = ckpt_dir / f"step_{step}", ckpt_dir / f"step_{step}.tmp"
    if rank == 0:
        shutil.rmtree(tmp, ignore_errors=True)  # left over from a killed run
    dist.barrier()
    model_sd, optim_sd = get_state_dict(model, optimizer)
    dcp.save({"model": model_sd, "optim": optim_sd}, checkpoint_id=tmp)
    cuda_rng = torch.cuda.get_rng_state() if torch.cuda.is_available() else None
    torch.save({"cpu": torch.get_rng_state(), "cuda": cuda_rng}, tmp / f"rng_rank{rank}.pt")
    dist.barrier()
    if rank == 0:
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1))
        if final.exists():  # renamed by a run killed before it could update `latest`
            shutil.rmtree(final)
        os.replace(tmp, final)
        write_atomic(ckpt_dir / "latest", final.name)
        steps = (int(m[1]) for p in ckpt_dir.iterdir() if (m := CKPT_NAME.match(p.name)))
        older = sorted(s for s in steps if s < step)
        for old in older[:max(0, len(older) - keep + 1)] if keep > 0 else []:
            shutil.rmtree(ckpt_dir / f"step_{old}")
    dist.barrier()


def log_lines_up_to(path: Path, step: int) -> list[str]:
    """The lines of a resumed run's log.jsonl up to its checkpoint's step; a torn last line (killed while
    writing it) is dropped with a note."""
    lines, kept = path.read_text().splitlines() if path.exists() else [], []
    for i, line in enumerate(lines):
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            if i < len(lines) - 1:
                die(f"{path}:{i + 1}: not valid JSON (only a torn last line is repaired)")
            print(f"{path}: dropped a torn last line (the run was killed while writing it)")
            break
        if row.get("step", -1) <= step:
            kept.append(line)
    return kept


# ----------------------------------------------------------------------------- the run


def run(cfg: dict, plan: Plan, rank: int, world: int, device: torch.device, mesh):
    master, out, ckpt_dir = rank == 0, Path(cfg["out_dir"]), Path(cfg["out_dir"]) / "ckpt"
    if master:
        ckpt_dir.mkdir(parents=True, exist_ok=True)
        print(f"config:\n{json.dumps(cfg, indent=1)}")
        resuming = f", resume from {plan.resume_dir}" if plan.resume_dir else ""
        print(f"world {world} on {device}, {plan.grad_accum} micro-step(s) per step, init {plan.source[0]} "
              f"{plan.source[1] or cfg['model']}{resuming}")
    try:
        model = build_model(plan.args, cfg, mesh, device, plan.source)
    except (OSError, ValueError) as e:  # checkpoint.CheckpointError: the message names the file and tensor
        die(str(e))
    decay = [p for p in model.parameters() if p.dim() >= 2]  # matmuls and embeddings; not norms (nanoGPT)
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": cfg["weight_decay"]},
                                   {"params": no_decay, "weight_decay": 0.0}], lr=cfg["lr"],
                                  betas=(cfg["beta1"], cfg["beta2"]), fused=device.type == "cuda")
    step, tokens_seen = 0, 0
    if plan.resume_dir is not None:
        model_sd, optim_sd = get_state_dict(model, optimizer)
        dcp.load({"model": model_sd, "optim": optim_sd}, checkpoint_id=plan.resume_dir)
        set_state_dict(model, optimizer, model_state_dict=model_sd, optim_state_dict=optim_sd)
        step, tokens_seen = plan.resume_meta["step"], plan.resume_meta["tokens_seen"]
        rng_file = plan.resume_dir / f"rng_rank{rank}.pt"
        if rng_file.is_file() and plan.resume_meta["world_size"] == world:
            rng = torch.load(rng_file, weights_only=True)
            torch.set_rng_state(rng["cpu"])
            if rng["cuda"] is not None and device.type == "cuda":
                torch.cuda.set_rng_state(rng["cuda"])
    elif cfg["resume"] and master:
        print(f"resume: no checkpoint in {ckpt_dir} yet, starting from init")

    # per-rank parameter counts go to the log's header: with FSDP each rank holds only its shard
    local_numel = torch.tensor([sum(p.to_local().numel() for p in model.parameters())], device=device)
    gathered = [torch.zeros_like(local_numel) for _ in range(world)]
    dist.all_gather(gathered, local_numel)
    n_params = sum(p.numel() for p in model.parameters())
    log_path, wandb = out / "log.jsonl", None
    if master:
        header = {"config": cfg, "start_step": step, "world_size": world, "n_params": n_params,
                  "local_numel": [int(t) for t in gathered], "mix_sha256": plan.mix_sha256,
                  "model_args": dataclasses.asdict(plan.args)}
        lines = log_lines_up_to(log_path, step) + [json.dumps(header)]  # resumed: later lines replaced
        write_atomic(log_path, "".join(line + "\n" for line in lines))
        print(f"{n_params / 1e6:.2f}M parameters, this rank holds {int(local_numel)} ({world} ranks)")
        if cfg["wandb_log"]:
            import wandb

            wandb.init(project=cfg["wandb_project"], name=cfg["wandb_run_name"] or None, config=cfg)
    val = {}
    if cfg["eval_interval"] > 0:
        val = plan.mixture.val_sequences(cfg["eval_sequences"], by="tier")
        english = plan.mixture.val_sequences(cfg["eval_sequences"], by="lang").get("eng_Latn")
        if english is not None:  # the forgetting curve of the high-resource language
            val["eng_Latn"] = english
    micro, accum = cfg["micro_batch_size"], plan.grad_accum
    tokens_per_step = cfg["global_batch_size"] * cfg["block_size"]
    flops_per_token, peak = model.flops_per_token(cfg["block_size"]), peak_flops(device)

    def log(row: dict, text: str):
        if master:
            print(text, flush=True)
            with open(log_path, "a") as f:
                f.write(json.dumps(row) + "\n")
            if wandb is not None:
                wandb.log({k: v for k, v in row.items() if k != "val"} | row.get("val", {}), step=row["step"])

    def log_eval():
        losses = validate(model, val, rank, world, micro, device)
        log({"step": step, "val": losses}, f"step {step} | val " + " | ".join(f"{k} {v:.4f}" for k, v in
                                                                             losses.items()))

    if step == 0 and val:  # the starting point of the forgetting curve
        log_eval()
    params = list(model.parameters())
    while step < cfg["max_steps"]:
        t0 = time.perf_counter()
        lr_now = lr_at(step, cfg)
        for group in optimizer.param_groups:
            group["lr"] = lr_now
        loss_sum = torch.zeros((), device=device)
        for micro_step in range(accum):
            last = micro_step == accum - 1
            if not cfg["grad_sync_per_micro_step"]:
                # accumulate unsharded grads locally and keep params gathered until the last micro-step
                model.set_requires_gradient_sync(last)
                model.set_reshard_after_backward(last)
            x, y = plan.mixture.get_batch(step, micro_step, rank, world, micro)
            _, loss = model(x.to(device), y.to(device))
            (loss / accum).backward()
            loss_sum += loss.detach().float()
        grad_norm = torch.nn.utils.get_total_norm([p.grad for p in params if p.grad is not None])
        if isinstance(grad_norm, DTensor):
            grad_norm = grad_norm.full_tensor()  # the norm over all shards
        if cfg["grad_clip"] > 0:
            torch.nn.utils.clip_grads_with_norm_(params, cfg["grad_clip"], grad_norm)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        dist.all_reduce(loss_sum)
        loss_value = loss_sum.item() / (accum * world)  # .item() waits for the device
        dt = time.perf_counter() - t0
        step += 1
        tokens_seen += tokens_per_step
        if not math.isfinite(loss_value):
            die(f"step {step}: loss is {loss_value}; resume from the last checkpoint with a lower lr")
        if step % cfg["log_interval"] == 0 or step == cfg["max_steps"]:
            row = {"step": step, "loss": loss_value, "lr": lr_now, "grad_norm": grad_norm.item(),
                   "tokens_per_s": tokens_per_step / dt}
            if peak:
                row["mfu"] = flops_per_token * row["tokens_per_s"] / (peak * world)
            log(row, f"step {step} | loss {loss_value:.4f} | lr {lr_now:.2e} | grad norm "
                     f"{row['grad_norm']:.3f} | {row['tokens_per_s']:,.0f} tok/s"
                     + (f" | mfu {row['mfu']:.1%}" if peak else ""))
        if val and (step % cfg["eval_interval"] == 0 or step == cfg["max_steps"]):
            log_eval()
        if (cfg["ckpt_interval"] > 0 and step % cfg["ckpt_interval"] == 0) or step == cfg["max_steps"]:
            meta = {"step": step, "tokens_seen": tokens_seen, "world_size": world, "config": cfg,
                    "mix": str(Path(cfg["mix"]).resolve()), "mix_sha256": plan.mix_sha256,
                    "model_args": dataclasses.asdict(plan.args),
                    "tokenizer": str(plan.mixture.tokenizer_file.resolve())}
            save_checkpoint(ckpt_dir, step, model, optimizer, meta, rank, cfg["keep_ckpts"])
    if cfg["export_hf"]:
        options = StateDictOptions(full_state_dict=True, cpu_offload=True)  # gathered on rank 0's CPU
        full_sd = get_model_state_dict(model, options=options)
        if master:
            init = plan.source[1] if plan.source[0] == "hf" else None  # its tokenizer.json & co carry over
            save_hf(model, out / "hf", DTYPES[cfg["export_dtype"]], full_sd, plan.mixture.tokenizer_file,
                    init)
            print(f"exported {out / 'hf'}")
        dist.barrier()


def main(argv: list[str]):
    if "-h" in argv or "--help" in argv:
        print(usage())
        return
    if "--plan" in argv:  # size the run for --gpus=N without running it: plan.py
        rest, flags = plan.parse_flags(argv)
        return plan.main(resolve_config(rest), flags, PEAK_BF16_FLOPS)
    cfg = resolve_config(argv)
    checked = plan_run(cfg, int(os.environ.get("WORLD_SIZE", "1")))
    rank, world, device, mesh = setup_distributed(cfg)
    try:
        run(cfg, checked, rank, world, device, mesh)
    finally:
        dist.destroy_process_group()


if __name__ == "__main__":
    main(sys.argv[1:])
