"""Llama 3 / 3.1 / 3.2 in one file (gpt-fast / nanoGPT style), plus Hugging Face and Meta checkpoint I/O.

Layout: q/k heads use Hugging Face's "rotate_half" RoPE layout, so HF safetensors load without any
permutation; Meta's consolidated.*.pth stores q/k rows interleaved and is un-permuted on load
(the inverse of transformers' convert_llama_weights_to_hf.permute).
Parameter names follow Meta's reference (tok_embeddings, layers.N.attention.wq, feed_forward.w1, ...).
"""

import json
import math
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import save_file

# Llama 3.1 RoPE scaling as in Meta's reference apply_scaling() and HF's config.json "rope_scaling".
LLAMA31_ROPE_SCALING = dict(factor=8.0, low_freq_factor=1.0, high_freq_factor=4.0,
                            original_max_position_embeddings=8192)
# Llama 3.2 1B/3B ship the same recipe with factor 32 (HF config.json of meta-llama/Llama-3.2-1B).
LLAMA32_ROPE_SCALING = dict(LLAMA31_ROPE_SCALING, factor=32.0)
ROPE_SCALING_KEYS = ("factor", "low_freq_factor", "high_freq_factor", "original_max_position_embeddings")


@dataclass
class ModelArgs:
    dim: int = 4096
    n_layers: int = 32
    n_heads: int = 32
    n_kv_heads: int = 8
    vocab_size: int = 128256
    ffn_dim: int = 14336
    norm_eps: float = 1e-5
    rope_theta: float = 500000.0
    rope_scaling: dict | None = None  # Llama 3.1 style, keys as in HF config.json (ROPE_SCALING_KEYS)
    max_seq_len: int = 8192
    tie_embeddings: bool = False

    @property
    def head_dim(self) -> int:
        return self.dim // self.n_heads


# Constants from Meta's params.json / HF config.json of each release.
PRESETS: dict[str, ModelArgs] = {
    "llama3_8b": ModelArgs(),
    "llama31_8b": ModelArgs(rope_scaling=dict(LLAMA31_ROPE_SCALING), max_seq_len=131072),
    "llama32_1b": ModelArgs(dim=2048, n_layers=16, n_heads=32, n_kv_heads=8, ffn_dim=8192,
                            rope_scaling=dict(LLAMA32_ROPE_SCALING), max_seq_len=131072, tie_embeddings=True),
    "llama32_3b": ModelArgs(dim=3072, n_layers=28, n_heads=24, n_kv_heads=8, ffn_dim=8192,
                            rope_scaling=dict(LLAMA32_ROPE_SCALING), max_seq_len=131072, tie_embeddings=True),
    # CPU presets; vocab_size is a placeholder, callers set it from the tokenizer.
    # ffn_dim follows Meta's rule multiple_of * ceil(int(8 * dim / 3) / multiple_of).
    "tiny": ModelArgs(dim=64, n_layers=2, n_heads=4, n_kv_heads=2, vocab_size=512, ffn_dim=192,
                      max_seq_len=256),
    # demo.py on 2 CPU cores: dim 128 trains at ~9-10k tok/s vs ~3.8k at dim 256 (192: ~6.7k), so the
    # 15-minute demo affords 2M tokens per run; at dim 256 it affords ~0.8M, too few to learn anything.
    "demo": ModelArgs(dim=128, n_layers=4, n_heads=4, n_kv_heads=2, vocab_size=2304, ffn_dim=384,
                      max_seq_len=1024),
}


# ----------------------------------------------------------------------------------------------------
# RoPE


def rope_inv_freq(args: ModelArgs, device=None) -> torch.Tensor:
    """Inverse frequencies [head_dim/2] with Llama 3.1 scaling; same math as transformers'
    _compute_llama3_parameters (and Meta's apply_scaling, with the constants read from the config)."""
    hd = args.head_dim
    exponents = torch.arange(0, hd, 2, dtype=torch.int64, device=device).float() / hd
    inv_freq = 1.0 / (args.rope_theta ** exponents)
    if args.rope_scaling is None:
        return inv_freq
    s = args.rope_scaling
    factor, low, high = s["factor"], s["low_freq_factor"], s["high_freq_factor"]
    old_context_len = s["original_max_position_embeddings"]
    low_freq_wavelen, high_freq_wavelen = old_context_len / low, old_context_len / high
    wavelen = 2 * math.pi / inv_freq
    # long wavelengths (low frequencies) are slowed down by `factor`, short ones kept, smooth in between
    scaled = torch.where(wavelen > low_freq_wavelen, inv_freq / factor, inv_freq)
    smooth = (old_context_len / wavelen - low) / (high - low)
    smoothed = (1 - smooth) * scaled / factor + smooth * scaled
    is_medium = (wavelen >= high_freq_wavelen) & (wavelen <= low_freq_wavelen)
    return torch.where(is_medium, smoothed, scaled)


