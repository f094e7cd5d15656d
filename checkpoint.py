"""Checkpoints on disk, kept apart from the model (as torchtitan does): Hugging Face and Meta folders in,
complete Hugging Face folders out, and our training checkpoints exported to Hugging Face folders.

    python checkpoint.py out/demo_bi/ckpt --to out/demo_bi/hf_latest        # a run's newest checkpoint
    python checkpoint.py out/demo_bi/ckpt/step_200 --to DIR --dtype bfloat16

In: a Hugging Face folder (config.json + model.safetensors or shards with model.safetensors.index.json)
or a Meta folder (params.json + consolidated.*.pth, whose q/k rows are interleaved and are un-permuted
here: the inverse of transformers' convert_llama_weights_to_hf.permute). Tensors are read one at a time
(mmap), so an 8B checkpoint never sits in memory twice.
Out: config.json, generation_config.json, safetensors (one file, or shards plus an index above the Hub's
5 GB), and the tokenizer as tokenizer.model (tiktoken) and tokenizer.json / tokenizer_config.json /
special_tokens_map.json, so transformers, vLLM and lm-eval load the folder as it is.
Training checkpoints (train.py): out_dir/ckpt/step_N holds torch.distributed.checkpoint shards of any
world size and meta.json; out_dir/ckpt/latest names the newest complete one.
"""

import argparse
import json
import os
import re
import shutil
import warnings
from collections.abc import Iterator
from pathlib import Path

import torch
import torch.distributed.checkpoint as dcp
import torch.nn as nn
from safetensors import safe_open
from safetensors.torch import save_file

from common import HelpFormatter
from model import LLAMA31_ROPE_SCALING, ROPE_SCALING_KEYS, Llama, ModelArgs
from tokenizer import HF_TOKENIZER_FILES, Tokenizer, ranks_text, write_hf_tokenizer

SHARD_BYTES = 5 * 10**9  # transformers' default max_shard_size, "5GB"
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
# what an export writes: the only files it ever replaces in an existing folder
EXPORT_FILE = re.compile(r"(config|generation_config|model\.safetensors\.index|special_tokens_map|tokenizer"
                         r"|tokenizer_config)\.json|model(-\d{5}-of-\d{5})?\.safetensors|tokenizer\.model")


class CheckpointError(ValueError):
    """A checkpoint folder that cannot be used; the message names the file and the key."""


# HF LlamaForCausalLM name -> our name (per layer: model.layers.N.<hf> -> layers.N.<ours>)
HF_LAYER_NAMES = {
    "self_attn.q_proj.weight": "attention.wq.weight", "self_attn.k_proj.weight": "attention.wk.weight",
    "self_attn.v_proj.weight": "attention.wv.weight", "self_attn.o_proj.weight": "attention.wo.weight",
    "mlp.gate_proj.weight": "feed_forward.w1.weight", "mlp.down_proj.weight": "feed_forward.w2.weight",
    "mlp.up_proj.weight": "feed_forward.w3.weight", "input_layernorm.weight": "attention_norm.weight",
    "post_attention_layernorm.weight": "ffn_norm.weight",
}
HF_TOP_NAMES = {"model.embed_tokens.weight": "tok_embeddings.weight", "model.norm.weight": "norm.weight",
                "lm_head.weight": "output.weight"}


def hf_to_ours(name: str) -> str | None:
    if name in HF_TOP_NAMES:
        return HF_TOP_NAMES[name]
    parts = name.split(".", 3)  # model, layers, N, rest
    if len(parts) == 4 and parts[:2] == ["model", "layers"] and parts[3] in HF_LAYER_NAMES:
        return f"layers.{parts[2]}.{HF_LAYER_NAMES[parts[3]]}"
    return None


OURS_TOP_NAMES = {v: k for k, v in HF_TOP_NAMES.items()}
OURS_LAYER_NAMES = {v: k for k, v in HF_LAYER_NAMES.items()}


def ours_to_hf(name: str) -> str:
    if name in OURS_TOP_NAMES:
        return OURS_TOP_NAMES[name]
    _, n, rest = name.split(".", 2)
    return f"model.layers.{n}.{OURS_LAYER_NAMES[rest]}"


def _read_json(path: Path) -> dict:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{path}: cannot read JSON ({e})") from None


def _folder(folder) -> Path:
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"{folder}: checkpoint folder not found")
    if not (folder / "config.json").exists() and not (folder / "params.json").exists():
        raise FileNotFoundError(f"{folder}: neither config.json (Hugging Face) nor params.json (Meta) found")
    return folder


