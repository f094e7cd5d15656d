"""
Continual pre-training (or pre-training from scratch) of Llama on a mix.json, nanoGPT style.

    python train.py config/demo_base.py                         # one process (CPU or one GPU)
    torchrun --nproc_per_node=8 train.py config/bi.py           # one node, FSDP2 over 8 GPUs
    python train.py config/demo_bi.py --max_steps=50 --lr=3e-4  # any key can be overridden
    python train.py config/demo_bi.py --resume                  # continue from out_dir/ckpt/latest
    python train.py --export out/demo_bi/ckpt/step_200 --to out/demo_bi/hf_200

Configuration: the defaults below, then each config/*.py named on the command line (executed, its
globals override the defaults), then --key=value (value parsed with ast.literal_eval, a bare word is a
string; type-checked against the default). Relative paths are relative to the working directory.

Outputs in out_dir: ckpt/step_<N>/ (torch.distributed.checkpoint shards of model + optimizer, meta.json,
per-rank RNG state), ckpt/latest (name of the newest complete checkpoint), log.jsonl (a header line with
the config, then {"step", "loss", "lr", "grad_norm", "tokens_per_s", "mfu"?} and {"step", "val"} lines),
and hf/ at the end (Hugging Face folder: config.json, model.safetensors, tokenizer.model).

One code path: without torchrun, train.py makes a process group of one (in-memory store), so FSDP2,
DTensor and torch.distributed.checkpoint run the same code in one process as on 512 GPUs. The one-process
tests exercise the sharded code, checkpoints move between world sizes, and the cost on CPU is ~nil
(bench.py --only train). Multi-node: out_dir must be on a filesystem all nodes share.
"""

import ast
import builtins
import dataclasses
import hashlib
import json
import math
import os
import re
import shutil
import sys
import time
import types
import warnings
from pathlib import Path

import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
    get_state_dict,
    set_model_state_dict,
    set_state_dict,
)
from torch.distributed.device_mesh import init_device_mesh
from torch.distributed.fsdp import FSDPModule, MixedPrecisionPolicy, fully_shard
from torch.distributed.tensor import DTensor, distribute_tensor

# -----------------------------------------------------------------------------
# default config values (every key a config file or --key=value may set)
# I/O
out_dir = "out/run"
init = "scratch"  # "scratch" | a Hugging Face (or Meta) folder | our checkpoint (step dir, ckpt dir, out_dir)
model = "demo"  # model.PRESETS name; only used for init="scratch" (vocab_size comes from the tokenizer)
mix = ""  # mix.json written by mix.py
resume = False  # continue from out_dir/ckpt/latest (starts from init when there is none yet)
# batch: global batch = batch_size * grad_accum * world_size sequences of block_size tokens
block_size = 256
batch_size = 8  # sequences per micro-step per rank
grad_accum = 1  # micro-steps per optimizer step
seed = 0  # data order (Mixture) and scratch init
# optimizer and schedule: linear warmup, cosine decay to min_lr (PAPER.md: our reconstruction)
max_steps = 1000
lr = 1e-4  # peak; the paper's CPT value (Llama 3's own 3e-4 gave loss spikes)
min_lr = 1e-5  # 10% of peak
warmup_steps = 100
lr_decay_steps = 0  # step at which the cosine reaches min_lr; 0 = max_steps
weight_decay = 0.1
beta1 = 0.9
beta2 = 0.95
grad_clip = 1.0  # 0 = no clipping (the norm is still logged)
grad_sync_per_micro_step = False  # True: reduce-scatter every micro-step (keeps grads sharded, less memory)
# eval, logging, checkpoints
log_interval = 1
eval_interval = 100  # validation loss per tier and for English every N steps (0 = never)
eval_batches = 4  # validation batches (of batch_size x world_size sequences) per group
ckpt_interval = 500  # 0 = only at the end
keep_ckpts = 3  # keep the newest K checkpoints (0 = all)
export_hf = True  # write out_dir/hf at the end of the run
export_dtype = "float32"  # dtype of the exported model.safetensors
wandb_log = False
wandb_project = "emma500-llama3"
wandb_run_name = ""
# system
device = "cuda" if torch.cuda.is_available() else "cpu"
dtype = "bfloat16" if torch.cuda.is_available() else "float32"  # FSDP2 param dtype; reduce is always fp32
compile = False  # torch.compile each block
activation_checkpointing = False  # recompute each block in backward
DEFAULTS = {k: v for k, v in globals().items() if not k.startswith("_") and isinstance(v, (int, float, str))}
# -----------------------------------------------------------------------------