def rope_cos_sin(args: ModelArgs, positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """cos and signed sin of shape positions.shape + [head_dim], fp32, in HF's rotate_half layout; the
    first half of sin is negated, for apply_rope. Computed on the fly (a few tiny ops): no buffer to
    re-create after building on the meta device."""
    freqs = positions.float()[..., None] * rope_inv_freq(args, positions.device)
    sin = freqs.sin()
    return torch.cat((freqs, freqs), dim=-1).cos(), torch.cat((-sin, sin), dim=-1)


def apply_rope(x: torch.Tensor, cos: torch.Tensor, signed_sin: torch.Tensor) -> torch.Tensor:
    """HF's x * cos + rotate_half(x) * sin, bit for bit: rotate_half(x) = cat(-x2, x1) equals
    roll(x) = cat(x2, x1) times the sign folded into signed_sin, and one roll costs half of chunk + neg +
    cat (forward and backward). x [B, H, T, hd]; cos/sin [T, hd] or [B, 1, T, hd], cast like HF."""
    cos, signed_sin = cos.to(x.dtype), signed_sin.to(x.dtype)
    return x * cos + x.roll(x.shape[-1] // 2, dims=-1) * signed_sin


# ----------------------------------------------------------------------------------------------------
# Model


class RMSNorm(nn.Module):
    def __init__(self, dim: int, eps: float):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, x):
        # normalise in fp32 (Meta's reference and HF both do), scale in the activation dtype
        return self.weight * F.rms_norm(x.float(), (x.shape[-1],), eps=self.eps).type_as(x)


class Attention(nn.Module):
    def __init__(self, args: ModelArgs):
        super().__init__()
        self.n_heads, self.n_kv_heads, self.head_dim = args.n_heads, args.n_kv_heads, args.head_dim
        self.wq = nn.Linear(args.dim, args.n_heads * self.head_dim, bias=False)
        self.wk = nn.Linear(args.dim, args.n_kv_heads * self.head_dim, bias=False)
        self.wv = nn.Linear(args.dim, args.n_kv_heads * self.head_dim, bias=False)
        self.wo = nn.Linear(args.n_heads * self.head_dim, args.dim, bias=False)
        self.kv_cache: tuple[torch.Tensor, torch.Tensor] | None = None  # set by Llama.setup_kv_cache

    def forward(self, x, cos, sin, mask=None, cache_slots=None):
        B, T, _ = x.shape
        q = self.wq(x).view(B, T, self.n_heads, self.head_dim).transpose(1, 2)
        k = self.wk(x).view(B, T, self.n_kv_heads, self.head_dim).transpose(1, 2)
        v = self.wv(x).view(B, T, self.n_kv_heads, self.head_dim).transpose(1, 2)
        q, k = apply_rope(q, cos, sin), apply_rope(k, cos, sin)
        if cache_slots is not None:
            # decoding: write k, v at cache_slots [T] and attend over the whole static cache, the mask
            # hiding empty slots (gpt-fast): every decode step has the same shapes, one compiled graph
            cache_k, cache_v = self.kv_cache
            k, v = cache_k.index_copy_(2, cache_slots, k), cache_v.index_copy_(2, cache_slots, v)
        gqa = self.n_kv_heads != self.n_heads
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=mask is None, enable_gqa=gqa)
        return self.wo(y.transpose(1, 2).reshape(B, T, -1))


class FeedForward(nn.Module):
    def __init__(self, args: ModelArgs):
        super().__init__()
        self.w1 = nn.Linear(args.dim, args.ffn_dim, bias=False)  # gate_proj
        self.w2 = nn.Linear(args.ffn_dim, args.dim, bias=False)  # down_proj
        self.w3 = nn.Linear(args.dim, args.ffn_dim, bias=False)  # up_proj

    def forward(self, x):
        return self.w2(F.silu(self.w1(x)) * self.w3(x))


