"""The model under FSDP2, the one code path of training: the process group (one process or torchrun's),
the model built on the meta device and sharded block by block, and its shards filled one full tensor at a
time from a scratch init, a Hugging Face / Meta folder or one of our checkpoints, so no rank ever holds
more than its shard plus one full tensor. plan.py shards the same way over a simulated world.
"""

import os

import torch
import torch.distributed as dist
import torch.distributed.checkpoint as dcp
from torch.distributed.algorithms._checkpoint.checkpoint_wrapper import checkpoint_wrapper
from torch.distributed.checkpoint.state_dict import get_model_state_dict, set_model_state_dict
from torch.distributed.device_mesh import init_device_mesh
from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard
from torch.distributed.tensor import distribute_tensor

from checkpoint import DTYPES, CheckpointError, checkpoint_tensors
from common import die_with_parent
from model import Llama, ModelArgs, init_parameter


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
            raise CheckpointError(f"{what}: unexpected tensor {name}")
        p = params[name]
        if tuple(full.shape) != tuple(p.shape):
            raise CheckpointError(f"{what}: {name} has shape {tuple(full.shape)}, the model expects "
                                  f"{tuple(p.shape)}")
        shard = distribute_tensor(full.to(p.device, p.dtype), p.device_mesh, p.placements, src_data_rank=None)
        p.to_local().copy_(shard.to_local())
        loaded.add(name)
    if missing := sorted(set(params) - loaded):
        raise CheckpointError(f"{what}: missing tensors {missing[:5]}{' ...' if len(missing) > 5 else ''}")


def scratch_tensors(model, seed: int, device):
    """A fresh init, one full tensor at a time (the same weights whatever the world size)."""
    for name, p in parameter_names(model).items():
        yield name, init_parameter(model.args, name, torch.empty(p.shape, device=device), seed)


def shard_model(args: ModelArgs, cfg: dict, mesh) -> Llama:
    """The model on the meta device, each block (then the rest) sharded by FSDP2 over the mesh."""
    with torch.device("meta"):
        model = Llama(args)
    mp = MixedPrecisionPolicy(param_dtype=DTYPES[cfg["dtype"]], reduce_dtype=torch.float32)
    for i, block in enumerate(model.layers):
        if cfg["activation_checkpointing"]:
            block = model.layers[i] = checkpoint_wrapper(block)
        if cfg["compile"]:
            block.compile()  # in place: parameter names stay unchanged
        # the last block's params are needed again at once by backward: no point resharding them
        fully_shard(block, mesh=mesh, mp_policy=mp, reshard_after_forward=i < len(model.layers) - 1)
    fully_shard(model, mesh=mesh, mp_policy=mp)  # embeddings, final norm, output
    return model


def build_model(args: ModelArgs, cfg: dict, mesh, device: torch.device, source) -> Llama:
    """The sharded model, filled from source: ("scratch", None), ("hf", a HF or Meta folder) or ("ckpt", a
    step dir of ours). Bad checkpoint files raise CheckpointError naming the file and the tensor."""
    model = shard_model(args, cfg, mesh)
    model.to_empty(device=device)  # uninitialised shards: every path below overwrites all of them
    kind, path = source
    if kind == "scratch":
        load_full_tensors(model, scratch_tensors(model, cfg["seed"], device), "scratch init")
    elif kind == "hf":
        load_full_tensors(model, ((n, t) for _, n, t in checkpoint_tensors(path)), f"init {path}")
    else:
        model_sd = get_model_state_dict(model)
        dcp.load({"model": model_sd}, checkpoint_id=path)
        set_model_state_dict(model, model_sd)
    return model


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
        die_with_parent()  # torchrun killed (even its process group by kill -9): no rank runs on alone
        dist.init_process_group(backend)
    else:
        dist.init_process_group(backend, store=dist.HashStore(), rank=0, world_size=1)
    return rank, world, device, init_device_mesh(device_type, (world,))
