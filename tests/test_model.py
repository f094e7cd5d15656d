"""model.py against transformers' LlamaForCausalLM (test oracle only), plus cache, masks, presets."""

import json
import os
import shutil
from dataclasses import replace

import pytest
import torch
import torch.nn.functional as F

from checkpoint import load_hf, read_config, save_hf
from model import PRESETS, Llama, rope_inv_freq

# GQA + untied + Llama 3.1 scaling with a small original context (32) so that the 80-token test sequences
# reach far beyond it; rope_theta 1e4 with head_dim 16 gives wavelengths 6.3, 19.9, 62.8, ... so all three
# branches of the scaling (kept < 8, smoothed 8..32, divided > 32) are used. And a tied, plain multi-head
# (n_kv_heads == n_heads) variant without scaling.
SCALED = replace(PRESETS["tiny"], vocab_size=256, rope_theta=10000.0, rope_scaling=dict(
    factor=8.0, low_freq_factor=1.0, high_freq_factor=4.0, original_max_position_embeddings=32))
TIED = replace(PRESETS["tiny"], vocab_size=256, n_kv_heads=4, tie_embeddings=True)
CONFIGS = {"gqa_untied_scaled": SCALED, "tied": TIED}


def random_model(args, seed=0):
    """Weights large enough that logits spread (std 0.02 init gives near-uniform logits) and norms != 1."""
    torch.manual_seed(seed)
    model = Llama(args)
    model.init_weights()
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn_like(p) * 0.1 + 1.0 if p.dim() == 1 else torch.randn_like(p) * 0.15)
    return model.eval()


def hf_model(folder):
    from transformers import LlamaForCausalLM

    return LlamaForCausalLM.from_pretrained(folder, dtype=torch.float32, attn_implementation="eager").eval()


@pytest.mark.parametrize("name", CONFIGS)
def test_logits_match_transformers_both_directions(tmp_path, name):
    args = CONFIGS[name]
    model = random_model(args)
    idx = torch.randint(0, args.vocab_size, (2, 80))
    save_hf(model, tmp_path / "ours")
    hf = hf_model(tmp_path / "ours")
    assert hf.config.tie_word_embeddings == args.tie_embeddings
    with torch.no_grad():
        ours, _ = model(idx)
        ref = hf(idx).logits
    assert ours.dtype == torch.float32 and ours.shape == (2, 80, args.vocab_size)
    assert ref.abs().max() > 1.0  # logits are not trivially flat
    assert (ours - ref).abs().max().item() <= 1e-4

    # transformers' own save_pretrained (rope_parameters, no lm_head when tied) loads back into ours
    hf.save_pretrained(tmp_path / "theirs")
    assert read_config(tmp_path / "theirs") == args
    back = load_hf(tmp_path / "theirs")
    assert (back.output.weight is back.tok_embeddings.weight) == args.tie_embeddings
    with torch.no_grad():
        assert (back(idx)[0] - ref).abs().max().item() <= 1e-4


def test_rope_scaling_matters_beyond_original_context(tmp_path):
    # The parity test above would be vacuous if the scaling did not change logits at these positions.
    model = random_model(SCALED)
    unscaled = Llama(replace(SCALED, rope_scaling=None))
    unscaled.load_state_dict(model.state_dict())
    idx = torch.randint(0, SCALED.vocab_size, (1, 80))
    with torch.no_grad():
        diff = (model(idx)[0] - unscaled(idx)[0]).abs().amax(dim=-1)[0]
    assert diff[0] < 1e-6  # position 0: no rotation at all
    assert diff[40:].max() > 1e-2


def test_greedy_generate_matches_transformers_with_left_padding(tmp_path):
    model = random_model(SCALED, seed=1)
    save_hf(model, tmp_path)
    hf = hf_model(tmp_path)
    g = torch.Generator().manual_seed(3)
    prompts = [torch.randint(1, 256, (n,), generator=g).tolist() for n in (5, 11, 8)]
    free = model.generate(prompts, max_new_tokens=30)
    assert [len(r) for r in free] == [30, 30, 30]
    stop = free[0][5]  # a token row 0 really produces, so stopping is exercised
    ours = model.generate(prompts, max_new_tokens=30, stop_tokens=[stop])

    pad = 0
    width = max(map(len, prompts))
    input_ids = torch.tensor([[pad] * (width - len(p)) + p for p in prompts])
    attention_mask = (torch.arange(width)[None] >= torch.tensor([width - len(p) for p in prompts])[:, None])
    out = hf.generate(input_ids, attention_mask=attention_mask.long(), max_new_tokens=30, do_sample=False,
                      pad_token_id=pad, eos_token_id=stop)[:, width:].tolist()
    theirs = [row[:row.index(stop)] if stop in row else row for row in out]
    assert ours == theirs
    assert ours[0] == free[0][:free[0].index(stop)] and stop not in ours[0]
    # rows that never produce the stop token keep all their tokens
    assert all(len(o) == 30 for o, f in zip(ours, free) if stop not in f)
    # include_stop: the same greedy tokens, plus the stop token that ended the row (none if it never came)
    kept = model.generate(prompts, max_new_tokens=30, stop_tokens=[stop], include_stop=True)
    assert kept == [o + [stop] if stop in f else o for o, f in zip(ours, free)]
    assert kept[0] == free[0][:free[0].index(stop) + 1] and kept[0][-1] == stop


