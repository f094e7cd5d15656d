"""checkpoint.py: Hugging Face and Meta folders in (transformers as the oracle), complete Hugging Face folders
out, training checkpoints exported, and clear errors for folders that cannot be used."""

import dataclasses
import json

import pytest
import torch
from safetensors.torch import load_file, save_file
from test_model import SCALED, TIED, random_model

from checkpoint import CheckpointError, checkpoint_tensors, load_hf, read_config, save_hf


def meta_permute(w: torch.Tensor, n_heads: int) -> torch.Tensor:
    """Our (HF) q/k rows -> Meta's interleaved layout, to write Meta-format fixtures."""
    rows, cols = w.shape
    return w.view(n_heads, 2, rows // n_heads // 2, cols).transpose(1, 2).reshape(rows, cols)


@pytest.mark.parametrize("n_shards", [1, 2])
def test_meta_consolidated_checkpoint_loads_like_hf_twin(tmp_path, n_shards):
    scaling = dict(factor=8.0, low_freq_factor=1.0, high_freq_factor=4.0,
                   original_max_position_embeddings=8192)
    args = dataclasses.replace(SCALED, rope_scaling=scaling, max_seq_len=131072)
    model = random_model(args)
    save_hf(model, tmp_path / "hf")
    meta = {k: v.clone() for k, v in model.state_dict().items()}  # Meta's names are ours
    for i in range(args.n_layers):
        meta[f"layers.{i}.attention.wq.weight"] = meta_permute(meta[f"layers.{i}.attention.wq.weight"], 4)
        meta[f"layers.{i}.attention.wk.weight"] = meta_permute(meta[f"layers.{i}.attention.wk.weight"], 2)
    (tmp_path / "meta").mkdir()
    for shard in range(n_shards):  # model-parallel shards as Meta's fairscale layers split them
        part = {}
        for name, w in meta.items():
            leaf = name.split(".")[-2]
            dim = 1 if leaf in ("wo", "w2") else 0 if w.dim() == 2 else None
            part[name] = w if dim is None else w.chunk(n_shards, dim=dim)[shard].clone()
        torch.save(part, tmp_path / "meta" / f"consolidated.{shard:02d}.pth")
    params = dict(dim=64, n_layers=2, n_heads=4, n_kv_heads=2, vocab_size=256, multiple_of=32,
                  norm_eps=1e-5, rope_theta=10000.0, use_scaled_rope=True)
    (tmp_path / "meta" / "params.json").write_text(json.dumps(params))
    assert read_config(tmp_path / "meta") == read_config(tmp_path / "hf") == args
    from_meta, from_hf = load_hf(tmp_path / "meta"), load_hf(tmp_path / "hf")
    idx = torch.randint(0, 256, (1, 24))
    with torch.no_grad():
        assert torch.equal(from_meta(idx)[0], from_hf(idx)[0])
        assert torch.equal(from_meta(idx)[0], model(idx)[0])
    assert {n for _, n, _ in checkpoint_tensors(tmp_path / "meta")} == set(model.state_dict())


def test_sharded_bf16_folder_loads_tensor_by_tensor(tmp_path):
    model = random_model(TIED)
    save_hf(model, tmp_path, dtype=torch.bfloat16)
    assert json.loads((tmp_path / "config.json").read_text())["torch_dtype"] == "bfloat16"
    tensors = load_file(tmp_path / "model.safetensors")
    assert "lm_head.weight" not in tensors  # tied: transformers re-ties it
    names = sorted(tensors)
    halves = {"a.safetensors": names[: len(names) // 2], "b.safetensors": names[len(names) // 2:]}
    for file, keys in halves.items():
        save_file({k: tensors[k] for k in keys}, tmp_path / file)
    index = {"weight_map": {k: f for f, keys in halves.items() for k in keys}}
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps(index))
    (tmp_path / "model.safetensors").unlink()
    loaded = load_hf(tmp_path)
    assert all(p.dtype == torch.bfloat16 for p in loaded.parameters())
    assert loaded.output.weight is loaded.tok_embeddings.weight
    for name, p in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], p.to(torch.bfloat16)), name
    assert load_hf(tmp_path, dtype=torch.float32).norm.weight.dtype == torch.float32