class Block(nn.Module):
    def __init__(self, args: ModelArgs):
        super().__init__()
        self.attention_norm = RMSNorm(args.dim, args.norm_eps)
        self.attention = Attention(args)
        self.ffn_norm = RMSNorm(args.dim, args.norm_eps)
        self.feed_forward = FeedForward(args)

    def forward(self, x, cos, sin, mask=None, cache_slots=None):
        h = x + self.attention(self.attention_norm(x), cos, sin, mask, cache_slots)
        return h + self.feed_forward(self.ffn_norm(h))


class Llama(nn.Module):
    def __init__(self, args: ModelArgs):
        super().__init__()
        self.args = args
        self.tok_embeddings = nn.Embedding(args.vocab_size, args.dim)
        self.layers = nn.ModuleList(Block(args) for _ in range(args.n_layers))
        self.norm = RMSNorm(args.dim, args.norm_eps)
        self.output = nn.Linear(args.dim, args.vocab_size, bias=False)
        self.tie_weights()

    def tie_weights(self) -> None:
        """Re-tie output to tok_embeddings (Module.to_empty and assign-loading break the tie)."""
        if self.args.tie_embeddings:
            self.output.weight = self.tok_embeddings.weight

    def init_weights(self) -> None:
        self.tie_weights()
        std = 0.02  # HF LlamaConfig.initializer_range
        for name, p in self.named_parameters():
            if p.dim() == 1:
                nn.init.ones_(p)
            elif name.endswith(("attention.wo.weight", "feed_forward.w2.weight")):
                # GPT-2 / nanoGPT: scale residual-branch projections by 1/sqrt(2 * n_layers)
                nn.init.normal_(p, 0.0, std / math.sqrt(2 * self.args.n_layers))
            else:
                nn.init.normal_(p, 0.0, std)

    def forward(self, idx, targets=None, *, positions=None, mask=None):
        if positions is None:
            positions = torch.arange(idx.shape[1], device=idx.device)
        cos, sin = rope_cos_sin(self.args, positions)
        if positions.dim() == 2:
            cos, sin = cos.unsqueeze(1), sin.unsqueeze(1)  # [B, 1, T, hd] broadcasts over heads
        logits = self._logits(idx, cos, sin, None if mask is None else mask.unsqueeze(1))
        if targets is None:
            return logits, None
        loss = F.cross_entropy(logits.view(-1, logits.size(-1)), targets.view(-1), ignore_index=-1)
        return logits, loss

    def _logits(self, idx, cos, sin, mask, cache_slots=None, last_only=False):
        h = self.tok_embeddings(idx)
        for layer in self.layers:
            h = layer(h, cos, sin, mask, cache_slots)
        if last_only:  # decoding needs the last position only: skip the [B, T, V] output matmul
            h = h[:, -1:]
        return self.output(self.norm(h)).float()

    def num_params(self, exclude_embedding: bool = False) -> int:
        """Unique parameters (a tied matrix counts once). exclude_embedding drops the token embedding
        table (Kaplan et al.'s non-embedding N); a separate untied output matrix is kept."""
        n = sum(p.numel() for p in self.parameters())
        if exclude_embedding and not self.args.tie_embeddings:  # tied: the matrix is also the output layer
            n -= self.tok_embeddings.weight.numel()
        return n

    def flops_per_token(self, seq_len: int) -> float:
        """Training FLOPs per token: 6 * (matmul parameters) + 12 * L * dim * T for attention scores and
        values (PaLM paper, appendix B). The embedding lookup costs no FLOPs, the output matrix does."""
        a = self.args
        matmul_params = sum(p.numel() for n, p in self.named_parameters() if n != "tok_embeddings.weight")
        if a.tie_embeddings:
            matmul_params += self.tok_embeddings.weight.numel()
        return 6 * matmul_params + 12 * a.n_layers * a.n_heads * a.head_dim * seq_len

    # ------------------------------------------------------------------------------------------------
    # decoding with a static KV cache

    def setup_kv_cache(self, batch_size: int, max_len: int, dtype=None, device=None) -> None:
        w = self.output.weight
        shape = (batch_size, self.args.n_kv_heads, max_len, self.args.head_dim)
        for layer in self.layers:  # zeros, not empty: masked slots must not hold NaN (0 * NaN = NaN)
            layer.attention.kv_cache = (torch.zeros(shape, dtype=dtype or w.dtype, device=device or w.device),
                                        torch.zeros(shape, dtype=dtype or w.dtype, device=device or w.device))

    def clear_kv_cache(self) -> None:
        for layer in self.layers:
            layer.attention.kv_cache = None

    def forward_cached(self, idx, start_pos: int, positions, mask, last_only=False) -> torch.Tensor:
        """Logits [B, T, V] (or [B, 1, V] with last_only) for idx placed at cache slots
        start_pos..start_pos+T-1. positions [B, T] RoPE positions; mask [B, T, max_len] bool over all
        the cache slots (True = may attend; slots not yet written must be False)."""
        cos, sin = rope_cos_sin(self.args, positions)
        slots = torch.arange(start_pos, start_pos + idx.shape[1], device=idx.device)
        return self._logits(idx, cos.unsqueeze(1), sin.unsqueeze(1), mask.unsqueeze(1), slots, last_only)

    @torch.inference_mode()
    def generate(self, prompts: list[list[int]], max_new_tokens: int, temperature: float = 0.0,
                 top_p: float = 1.0, stop_tokens: Sequence[int] = (), generator=None,
                 include_stop: bool = False, compile: bool = False) -> list[list[int]]:
        """The new tokens of each prompt, cut at its first stop token; include_stop keeps that token
        last (a stop token may carry text: Llama 3's '.\\n' is one token). compile=True runs the
        one-token decode step through torch.compile (gpt-fast): worth it for long generations, as each
        new (batch, prompt + max_new_tokens) shape compiles anew (seconds on a CPU)."""
        if not prompts or any(len(p) == 0 for p in prompts):
            raise ValueError("generate: every prompt needs at least one token")
        if max_new_tokens <= 0:
            return [[] for _ in prompts]
        device = self.output.weight.device
        B, P = len(prompts), max(len(p) for p in prompts)
        total = P + max_new_tokens
        pad = torch.tensor([P - len(p) for p in prompts], device=device)
        tokens = torch.zeros(B, P, dtype=torch.long, device=device)
        for i, p in enumerate(prompts):  # left padding: all prompts end at column P-1
            tokens[i, P - len(p):] = torch.tensor(p, dtype=torch.long)
        cols = torch.arange(total, device=device)
        positions = (cols[None] - pad[:, None]).clamp(min=0)  # RoPE positions restart after the padding
        valid = (cols[None] >= pad[:, None])[:, None, None, :]  # [B, 1, 1, total]: key slot holds a token
        causal = cols[None, :] <= cols[:P, None]  # [P, total]
        # a pad query attends to itself only, so that no row is fully masked (SDPA would give NaN)
        prompt_mask = (causal & valid) | (cols[None, :] == cols[:P, None])
        cos, sin = (x.unsqueeze(1) for x in rope_cos_sin(self.args, positions))  # once, not per step
        stop = torch.tensor(list(stop_tokens), dtype=torch.long, device=device)
        decode_step = torch.compile(self._logits, fullgraph=True) if compile else self._logits
        self.setup_kv_cache(B, total)
        try:
            logits = self._logits(tokens, cos[:, :, :P], sin[:, :, :P], prompt_mask, cols[:P], last_only=True)
            out, done = [], torch.zeros(B, dtype=torch.bool, device=device)
            slot = torch.full((1,), P, device=device)  # a tensor, so that every step has the same inputs
            for t in range(P, total):
                next_token = sample(logits[:, -1], temperature, top_p, generator)
                out.append(next_token)
                if len(stop):
                    done |= torch.isin(next_token, stop)
                if t == total - 1 or (len(stop) and bool(done.all())):
                    break
                # the new token sees every real token up to and including itself
                logits = decode_step(next_token[:, None], cos[:, :, t:t + 1], sin[:, :, t:t + 1],
                                     valid & (cols <= slot), slot, last_only=True)
                slot += 1
        finally:
            self.clear_kv_cache()
        new = torch.stack(out, dim=1).tolist()
        stops, keep = set(stop_tokens), int(include_stop)
        return [next((row[:j + keep] for j, tok in enumerate(row) if tok in stops), row) for row in new]