def test_kv_cache_decoding_matches_full_forwards():
    """generate's static-cache decode gives, step by step, the greedy token of a full forward over the
    whole sequence so far (no cache), with left padding."""
    model = random_model(SCALED)
    prompts = [torch.randint(0, 256, (n,)).tolist() for n in (20, 7)]
    cached = model.generate(prompts, 16)
    for prompt, new in zip(prompts, cached):
        seq = list(prompt)
        with torch.no_grad():
            for _ in range(16):
                seq.append(int(model(torch.tensor([seq]))[0][0, -1].argmax()))
        assert new == seq[len(prompt):]

@pytest.mark.skipif(shutil.which(os.environ.get("CXX", "g++")) is None,
                    reason="torch.compile on CPU needs a C++ compiler (g++ or $CXX)")
def test_compiled_decode_step_generates_the_same_tokens_in_one_graph():
    model = random_model(SCALED)
    prompts = [[5, 9, 2, 7, 1, 3], [8], [4, 4, 6]]  # left padding and a 1-token prompt
    eager = model.generate(prompts, 20)
    stop = eager[1][7]
    torch._dynamo.reset()
    with torch._dynamo.config.patch(error_on_recompile=True):  # static shapes: steps never recompile
        assert model.generate(prompts, 20, compile=True) == eager
        assert model.generate(prompts, 20, stop_tokens=[stop], compile=True) == model.generate(
            prompts, 20, stop_tokens=[stop])


def test_tree_forward_with_positions_and_mask_matches_plain_forwards():
    model = random_model(SCALED)
    g = torch.Generator().manual_seed(0)
    ctx, cont_a, cont_b = (torch.randint(0, 256, (n,), generator=g) for n in (40, 7, 12))
    C, A, B = len(ctx), len(cont_a), len(cont_b)
    idx = torch.cat([ctx, cont_a, cont_b])[None]
    positions = torch.cat([torch.arange(C), C + torch.arange(A), C + torch.arange(B)])[None]
    segment = torch.tensor([0] * C + [1] * A + [2] * B)
    causal = torch.ones(C + A + B, C + A + B, dtype=torch.bool).tril()
    # each continuation sees the context and itself (causally), never the other continuation
    mask = causal & ((segment[None, :] == 0) | (segment[:, None] == segment[None, :]))
    with torch.no_grad():
        tree, _ = model(idx, positions=positions, mask=mask[None])
        plain_a, _ = model(torch.cat([ctx, cont_a])[None])
        plain_b, _ = model(torch.cat([ctx, cont_b])[None])
    assert (tree[:, :C + A] - plain_a).abs().max().item() <= 1e-5
    assert (tree[:, C + A:] - plain_b[:, C:]).abs().max().item() <= 1e-5


def test_loss_is_cross_entropy_ignoring_minus_one():
    model = random_model(SCALED)
    idx = torch.randint(0, 256, (2, 16))
    targets = torch.randint(0, 256, (2, 16))
    targets[0, :5] = -1
    logits, loss = model(idx, targets)
    expected = F.cross_entropy(logits.view(-1, 256), targets.view(-1), ignore_index=-1)
    assert torch.equal(loss, expected)
    kept = targets.view(-1) != -1
    assert torch.allclose(loss, F.cross_entropy(logits.view(-1, 256)[kept], targets.view(-1)[kept]))
    assert model(idx)[1] is None


def test_training_forward_has_no_graph_breaks():
    model = random_model(SCALED)
    idx = torch.randint(0, 256, (2, 16))
    explanation = torch._dynamo.explain(model)(idx, idx)
    assert explanation.graph_break_count == 0, explanation.break_reasons
    assert explanation.graph_count == 1


# -------------------------------------------------------------------------------------------------- presets