# ------------------------------------------------------------------------------------------------ bad input


def test_missing_folder_and_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope"):
        load_hf(tmp_path / "nope")
    with pytest.raises(FileNotFoundError, match="config.json"):
        read_config(tmp_path)
    save_hf(random_model(TIED), tmp_path)
    (tmp_path / "model.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match="model.safetensors"):
        load_hf(tmp_path)


def test_other_architecture_config_is_refused(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"architectures": ["GPT2LMHeadModel"],
                                                      "model_type": "gpt2", "n_embd": 64}))
    with pytest.raises(CheckpointError, match=r"config\.json: key 'model_type' is 'gpt2'"):
        load_hf(tmp_path)


def test_missing_tensor_is_named(tmp_path):
    save_hf(random_model(SCALED), tmp_path)
    tensors = load_file(tmp_path / "model.safetensors")
    del tensors["model.layers.1.mlp.up_proj.weight"]
    save_file(tensors, tmp_path / "model.safetensors")
    expected = r"model\.safetensors: key 'layers\.1\.feed_forward\.w3\.weight' missing"
    with pytest.raises(CheckpointError, match=expected):
        load_hf(tmp_path)


def test_wrong_shape_is_named(tmp_path):
    save_hf(random_model(SCALED), tmp_path)
    tensors = load_file(tmp_path / "model.safetensors")
    tensors["model.layers.0.self_attn.k_proj.weight"] = torch.zeros(64, 64)  # MHA-shaped k in a GQA config
    save_file(tensors, tmp_path / "model.safetensors")
    expected = (r"model\.safetensors: key 'layers\.0\.attention\.wk\.weight' has shape \(64, 64\), "
                r"config expects \(32, 64\)")
    with pytest.raises(CheckpointError, match=expected):
        load_hf(tmp_path)