def sample(logits: torch.Tensor, temperature: float, top_p: float, generator=None) -> torch.Tensor:
    """Next token per row from logits [B, V]: greedy at temperature 0, else nucleus (top-p) sampling."""
    if temperature <= 0:
        return logits.argmax(dim=-1)
    probs = torch.softmax(logits.float() / temperature, dim=-1)
    if top_p < 1.0:
        sorted_probs, order = probs.sort(dim=-1, descending=True)
        # drop a token when the tokens ranked before it already cover top_p (the first one always stays)
        sorted_probs[(sorted_probs.cumsum(dim=-1) - sorted_probs) > top_p] = 0.0
        probs = torch.zeros_like(probs).scatter_(-1, order, sorted_probs)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)


# ----------------------------------------------------------------------------------------------------
# Checkpoint I/O: HF folders (config.json + safetensors) and Meta folders (params.json + consolidated.*.pth)


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


def _meta_permute(w: torch.Tensor, n_heads: int) -> torch.Tensor:
    """Our (HF) q/k layout -> Meta's interleaved layout (used to write Meta-format test fixtures)."""
    rows, cols = w.shape
    return w.view(n_heads, 2, rows // n_heads // 2, cols).transpose(1, 2).reshape(rows, cols)


# Meta model-parallel shards: column-parallel weights split rows, row-parallel ones split columns
META_CAT_DIM = {"wq": 0, "wk": 0, "wv": 0, "w1": 0, "w3": 0, "output": 0, "tok_embeddings": 0,
                "wo": 1, "w2": 1}


def _checkpoint_items(folder) -> Iterator[tuple[Path, str, torch.Tensor]]:
    """(file, our name, tensor in our layout), one tensor at a time."""
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
                    yield shard, name, f.get_tensor(key)
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


def checkpoint_tensors(folder) -> Iterator[tuple[str, torch.Tensor]]:
    for _, name, tensor in _checkpoint_items(folder):
        yield name, tensor


def load_hf(folder, device="cpu", dtype=None) -> Llama:
    """Llama from an HF folder or a Meta consolidated folder. Built on the meta device and filled tensor
    by tensor (assign), so an 8B checkpoint never sits in RAM twice."""
    args = read_config(folder)
    is_meta = not (Path(folder) / "config.json").exists()
    with torch.device("meta"):
        model = Llama(args)
    expected = {n: p.shape for n, p in model.named_parameters(remove_duplicate=False)}
    seen: dict[str, Path] = {}
    for path, name, tensor in _checkpoint_items(folder):
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


def hf_config(args: ModelArgs, dtype: torch.dtype) -> dict:
    """config.json for transformers' LlamaForCausalLM (the keys Meta's own HF repos use)."""
    dtype_name = str(dtype).removeprefix("torch.")
    rope_scaling = None if args.rope_scaling is None else {**args.rope_scaling, "rope_type": "llama3"}
    return {
        "architectures": ["LlamaForCausalLM"], "model_type": "llama",
        "hidden_size": args.dim, "intermediate_size": args.ffn_dim, "num_hidden_layers": args.n_layers,
        "num_attention_heads": args.n_heads, "num_key_value_heads": args.n_kv_heads,
        "head_dim": args.head_dim, "vocab_size": args.vocab_size, "rms_norm_eps": args.norm_eps,
        "rope_theta": args.rope_theta, "rope_scaling": rope_scaling,
        "max_position_embeddings": args.max_seq_len, "tie_word_embeddings": args.tie_embeddings,
        "hidden_act": "silu", "attention_bias": False, "mlp_bias": False, "initializer_range": 0.02,
        "torch_dtype": dtype_name, "dtype": dtype_name, "use_cache": True,
    }


def save_hf(model: Llama, folder, dtype=None, state_dict=None) -> None:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state_dict = model.state_dict() if state_dict is None else state_dict
    dtype = dtype or next(iter(state_dict.values())).dtype
    tensors = {}
    for name, t in state_dict.items():
        if name == "output.weight" and model.args.tie_embeddings:
            continue  # safetensors refuses shared storage; transformers re-ties from tie_word_embeddings
        tensors[ours_to_hf(name)] = t.detach().to(device="cpu", dtype=dtype).contiguous()
    # write to temporary names, then rename: no half-written folder on a crash
    tmp = folder / "model.safetensors.tmp"
    save_file(tensors, str(tmp), metadata={"format": "pt"})
    os.replace(tmp, folder / "model.safetensors")
    tmp = folder / "config.json.tmp"
    tmp.write_text(json.dumps(hf_config(model.args, dtype), indent=2) + "\n")
    os.replace(tmp, folder / "config.json")