def test_presets_and_param_counts():
    # Meta's published sizes: 8.03B (Llama 3 / 3.1 8B), 1.24B (3.2 1B), 3.21B (3.2 3B)
    expected = {"llama3_8b": 8_030_261_248, "llama31_8b": 8_030_261_248,
                "llama32_1b": 1_235_814_400, "llama32_3b": 3_212_749_824}
    for name, n in expected.items():
        with torch.device("meta"):
            model = Llama(PRESETS[name])
        assert model.num_params() == n, name
        assert model.num_params(exclude_embedding=True) == n - (0 if PRESETS[name].tie_embeddings
                                                               else 128256 * PRESETS[name].dim)
    assert PRESETS["llama31_8b"].rope_scaling["factor"] == 8.0
    assert PRESETS["llama32_1b"].rope_scaling["factor"] == 32.0
    assert PRESETS["llama3_8b"].rope_scaling is None
    tiny = PRESETS["tiny"]
    assert (tiny.dim, tiny.n_layers, tiny.n_heads, tiny.n_kv_heads) == (64, 2, 4, 2)
    demo = PRESETS["demo"]
    assert (demo.dim, demo.n_layers, demo.n_heads, demo.n_kv_heads, demo.ffn_dim) == (96, 4, 4, 2, 256)


def test_meta_device_build_then_init_weights_reties():
    with torch.device("meta"):
        model = Llama(TIED)
    model.to_empty(device="cpu")
    model.init_weights()
    assert model.output.weight is model.tok_embeddings.weight
    assert torch.isfinite(model(torch.zeros(1, 4, dtype=torch.long))[0]).all()


def test_sampling_is_seeded_and_respects_top_p():
    model = random_model(TIED)
    prompts = [[1, 2, 3], [4]]

    def run(seed, **kw):
        generator = torch.Generator().manual_seed(seed)
        return model.generate(prompts, 12, temperature=1.0, generator=generator, **kw)

    assert run(0) == run(0)
    assert run(0) != run(1)
    # top_p -> 0 keeps only the most likely token: identical to greedy
    assert run(5, top_p=1e-6) == model.generate(prompts, 12)


HUB_LLAMA31_8B = {  # the config.json of meta-llama/Llama-3.1-8B (transformers 4.43 era, legacy rope keys)
    "architectures": ["LlamaForCausalLM"], "attention_bias": False, "attention_dropout": 0.0,
    "bos_token_id": 128000, "eos_token_id": 128001, "hidden_act": "silu", "hidden_size": 4096,
    "initializer_range": 0.02, "intermediate_size": 14336, "max_position_embeddings": 131072,
    "mlp_bias": False, "model_type": "llama", "num_attention_heads": 32, "num_hidden_layers": 32,
    "num_key_value_heads": 8,
    "pretraining_tp": 1, "rms_norm_eps": 1e-05, "rope_theta": 500000.0, "tie_word_embeddings": False,
    "rope_scaling": {"factor": 8.0, "low_freq_factor": 1.0, "high_freq_factor": 4.0,
                     "original_max_position_embeddings": 8192, "rope_type": "llama3"},
    "torch_dtype": "bfloat16", "use_cache": True, "vocab_size": 128256,
}
HUB_CONFIGS = {
    "llama31_8b": HUB_LLAMA31_8B,
    "llama3_8b": dict(HUB_LLAMA31_8B, rope_scaling=None, max_position_embeddings=8192),
    "llama32_1b": dict(HUB_LLAMA31_8B, hidden_size=2048, num_hidden_layers=16, intermediate_size=8192,
                       head_dim=64, tie_word_embeddings=True, eos_token_id=[128001, 128008, 128009],
                       rope_scaling=dict(HUB_LLAMA31_8B["rope_scaling"], factor=32.0)),
    "llama32_3b": dict(HUB_LLAMA31_8B, hidden_size=3072, num_hidden_layers=28, num_attention_heads=24,
                       intermediate_size=8192, head_dim=128, tie_word_embeddings=True,
                       rope_scaling=dict(HUB_LLAMA31_8B["rope_scaling"], factor=32.0)),
}


@pytest.mark.parametrize("name", HUB_CONFIGS)
def test_hub_configs_read_as_presets_and_rope_matches_transformers(tmp_path, name):
    from transformers import LlamaConfig
    from transformers.modeling_rope_utils import ROPE_INIT_FUNCTIONS

    (tmp_path / "config.json").write_text(json.dumps(HUB_CONFIGS[name]))
    assert read_config(tmp_path) == PRESETS[name]
    # the real constants (original context 8192, factor 8 / 32) through transformers' own RoPE init
    config = LlamaConfig.from_dict(HUB_CONFIGS[name])
    rope_type = config.rope_parameters["rope_type"]
    if rope_type == "default":
        expected = 1.0 / (config.rope_parameters["rope_theta"] ** (torch.arange(0, 128, 2).float() / 128))
    else:
        expected, _ = ROPE_INIT_FUNCTIONS[rope_type](config, "cpu")
    assert torch.allclose(rope_inv_freq(PRESETS[name]), expected, rtol=1e-6, atol=0)
    if rope_type == "llama3":  # the scaling really changes the long wavelengths
        assert not torch.allclose(rope_inv_freq(replace(PRESETS[name], rope_scaling=None)), expected)