# dense bf16 peak FLOP/s per torch device (vendor data sheets), matched as a substring of the device name.
# An MI250X card (383 TFLOP/s) shows up as two devices (GCDs), the paper's "512 GPUs": 191.5 each.
PEAK_BF16_FLOPS = {"H200": 989e12, "H100": 989e12, "A100": 312e12, "MI300X": 1307e12, "MI250X": 191.5e12,
                   "L40S": 362e12, "A10G": 70e12}
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
CKPT_NAME = re.compile(r"step_(\d+)$")


def die(message: str):
    raise SystemExit(f"train.py: error: {message}")


def valid_keys() -> str:
    return ", ".join(sorted(DEFAULTS))


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
    for arg in argv:
        if arg.startswith("--"):
            key, eq, text = arg[2:].partition("=")
            if not eq:
                if key != "resume":
                    die(f"{arg}: expected --key=value (or --resume)")
                text = "True"
            if key not in cfg:
                die(f"{arg}: unknown key {key!r}; valid keys: {valid_keys()}")
            try:
                value = ast.literal_eval(text)
            except (ValueError, SyntaxError):
                value = text  # a bare word: --out_dir=out/x
            cfg[key] = check_type(key, value, arg)
        else:
            path = Path(arg)
            if not path.is_file():
                die(f"config file {arg} not found")
            namespace = {}
            try:
                exec(builtins.compile(path.read_text(), str(path), "exec"), namespace)
            except Exception as e:
                die(f"{arg}: {type(e).__name__}: {e}")
            for key, value in namespace.items():
                if key.startswith("_") or isinstance(value, types.ModuleType):
                    continue
                if key not in cfg:
                    die(f"{arg}: unknown key {key!r}; valid keys: {valid_keys()}")
                cfg[key] = check_type(key, value, arg)
    if cfg["dtype"] not in ("float32", "bfloat16"):  # float16 would need a loss scaler
        die(f"dtype must be 'float32' or 'bfloat16', got {cfg['dtype']!r}")
    if cfg["export_dtype"] not in DTYPES:
        die(f"export_dtype must be one of {list(DTYPES)}, got {cfg['export_dtype']!r}")
    for key in ("block_size", "batch_size", "grad_accum", "max_steps"):
        if cfg[key] < 1:
            die(f"{key} must be >= 1, got {cfg[key]}")
    return cfg


def lr_at(step: int, cfg: dict) -> float:
    """Linear warmup to lr over warmup_steps, then cosine decay to min_lr at lr_decay_steps (then flat)."""
    decay_steps = cfg["lr_decay_steps"] or cfg["max_steps"]
    if step < cfg["warmup_steps"]:
        return cfg["lr"] * (step + 1) / (cfg["warmup_steps"] + 1)
    if step >= decay_steps:
        return cfg["min_lr"]
    progress = (step - cfg["warmup_steps"]) / max(1, decay_steps - cfg["warmup_steps"])
    return cfg["min_lr"] + 0.5 * (1.0 + math.cos(math.pi * progress)) * (cfg["lr"] - cfg["min_lr"])


def write_atomic(path: Path, text: str):
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


# ----------------------------------------------------------------------------- checkpoints on disk


def resolve_checkpoint(path) -> Path | None:
    """A step dir (has meta.json), or a ckpt dir / out_dir whose `latest` names one; None if not ours."""
    path = Path(path)
    if (path / "meta.json").is_file():
        return path
    for ckpt_dir in (path, path / "ckpt"):
        if (ckpt_dir / "latest").is_file():
            step_dir = ckpt_dir / (ckpt_dir / "latest").read_text().strip()
            if not (step_dir / "meta.json").is_file():
                die(f"{ckpt_dir / 'latest'} names {step_dir}, which is not a complete checkpoint")
            return step_dir
    return None