def test_unknown_key_and_corrupt_file_are_named(tmp_path):
    save_hf(random_model(SCALED), tmp_path)
    tensors = load_file(tmp_path / "model.safetensors")
    tensors["model.layers.0.self_attn.q_norm.weight"] = torch.ones(16)
    save_file(tensors, tmp_path / "model.safetensors")
    with pytest.raises(CheckpointError, match=r"model\.safetensors: unexpected key "
                                              r"'model\.layers\.0\.self_attn\.q_norm\.weight'"):
        load_hf(tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(CheckpointError, match=r"model\.safetensors: cannot read"):
        load_hf(tmp_path)




# ------------------------------------------------------------------------------------------- complete exports


@pytest.fixture(scope="module")
def small_tokenizer(tmp_path_factory):
    from tokenizer import train_bpe

    path = tmp_path_factory.mktemp("tok") / "tokenizer.model"
    train_bpe(["Grüße aus Zürich, привет из Москвы, 你好世界, the quick brown fox."] * 20, 300, path)
    return path


def exported_model(args=TIED, vocab=556):
    return random_model(dataclasses.replace(args, vocab_size=vocab))


def test_export_is_a_folder_transformers_uses_as_it_is(tmp_path, small_tokenizer):
    from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

    from tokenizer import Tokenizer

    model, tok = exported_model(SCALED), Tokenizer(small_tokenizer)
    save_hf(model, tmp_path / "hf", tokenizer=small_tokenizer)
    assert sorted(p.name for p in (tmp_path / "hf").iterdir()) == [
        "config.json", "generation_config.json", "model.safetensors", "special_tokens_map.json",
        "tokenizer.json", "tokenizer.model", "tokenizer_config.json"]
    hf_tok = AutoTokenizer.from_pretrained(tmp_path / "hf")
    text = "Grüße aus Москвы, 你好 fox!"
    assert hf_tok(text)["input_ids"] == tok.encode(text, bos=True)
    generation = GenerationConfig.from_pretrained(tmp_path / "hf")
    assert (generation.bos_token_id, generation.eos_token_id) == (tok.bos_id, tok.eos_id)
    hf = AutoModelForCausalLM.from_pretrained(tmp_path / "hf", dtype=torch.float32).eval()
    idx = torch.tensor([tok.encode(text, bos=True)])
    with torch.no_grad():
        assert (hf(idx).logits - model(idx)[0]).abs().max().item() <= 1e-5


def test_large_exports_are_sharded_with_an_index(tmp_path):
    from transformers import AutoModelForCausalLM

    model = random_model(SCALED)
    save_hf(model, tmp_path / "one", max_shard_bytes=10**9)
    assert not (tmp_path / "one" / "model.safetensors.index.json").exists()
    save_hf(model, tmp_path / "shards", max_shard_bytes=40_000)  # ~16-64 KB tensors: several shards
    index = json.loads((tmp_path / "shards" / "model.safetensors.index.json").read_text())
    files = sorted(set(index["weight_map"].values()))
    assert len(files) > 2 and files[0] == f"model-00001-of-{len(files):05d}.safetensors"
    assert index["metadata"]["total_size"] == sum(t.nbytes for t in load_file(tmp_path / "one" /
                                                                              "model.safetensors").values())
    idx = torch.randint(0, 256, (1, 12))
    with torch.no_grad():
        theirs = AutoModelForCausalLM.from_pretrained(tmp_path / "shards", dtype=torch.float32)(idx).logits
        assert torch.equal(load_hf(tmp_path / "shards")(idx)[0], model(idx)[0])
    assert (theirs - model(idx)[0]).abs().max().item() <= 1e-5


def test_tokenizer_files_of_the_init_folder_are_carried_over(tmp_path, small_tokenizer):
    model = exported_model()
    save_hf(model, tmp_path / "init", tokenizer=small_tokenizer)
    config = json.loads((tmp_path / "init" / "tokenizer_config.json").read_text())
    (tmp_path / "init" / "tokenizer_config.json").write_text(json.dumps(config | {"chat_template": "x"}))
    save_hf(model, tmp_path / "cpt", tokenizer=small_tokenizer, init=tmp_path / "init")
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json"):
        assert (tmp_path / "cpt" / name).read_bytes() == (tmp_path / "init" / name).read_bytes(), name
    # an init folder whose tokenizer.json has other ranks than the run's tokenizer: ours are written
    other = tmp_path / "other.model"
    other.write_bytes(b"".join(small_tokenizer.read_bytes().splitlines(keepends=True)[:280]))
    save_hf(model, tmp_path / "mismatch", tokenizer=other, init=tmp_path / "init")
    assert "chat_template" not in json.loads((tmp_path / "mismatch" / "tokenizer_config.json").read_text())


def test_an_export_never_deletes_what_it_did_not_write(tmp_path):
    model = random_model(TIED)
    run = tmp_path / "run"
    (run / "ckpt").mkdir(parents=True)
    (run / "log.jsonl").write_text("{}\n")
    with pytest.raises(CheckpointError, match=r"run: holds ckpt, log\.jsonl, which is not a previous export"):
        save_hf(model, run)
    assert (run / "log.jsonl").read_text() == "{}\n" and (run / "ckpt").is_dir()
    save_hf(model, tmp_path / "hf")
    save_hf(random_model(TIED, seed=1), tmp_path / "hf")  # a previous export is replaced as a whole
    assert torch.equal(load_hf(tmp_path / "hf").norm.weight, random_model(TIED, seed=1).norm.weight)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["hf", "run"]  # no temporary folder left


def test_truncated_safetensors_is_one_error_naming_the_file(tmp_path):
    save_hf(random_model(SCALED), tmp_path)
    data = (tmp_path / "model.safetensors").read_bytes()
    (tmp_path / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match=r"model\.safetensors: cannot read"):
        load_hf(tmp_path)