def _require(cfg: dict, key: str, path: Path):
    if key not in cfg:
        raise CheckpointError(f"{path}: key '{key}' missing")
    return cfg[key]


def read_config(folder) -> ModelArgs:
    folder = _folder(folder)
    if (folder / "config.json").exists():
        return _read_hf_config(folder / "config.json")
    return _read_meta_params(folder / "params.json")


def _read_hf_config(path: Path) -> ModelArgs:
    cfg = _read_json(path)
    if cfg.get("model_type") != "llama" and "LlamaForCausalLM" not in (cfg.get("architectures") or []):
        raise CheckpointError(f"{path}: key 'model_type' is {cfg.get('model_type')!r} "
                              f"(architectures {cfg.get('architectures')}), expected 'llama'")
    for key, expected in (("hidden_act", "silu"), ("attention_bias", False), ("mlp_bias", False)):
        if cfg.get(key, expected) != expected:
            raise CheckpointError(f"{path}: key '{key}' is {cfg[key]!r}, only {expected!r} is supported")
    dim, n_heads = _require(cfg, "hidden_size", path), _require(cfg, "num_attention_heads", path)
    if cfg.get("head_dim") not in (None, dim // n_heads):
        raise CheckpointError(f"{path}: key 'head_dim' is {cfg['head_dim']}, expected hidden_size / heads")
    # transformers >= 5 writes rope_parameters (with rope_theta inside); 4.x and Meta's HF repos write
    # rope_theta + rope_scaling at top level
    rope = cfg.get("rope_parameters") or cfg.get("rope_scaling") or {}
    rope_type = rope.get("rope_type", rope.get("type", "default"))
    if rope_type == "llama3":
        key = "rope_parameters" if cfg.get("rope_parameters") else "rope_scaling"
        scaling = {k: rope[k] for k in ROPE_SCALING_KEYS[:3] if k in rope}
        missing = [k for k in ROPE_SCALING_KEYS[:3] if k not in scaling]
        if missing:
            raise CheckpointError(f"{path}: key '{key}.{missing[0]}' missing")
        scaling["original_max_position_embeddings"] = rope.get(
            "original_max_position_embeddings", cfg.get("max_position_embeddings", 8192))
    elif rope_type == "default":
        scaling = None
    else:
        raise CheckpointError(f"{path}: key 'rope_type' is {rope_type!r}, "
                              "only 'llama3' and 'default' are supported")
    return ModelArgs(
        dim=dim, n_layers=_require(cfg, "num_hidden_layers", path), n_heads=n_heads,
        n_kv_heads=cfg.get("num_key_value_heads") or n_heads, vocab_size=_require(cfg, "vocab_size", path),
        ffn_dim=_require(cfg, "intermediate_size", path), norm_eps=cfg.get("rms_norm_eps", 1e-6),
        rope_theta=rope.get("rope_theta", cfg.get("rope_theta", 10000.0)), rope_scaling=scaling,
        max_seq_len=cfg.get("max_position_embeddings", 8192),
        tie_embeddings=bool(cfg.get("tie_word_embeddings", False)))


def _read_meta_params(path: Path) -> ModelArgs:
    p = _read_json(path)
    p = p.get("model", p)
    dim = _require(p, "dim", path)
    vocab = _require(p, "vocab_size", path)
    if vocab <= 0:
        raise CheckpointError(f"{path}: key 'vocab_size' is {vocab}, expected the tokenizer's size")
    # Meta's FeedForward: hidden = int(2 * 4 * dim / 3), times ffn_dim_multiplier, rounded up to multiple_of
    hidden = int(2 * 4 * dim / 3)
    if p.get("ffn_dim_multiplier") is not None:
        hidden = int(p["ffn_dim_multiplier"] * hidden)
    multiple_of = p.get("multiple_of", 256)
    hidden = multiple_of * ((hidden + multiple_of - 1) // multiple_of)
    scaling = None
    if p.get("use_scaled_rope"):
        # Meta's apply_scaling() hard-codes factor 8; a params.json may override it
        scaling = dict(LLAMA31_ROPE_SCALING, factor=float(p.get("rope_scaling_factor") or 8.0))
    return ModelArgs(dim=dim, n_layers=_require(p, "n_layers", path), n_heads=_require(p, "n_heads", path),
                     n_kv_heads=p.get("n_kv_heads") or p["n_heads"], vocab_size=vocab, ffn_dim=hidden,
                     norm_eps=p.get("norm_eps", 1e-5), rope_theta=p.get("rope_theta", 500000.0),
                     rope_scaling=scaling, max_seq_len=131072 if scaling else 8192)


def _hf_shards(folder: Path) -> list[Path]:
    if (folder / "model.safetensors").exists():  # same preference order as transformers
        return [folder / "model.safetensors"]
    index = folder / "model.safetensors.index.json"
    if index.exists():
        weight_map = _require(_read_json(index), "weight_map", index)
        shards = [folder / f for f in dict.fromkeys(weight_map.values())]
        for shard in shards:
            if not shard.exists():
                raise FileNotFoundError(f"{index}: shard {shard.name} listed in 'weight_map' not found")
        return shards
    raise FileNotFoundError(f"{folder}: neither model.safetensors nor model.safetensors.index.json found")


def _meta_unpermute(w: torch.Tensor, n_heads: int) -> torch.Tensor:
    # Meta interleaves each head's rotary pairs (x0, x1), (x2, x3), ...; HF's rotate_half layout holds the
    # first halves then the second halves. Inverse of convert_llama_weights_to_hf.permute().
    rows, cols = w.shape
    return w.view(n_heads, rows // n_heads // 2, 2, cols).transpose(1, 2).reshape(rows, cols)


# Meta model-parallel shards: column-parallel weights split rows, row-parallel ones split columns
META_CAT_DIM = {"wq": 0, "wk": 0, "wv": 0, "w1": 0, "w3": 0, "output": 0, "tok_embeddings": 0,
                "wo": 1, "w2": 1}


def checkpoint_tensors(folder) -> Iterator[tuple[Path, str, torch.Tensor]]:
    """(file, our name, tensor in our layout) of a HF or Meta folder, one tensor at a time."""
    folder = _folder(folder)
    if (folder / "config.json").exists():
        for shard in _hf_shards(folder):
            try:
                f = safe_open(str(shard), framework="pt")  # mmap: one tensor in RAM at a time
            except Exception as e:
                raise CheckpointError(f"{shard}: cannot read safetensors ({e})") from None
            with f:
                for key in f.keys():
                    if key.endswith("rotary_emb.inv_freq"):  # stale buffer in old exports
                        continue
                    name = hf_to_ours(key)
                    if name is None:
                        raise CheckpointError(f"{shard}: unexpected key '{key}' for LlamaForCausalLM")
                    try:  # a truncated file has a valid header: the tensor read is what fails
                        tensor = f.get_tensor(key)
                    except Exception as e:
                        raise CheckpointError(f"{shard}: cannot read tensor '{key}' ({e})") from None
                    yield shard, name, tensor
        return
    args = read_config(folder)
    shards = sorted(folder.glob("consolidated.*.pth"))
    if not shards:
        raise FileNotFoundError(f"{folder}: params.json but no consolidated.*.pth")
    try:  # mmap: tensors are paged in on use, never all in RAM
        loaded = [torch.load(s, map_location="cpu", mmap=True, weights_only=True) for s in shards]
    except Exception as e:
        raise CheckpointError(f"{folder}: cannot read consolidated.*.pth ({e})") from None
    for key in loaded[0]:
        if key == "rope.freqs":
            continue
        parts = [sd[key] for sd in loaded]
        leaf = key.split(".")[-2]
        if len(parts) > 1 and leaf in META_CAT_DIM:
            w = torch.cat(parts, dim=META_CAT_DIM[leaf])
        else:
            w = parts[0]  # norms are replicated across model-parallel shards
        if leaf == "wq":
            w = _meta_unpermute(w, args.n_heads)
        elif leaf == "wk":
            w = _meta_unpermute(w, args.n_kv_heads)
        yield shards[0], key, w


def load_hf(folder, device="cpu", dtype=None) -> Llama:
    """Llama from an HF folder or a Meta consolidated folder. Built on the meta device and filled tensor
    by tensor (assign), so an 8B checkpoint never sits in RAM twice."""
    args = read_config(folder)
    is_meta = not (Path(folder) / "config.json").exists()
    with torch.device("meta"):
        model = Llama(args)
    expected = {n: p.shape for n, p in model.named_parameters(remove_duplicate=False)}
    seen: dict[str, Path] = {}
    for path, name, tensor in checkpoint_tensors(folder):
        if name not in expected:
            raise CheckpointError(f"{path}: key '{name}' does not fit the config (n_layers={args.n_layers})")
        if tuple(tensor.shape) != tuple(expected[name]):
            raise CheckpointError(f"{path}: key '{name}' has shape {tuple(tensor.shape)}, "
                                  f"config expects {tuple(expected[name])}")
        module_name, _, leaf = name.rpartition(".")
        t = tensor.to(device=device, dtype=dtype or tensor.dtype)
        setattr(model.get_submodule(module_name), leaf, nn.Parameter(t, requires_grad=True))
        seen[name] = path
    if "output.weight" not in seen and not args.tie_embeddings and is_meta:
        args.tie_embeddings = True  # Meta folder without an output matrix: tied (Llama 3.2)
    if args.tie_embeddings:
        expected.pop("output.weight")
        seen.pop("output.weight", None)
        model.tie_weights()
    missing = [n for n in expected if n not in seen]
    if missing:
        files = sorted({str(p) for p in seen.values()}) or [str(folder)]
        raise CheckpointError(f"{', '.join(files)}: key '{missing[0]}' missing "
                              f"({len(missing)} of {len(expected)} tensors missing)")
    return model


def hf_config(args: ModelArgs, dtype: torch.dtype, tok: Tokenizer | None) -> dict:
    """config.json for transformers' LlamaForCausalLM (the keys Meta's own HF repos use)."""
    dtype_name = str(dtype).removeprefix("torch.")
    rope_scaling = None if args.rope_scaling is None else {**args.rope_scaling, "rope_type": "llama3"}
    ids = {"bos_token_id": tok.bos_id, "eos_token_id": tok.eos_id} if tok else {}
    return {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama",
        "hidden_size": args.dim, "intermediate_size": args.ffn_dim, "num_hidden_layers": args.n_layers,
        "num_attention_heads": args.n_heads, "num_key_value_heads": args.n_kv_heads,
        "head_dim": args.head_dim, "vocab_size": args.vocab_size, "rms_norm_eps": args.norm_eps,
        "rope_theta": args.rope_theta, "rope_scaling": rope_scaling,
        "max_position_embeddings": args.max_seq_len, "tie_word_embeddings": args.tie_embeddings,
        "hidden_act": "silu", "attention_bias": False, "mlp_bias": False, "initializer_range": 0.02,
        "torch_dtype": dtype_name, "dtype": dtype_name, "use_cache": True, **ids,
    }


def check_export_folder(folder) -> None:
    """An export goes into a new or empty folder, or replaces a previous export (config.json and only the
    files an export writes), never anything else: a run's checkpoints, a log, a user's own files."""
    folder = Path(folder)
    names = sorted(p.name for p in folder.iterdir()) if folder.is_dir() else []
    foreign = [n for n in names if not EXPORT_FILE.fullmatch(n)]
    if names and "config.json" not in names:  # no config.json: not an export of ours, whatever the names
        foreign = names
    if foreign:
        more = " ..." if len(foreign) > 4 else ""
        raise CheckpointError(f"{folder}: holds {', '.join(foreign[:4])}{more}, which is not a previous "
                              "export: export into a new or empty folder")


def save_hf(model: Llama, folder, dtype=None, state_dict=None, tokenizer=None, init=None,
            max_shard_bytes: int = SHARD_BYTES) -> None:
    """A complete Hugging Face folder, built as a sibling and swapped in (a crash leaves the old folder or
    the new one). tokenizer: the run's tokenizer file, written as tokenizer.model plus tokenizer.json & co;
    those come unchanged from `init` (a HF folder) when it has them for the same ranks."""
    folder = Path(folder)
    check_export_folder(folder)
    state_dict = model.state_dict() if state_dict is None else state_dict
    dtype = dtype or next(iter(state_dict.values())).dtype
    tensors = {ours_to_hf(name): t.detach().to(device="cpu", dtype=dtype).contiguous()
               for name, t in state_dict.items()  # tied: transformers re-ties from tie_word_embeddings
               if not (name == "output.weight" and model.args.tie_embeddings)}
    shards, size = [[]], 0
    for name, t in tensors.items():
        if shards[-1] and size + t.nbytes > max_shard_bytes:
            shards, size = shards + [[]], 0
        shards[-1].append(name)
        size += t.nbytes
    tmp = folder.with_name(f".{folder.name}.export-tmp")
    shutil.rmtree(tmp, ignore_errors=True)  # a killed export's leftover (the name is ours)
    tmp.mkdir(parents=True)
    names = ["model.safetensors"] if len(shards) == 1 else [
        f"model-{i:05d}-of-{len(shards):05d}.safetensors" for i in range(1, len(shards) + 1)]
    for file, keys in zip(names, shards):
        save_file({k: tensors[k] for k in keys}, str(tmp / file), metadata={"format": "pt"})
    if len(shards) > 1:
        index = {"metadata": {"total_size": sum(t.nbytes for t in tensors.values())},
                 "weight_map": {k: file for file, keys in zip(names, shards) for k in keys}}
        (tmp / "model.safetensors.index.json").write_text(json.dumps(index, indent=2) + "\n")
    tok = Tokenizer(tokenizer) if tokenizer else None
    (tmp / "config.json").write_text(json.dumps(hf_config(model.args, dtype, tok), indent=2) + "\n")
    if tok:
        (tmp / "generation_config.json").write_text(json.dumps(
            {"bos_token_id": tok.bos_id, "eos_token_id": tok.eos_id}, indent=2) + "\n")
        (tmp / "tokenizer.model").write_bytes(ranks_text(tok.ranks))
        carry = init is not None and all((Path(init) / f).is_file() for f in HF_TOKENIZER_FILES)
        if carry and Tokenizer(Path(init) / "tokenizer.json").sha256 == tok.sha256:
            for f in HF_TOKENIZER_FILES:
                shutil.copyfile(Path(init) / f, tmp / f)
        else:
            write_hf_tokenizer(tok, tmp, model.args.max_seq_len)
    if folder.exists():  # only a previous export's files (checked above): replace it as a whole
        old = folder.with_name(f".{folder.name}.export-old")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(folder, old)
        os.replace(tmp, folder)
        shutil.rmtree(old)
    else:
        os.replace(tmp, folder)


# ----------------------------------------------------------------------------------------------------
# our training checkpoints (written by train.py)


def find_step_dir(path) -> Path | None:
    """A step dir (has meta.json), or a ckpt dir / out_dir whose `latest` names one; None if not ours."""
    path = Path(path)
    if (path / "meta.json").is_file():
        return path
    for ckpt_dir in (path, path / "ckpt"):
        if (ckpt_dir / "latest").is_file():
            step_dir = ckpt_dir / (ckpt_dir / "latest").read_text().strip()
            if not (step_dir / "meta.json").is_file():
                raise CheckpointError(f"{ckpt_dir / 'latest'} names {step_dir}, which is not a complete "
                                      "checkpoint")
            return step_dir
    return None


def export(ckpt, to, dtype: str | None = None) -> Path:
    """A training checkpoint (any world size) as a Hugging Face folder, read in this one process: DCP loads
    the shards into full tensors without a process group."""
    step_dir = find_step_dir(ckpt)
    if step_dir is None:
        raise CheckpointError(f"{ckpt}: not a checkpoint of train.py (no meta.json, no latest)")
    check_export_folder(to)
    meta = _read_json(step_dir / "meta.json")
    with torch.device("meta"):
        model = Llama(ModelArgs(**meta["model_args"]))
    model.to_empty(device="cpu")
    state_dict = model.state_dict()
    with warnings.catch_warnings():  # "assuming the intent is to load in a single process": it is
        warnings.filterwarnings("ignore", message="torch.distributed is disabled")
        dcp.load({"model": state_dict}, checkpoint_id=step_dir, no_dist=True)
    tokenizer = meta.get("tokenizer")
    if tokenizer and not Path(tokenizer).is_file():
        print(f"warning: {tokenizer} (the run's tokenizer) not found: {to} gets no tokenizer files")
        tokenizer = None
    init = meta["config"].get("init")
    save_hf(model, to, DTYPES[dtype or meta["config"]["export_dtype"]], state_dict, tokenizer,
            init if init and (Path(init) / "config.json").is_file() else None)
    return step_dir


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    p.add_argument("ckpt", help="a step dir (out_dir/ckpt/step_N), or a ckpt dir / out_dir: its latest")
    p.add_argument("--to", required=True, help="new or empty folder (or a previous export, replaced)")
    p.add_argument("--dtype", choices=list(DTYPES), help="of the safetensors (default: the run's one)")
    args = p.parse_args(argv)
    try:
        step_dir = export(args.ckpt, args.to, args.dtype)
    except (CheckpointError, OSError) as e:
        raise SystemExit(f"checkpoint.py: error: {e}") from None
    print(f"exported {step_dir} -> {args.to}")


if __name__ == "__main__":
    main()