def model_args_for(cfg: dict, n_vocab: int):
    """ModelArgs of the run and what init holds: ("scratch"|"hf"|"ckpt", path)."""
    from model import PRESETS, ModelArgs, read_config

    if cfg["init"] == "scratch":
        if cfg["model"] not in PRESETS:
            die(f"model {cfg['model']!r} is not a preset; presets: {', '.join(PRESETS)}")
        args = dataclasses.replace(PRESETS[cfg["model"]], vocab_size=n_vocab)
        source = ("scratch", None)
    else:
        folder = Path(cfg["init"])
        if not folder.is_dir():
            die(f"init folder {folder} not found (init is 'scratch', a Hugging Face folder or a checkpoint)")
        step_dir = resolve_checkpoint(folder)
        if step_dir is not None:
            meta = json.loads((step_dir / "meta.json").read_text())
            args, source = ModelArgs(**meta["model_args"]), ("ckpt", step_dir)
        else:
            try:  # a Hugging Face folder (config.json) or Meta's (params.json)
                args, source = read_config(folder), ("hf", folder)
            except (OSError, ValueError) as e:
                die(f"init folder {folder}: not a checkpoint of ours (no meta.json / latest) and {e}")
        if args.vocab_size < n_vocab:
            die(f"init {folder} has vocab_size {args.vocab_size} < the tokenizer's n_vocab {n_vocab}")
    if cfg["block_size"] > args.max_seq_len:
        die(f"block_size {cfg['block_size']} > the model's max_seq_len {args.max_seq_len}")
    return args, source


def find_tokenizer(mix_path: Path, tokenizer: dict, sources: list[dict]) -> Path:
    """The tokenizer.model of mix.json's tokenizer block: its path, or a file of that name in a data dir
    (prepare_mala.py writes absolute paths; a data dir copied elsewhere keeps its tokenizer.model)."""
    name = Path(tokenizer["path"])
    for candidate in [name] + [mix_path.parent / s["data_dir"] / name.name for s in sources]:
        if candidate.is_file():
            return candidate.resolve()
    die(f"tokenizer {name} named in {mix_path} not found (it is copied into the exported model folder)")


def save_checkpoint(ckpt_dir: Path, step: int, model, optimizer, meta: dict, rank: int, keep: int):
    """Write step_<N>.tmp, then (rank 0, after a barrier) rename to step_<N> and point `latest` at it."""
    final, tmp = ckpt_dir / f"step_{step}", ckpt_dir / f"step_{step}.tmp"
    if rank == 0:
        shutil.rmtree(tmp, ignore_errors=True)  # left over from a killed run
    dist.barrier()
    model_sd, optim_sd = get_state_dict(model, optimizer)
    dcp.save({"model": model_sd, "optim": optim_sd}, checkpoint_id=tmp)
    cuda_rng = torch.cuda.get_rng_state() if torch.cuda.is_available() else None
    torch.save({"cpu": torch.get_rng_state(), "cuda": cuda_rng}, tmp / f"rng_rank{rank}.pt")
    sleep_hook = os.environ.get("EMMA_TEST_SLEEP_IN_SAVE", "")  # "STEP:SECONDS", the kill-during-save test
    if sleep_hook and int(sleep_hook.split(":")[0]) == step:
        print(f"EMMA_TEST_SLEEP_IN_SAVE: step {step} half written, sleeping", flush=True)
        time.sleep(float(sleep_hook.split(":")[1]))
    dist.barrier()
    if rank == 0:
        (tmp / "meta.json").write_text(json.dumps(meta, indent=1))
        if final.exists():  # a newer run's leftover that `latest` never named
            shutil.rmtree(final)
        os.replace(tmp, final)
        write_atomic(ckpt_dir / "latest", final.name)
        steps = sorted(int(m.group(1)) for p in ckpt_dir.iterdir() if (m := CKPT_NAME.match(p.name)))
        for old in steps[:-keep] if keep > 0 else []:
            shutil.rmtree(ckpt_dir / f"step_{old}")
    dist.barrier()


# ----------------------------------------------------------------------------- model under FSDP2


def parameter_names(model) -> dict:
    """Our state_dict names -> parameters (wrappers add name parts that state_dict() hides)."""
    clean = lambda name: name.replace("_checkpoint_wrapped_module.", "").replace("_orig_mod.", "")
    return {clean(name): p for name, p in model.named_parameters()}


@torch.no_grad()
def load_full_tensors(model, tensors, what: str):
    """Copy full tensors, one at a time, into the matching DTensor shards (no rank holds more than its
    shard plus one full tensor): distribute_tensor with src_data_rank=None slices locally, no comms."""
    params, loaded = parameter_names(model), set()
    for name, full in tensors:
        if name not in params:
            if name == "output.weight" and model.args.tie_embeddings:
                continue
            die(f"{what}: unexpected tensor {name}")
        p = params[name]
        if tuple(full.shape) != tuple(p.shape):
            die(f"{what}: {name} has shape {tuple(full.shape)}, the model expects {tuple(p.shape)}")
        shard = distribute_tensor(full.to(p.device, p.dtype), p.device_mesh, p.placements, src_data_rank=None)
        p.to_local().copy_(shard.to_local())
        loaded.add(name)
    if missing := sorted(set(params) - loaded):
        die(f"{what}: missing tensors {missing[:5]}{' ...' if len(missing) > 5 else ''}")


