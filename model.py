"""Llama 3 / 3.1 / 3.2 in one file, gpt-fast / nanoGPT style: the model, RoPE (with 3.1 scaling), a
static KV cache and batched generation. Reading and writing checkpoints lives in checkpoint.py.

q/k heads use Hugging Face's "rotate_half" RoPE layout, so HF safetensors load without any permutation.
Parameter names follow Meta's reference (tok_embeddings, layers.N.attention.wq, feed_forward.w1, ...).
"""

import math
import zlib
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F

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
    # demo.py on 2 CPU cores without bf16 hardware (AMD EPYC, AVX2, fp32): dim 96 trains at ~1.4x dim 128's
    # tokens/s and reached the same chrF++ after the same tokens (4.1M: 55 vs 40-51, the emergence varies)
    "demo": ModelArgs(dim=96, n_layers=4, n_heads=4, n_kv_heads=2, vocab_size=2048, ffn_dim=256,
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

    def init_weights(self, seed: int = 0) -> None:
        self.tie_weights()
        for name, p in self.named_parameters():
            init_parameter(self.args, name, p.data, seed)

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
        values (PaLM paper, appendix B). The embedding lookup and the norms' scales cost no matmul, the
        output matrix does (a tied one too)."""
        a = self.args
        matmul_params = sum(p.numel() for n, p in self.named_parameters()
                            if p.dim() == 2 and n != "tok_embeddings.weight")
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


def init_parameter(args: ModelArgs, name: str, tensor: torch.Tensor, seed: int) -> torch.Tensor:
    """HF / nanoGPT init of one parameter from a generator of its own (seed, name): the same weights whether
    the model is built whole or one full tensor at a time and sharded (train.py), on any number of ranks."""
    if tensor.dim() == 1:
        return tensor.fill_(1.0)  # RMSNorm weights
    generator = torch.Generator(tensor.device).manual_seed(seed * 1_000_003 + zlib.crc32(name.encode()))
    std = 0.02  # HF LlamaConfig.initializer_range
    if name.endswith(("attention.wo.weight", "feed_forward.w2.weight")):
        std /= math.sqrt(2 * args.n_layers)  # GPT-2 / nanoGPT: residual-branch projections
    return tensor.normal_(0.0, std, generator=generator)


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