def scratch_tensors(args, seed: int):
    """A full fresh init from a fixed seed on CPU: the same weights whatever the world size."""
    from model import Llama

    with torch.device("meta"):
        full = Llama(args)
    full.to_empty(device="cpu")
    torch.manual_seed(seed)
    full.init_weights()
    yield from full.named_parameters()


def build_model(args, cfg: dict, mesh, device: torch.device, source):
    from torch.distributed.algorithms._checkpoint.checkpoint_wrapper import checkpoint_wrapper

    from model import Llama, checkpoint_tensors

    with torch.device("meta"):
        model = Llama(args)
    param_dtype = DTYPES[cfg["dtype"]]
    mp = MixedPrecisionPolicy(param_dtype=param_dtype, reduce_dtype=torch.float32)
    for i, block in enumerate(model.layers):
        if cfg["activation_checkpointing"]:
            block = model.layers[i] = checkpoint_wrapper(block)
        if cfg["compile"]:
            block.compile()  # in place: parameter names stay unchanged
        # the last block's params are needed again at once by backward: no point resharding them
        fully_shard(block, mesh=mesh, mp_policy=mp, reshard_after_forward=i < len(model.layers) - 1)
    fully_shard(model, mesh=mesh, mp_policy=mp)  # embeddings, final norm, output
    model.to_empty(device=device)  # uninitialised shards: every path below overwrites all of them
    kind, path = source
    if kind == "scratch":
        load_full_tensors(model, scratch_tensors(args, cfg["seed"]), f"scratch init of {cfg['model']}")
    elif kind == "hf":
        try:
            load_full_tensors(model, checkpoint_tensors(path), f"init {path}")
        except (OSError, ValueError) as e:  # model.CheckpointError: the message names file and key
            die(f"init {path}: {e}")
    else:
        model_sd = get_model_state_dict(model)
        dcp.load({"model": model_sd}, checkpoint_id=path)
        set_model_state_dict(model, model_sd)
    return model


# ----------------------------------------------------------------------------- the run


def setup_distributed(cfg: dict):
    """torchrun sets WORLD_SIZE: join its group. Otherwise a group of one (in-memory store), so that FSDP2,
    DTensor and DCP run exactly the same code in one process as in many."""
    device_type = "cuda" if cfg["device"].startswith("cuda") else "cpu"
    torchrun = "WORLD_SIZE" in os.environ
    rank, world = (int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])) if torchrun else (0, 1)
    device = torch.device(cfg["device"])
    if device_type == "cuda":
        if torchrun:
            device = torch.device("cuda", int(os.environ["LOCAL_RANK"]))
        torch.cuda.set_device(device)
    backend = "nccl" if device_type == "cuda" else "gloo"
    if torchrun:
        dist.init_process_group(backend)
    else:
        dist.init_process_group(backend, store=dist.HashStore(), rank=0, world_size=1)
    return rank, world, device, init_device_mesh(device_type, (world,))


@torch.no_grad()
def evaluate(model, val: dict, rank: int, world: int, device) -> dict:
    """Token-weighted mean loss per group. Each batch holds batch_size x world sequences and every rank
    scores its slice, so the result does not depend on the world size."""
    out = {}
    for group, batches in val.items():
        total = torch.zeros(2, device=device)
        for x, y in batches:
            x, y = x.chunk(world)[rank].to(device), y.chunk(world)[rank].to(device)
            _, loss = model(x, y)
            n = (y != -1).sum()
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


@dataclasses.dataclass
class Plan:
    """Everything checked before a process group or a model exists: bad input fails here, fast."""
    mixture: object
    mix_path: Path
    mix_sha256: str
    tokenizer_path: Path
    args: object  # model.ModelArgs
    source: tuple  # ("scratch" | "hf" | "ckpt", path)
    resume_dir: Path | None
    resume_meta: dict | None


def plan_run(cfg: dict) -> Plan:
    from mix import Mixture

    mix_path = Path(cfg["mix"])
    if not mix_path.is_file():
        die(f"mix {cfg['mix']!r} not found (set mix= to a mix.json written by mix.py)")
    try:
        mixture = Mixture(mix_path, cfg["block_size"], seed=cfg["seed"])
    except (OSError, ValueError, KeyError) as e:
        die(f"mix {mix_path}: {type(e).__name__}: {e}")
    with open(mix_path, "rb") as f:
        mix_sha256 = hashlib.file_digest(f, "sha256").hexdigest()
    args, source = model_args_for(cfg, mixture.tokenizer["n_vocab"])
    resume_dir = resolve_checkpoint(Path(cfg["out_dir"]) / "ckpt") if cfg["resume"] else None
    meta = None
    if resume_dir is not None:  # refuse a checkpoint of another model before anything is built
        meta = json.loads((resume_dir / "meta.json").read_text())
        ours = dataclasses.asdict(args)
        if diffs := [f"{k}: checkpoint {v!r}, this run {ours.get(k)!r}" for k, v in meta["model_args"].items()
                     if ours.get(k) != v]:
            die(f"cannot resume from {resume_dir}: the model differs ({'; '.join(diffs)})")
        if meta["mix_sha256"] != mix_sha256:
            print(f"warning: {mix_path} changed since {resume_dir} was written")
    if cfg["wandb_log"]:
        try:
            import wandb  # noqa: F401
        except ImportError:
            die("wandb_log=True but wandb is not installed (pip install wandb)")
    return Plan(mixture, mix_path, mix_sha256, find_tokenizer(mix_path, mixture.tokenizer, mixture.sources),
                args, source, resume_dir, meta)


def train(cfg: dict):
    plan = plan_run(cfg)
    rank, world, device, mesh = setup_distributed(cfg)
    try:
        run(cfg, plan, rank, world, device, mesh)
    finally:
        dist.destroy_process_group()


def run(cfg: dict, plan: Plan, rank: int, world: int, device: torch.device, mesh):
    master, out, ckpt_dir = rank == 0, Path(cfg["out_dir"]), Path(cfg["out_dir"]) / "ckpt"
    if master:
        ckpt_dir.mkdir(parents=True, exist_ok=True)
        print(f"config:\n{json.dumps(cfg, indent=1)}")
        print(f"world {world} on {device}, init {plan.source[0]} {plan.source[1] or cfg['model']}"
              + (f", resume from {plan.resume_dir}" if plan.resume_dir else ""))
    model = build_model(plan.args, cfg, mesh, device, plan.source)
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
        lines = log_path.read_text().splitlines() if log_path.exists() else []
        # a resumed run replaces what the interrupted one logged after its checkpoint
        kept = [line for line in lines if json.loads(line).get("step", -1) <= step]
        header = {"config": cfg, "start_step": step, "world_size": world, "n_params": n_params,
                  "local_numel": [int(t) for t in gathered], "mix_sha256": plan.mix_sha256,
                  "model_args": dataclasses.asdict(plan.args)}
        write_atomic(log_path, "".join(line + "\n" for line in kept + [json.dumps(header)]))
        print(f"{n_params / 1e6:.2f}M parameters, this rank holds {int(local_numel)} ({world} ranks)")
        if cfg["wandb_log"]:
            import wandb

            wandb.init(project=cfg["wandb_project"], name=cfg["wandb_run_name"] or None, config=cfg)
    val = {}
    if cfg["eval_interval"] > 0:
        val = plan.mixture.val_batches(cfg["batch_size"] * world, cfg["eval_batches"], by="tier")
        by_lang = plan.mixture.val_batches(cfg["batch_size"] * world, cfg["eval_batches"], by="lang")
        if "eng_Latn" in by_lang:  # the forgetting curve of the high-resource language
            val["eng_Latn"] = by_lang["eng_Latn"]
    tokens_per_step = cfg["batch_size"] * cfg["block_size"] * cfg["grad_accum"] * world
    flops_per_token, peak = model.flops_per_token(cfg["block_size"]), peak_flops(device)

    def log(row: dict, text: str):
        if master:
            print(text, flush=True)
            with open(log_path, "a") as f:
                f.write(json.dumps(row) + "\n")
            if wandb is not None:
                wandb.log({k: v for k, v in row.items() if k != "val"} | row.get("val", {}), step=row["step"])

    def log_eval():
        losses = evaluate(model, val, rank, world, device)
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
        for micro in range(cfg["grad_accum"]):
            last = micro == cfg["grad_accum"] - 1
            if not cfg["grad_sync_per_micro_step"]:
                # accumulate unsharded grads locally and keep params gathered until the last micro-step
                model.set_requires_gradient_sync(last)
                model.set_reshard_after_backward(last)
            x, y = plan.mixture.get_batch(step, micro, rank, world, cfg["batch_size"])
            _, loss = model(x.to(device), y.to(device))
            (loss / cfg["grad_accum"]).backward()
            loss_sum += loss.detach().float()
        grad_norm = torch.nn.utils.get_total_norm([p.grad for p in params if p.grad is not None])
        if isinstance(grad_norm, DTensor):
            grad_norm = grad_norm.full_tensor()  # the norm over all shards
        if cfg["grad_clip"] > 0:
            torch.nn.utils.clip_grads_with_norm_(params, cfg["grad_clip"], grad_norm)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        dist.all_reduce(loss_sum)
        loss_value = loss_sum.item() / (cfg["grad_accum"] * world)  # .item() waits for the device
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
                    "mix": str(plan.mix_path), "mix_sha256": plan.mix_sha256,
                    "model_args": dataclasses.asdict(plan.args), "tokenizer": str(plan.tokenizer_path)}
            save_checkpoint(ckpt_dir, step, model, optimizer, meta, rank, cfg["keep_ckpts"])
    if cfg["export_hf"]:
        options = StateDictOptions(full_state_dict=True, cpu_offload=True)  # gathered on rank 0's CPU
        full_sd = get_model_state_dict(model, options=options)
        if master:
            export(model, full_sd, out / "hf", plan.tokenizer_path, DTYPES[cfg["export_dtype"]])
        dist.barrier()


def export(model, state_dict: dict, folder: Path, tokenizer_path, dtype):
    """A Hugging Face folder (model.save_hf) plus the run's tokenizer.model, written under a tmp name."""
    from model import save_hf

    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    save_hf(model, tmp, dtype=dtype, state_dict=state_dict)
    if tokenizer_path is not None:
        shutil.copyfile(tokenizer_path, tmp / "tokenizer.model")
    shutil.rmtree(folder, ignore_errors=True)
    os.replace(tmp, folder)
    print(f"exported {folder}")


def export_checkpoint(ckpt: str, to: str, dtype: str | None):
    """`--export CKPT --to FOLDER`: read a DCP checkpoint in this one process (no process group: DCP loads
    the shards of any world size into full tensors) and write a Hugging Face folder."""
    from model import Llama, ModelArgs

    step_dir = resolve_checkpoint(ckpt)
    if step_dir is None:
        die(f"{ckpt} is not a checkpoint (no meta.json, no latest)")
    meta = json.loads((step_dir / "meta.json").read_text())
    with torch.device("meta"):
        model = Llama(ModelArgs(**meta["model_args"]))
    model.to_empty(device="cpu")
    state_dict = model.state_dict()
    with warnings.catch_warnings():  # "assuming the intent is to load in a single process": it is
        warnings.filterwarnings("ignore", message="torch.distributed is disabled")
        dcp.load({"model": state_dict}, checkpoint_id=step_dir, no_dist=True)
    tokenizer = Path(meta["tokenizer"]) if meta.get("tokenizer") else None
    if tokenizer is not None and not tokenizer.is_file():
        print(f"warning: {tokenizer} not found, {to} gets no tokenizer.model")
        tokenizer = None
    export(model, state_dict, Path(to), tokenizer, DTYPES[dtype or meta["config"]["export_dtype"]])


def main(argv: list[str]):
    if "--export" in argv:  # python train.py --export CKPT --to FOLDER [--export_dtype=bfloat16]
        try:
            ckpt, to = argv[argv.index("--export") + 1], argv[argv.index("--to") + 1]
        except (ValueError, IndexError):
            die("usage: python train.py --export CKPT_DIR --to FOLDER [--export_dtype=bfloat16]")
        dtype = next((a.split("=", 1)[1].strip("'\"") for a in argv if a.startswith("--export_dtype=")), None)
        if dtype not in (None, *DTYPES):
            die(f"export_dtype must be one of {list(DTYPES)} (default: the run's export_dtype)")
        export_checkpoint(ckpt, to, dtype)
    else:
        train(resolve_config(argv))


if __name__ == "__main__":
    main(sys.argv[1:])
