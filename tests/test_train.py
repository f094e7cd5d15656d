"""train.py: exact resume (also after a kill during a checkpoint write), FSDP over 2 ranks equals one
process, CPT init from a transformers-written folder, and clear errors on bad input.

Runs use a tiny model on synthetic data: in this process (train.main) where that is enough, as
`python train.py` / torchrun subprocesses where a separate process is the point (resume, kill, FSDP)."""

import hashlib
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import mix
import train

ROOT = Path(__file__).resolve().parent.parent
VOCAB = 320
TINY = ["--model=tiny", "--block_size=32", "--dtype=float32", "--device=cpu", "--warmup_steps=2",
        "--lr=3e-3", "--min_lr=3e-4", "--lr_decay_steps=12", "--eval_interval=4", "--eval_batches=1"]


def make_data(root: Path, n_vocab: int = VOCAB) -> Path:
    """A data dir as prepare_mala.py writes it (index.json + uint32 .bin files), mixed by mix.py's CLI.
    Documents are bos + an arithmetic progression mod 256 + eos: learnable, so the loss falls."""
    data = root / "data"
    data.mkdir(parents=True)
    tok = data / "tokenizer.model"
    tok.write_text("placeholder tokenizer: train.py only copies it into the exported folder\n")
    bos, eos = 256, 257
    rng = np.random.default_rng(0)
    sources = {}
    specs = [("eng_Latn-fra_Latn", "bi", ["eng_Latn", "fra_Latn"], 300),
             ("eng_Latn", "mono", ["eng_Latn"], 200), ("fra_Latn", "mono", ["fra_Latn"], 40)]
    for name, kind, langs, n_docs in specs:
        entry = {"kind": kind, "langs": langs, "bin": f"{name}.bin", "val_bin": f"{name}.val.bin",
                 "n_pairs": 0, "n_lines": 0, "dropped": {}}
        for split, n in (("train", n_docs), ("val", 20)):
            docs = [np.r_[bos, (rng.integers(0, 256) + rng.integers(1, 5) * np.arange(30)) % 256, eos]
                    for _ in range(n)]
            tokens = np.concatenate(docs).astype(np.uint32)
            path = data / (entry["bin"] if split == "train" else entry["val_bin"])
            tokens.tofile(path)
            stats = {"n_docs": n, "n_tokens": len(tokens), "n_words": 30 * n,
                     "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
            entry.update(stats) if split == "train" else entry.update(val=stats)
        sources[name] = entry
    index = {"format": 1, "dtype": "uint32", "sources": sources,
             "tokenizer": {"path": str(tok), "sha256": hashlib.sha256(tok.read_bytes()).hexdigest(),
                           "n_vocab": n_vocab, "bos_id": bos, "eos_id": eos}}
    (data / "index.json").write_text(json.dumps(index))
    mix_cfg = root / "mix_cfg.py"
    mix_cfg.write_text("tier_thresholds = {'very_high': 100000, 'high': 5000, 'medium_high': 4000, "
                       "'medium': 3000, 'medium_low': 2000, 'low': 1000, 'very_low': 0}\n"
                       "tier_rates = {t: 1.0 for t in tier_thresholds}\nkinds = ['bi', 'mono']\n"
                       "total_tokens = 100000\n")
    mix.main([str(data), "--config", str(mix_cfg), "--out", str(root / "mix.json")])
    return root / "mix.json"


@pytest.fixture(scope="module")
def mix_json(tmp_path_factory):
    return make_data(tmp_path_factory.mktemp("data"))


def train_cmd(*args, nproc=1):
    launcher = [sys.executable] if nproc == 1 else [
        sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}"]
    return [*launcher, str(ROOT / "train.py"), *map(str, args)]


def run_train(*args, nproc=1, env=None, check=True):
    env = {**os.environ, "OMP_NUM_THREADS": "1", **(env or {})}
    result = subprocess.run(train_cmd(*args, nproc=nproc), capture_output=True, text=True, env=env, cwd=ROOT)
    if check and result.returncode != 0:
        raise AssertionError(f"train.py failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return result


def train_here(*args):
    """train.py's main in this process (a process group of one), single-threaded like the subprocesses:
    bit-identical comparisons across processes need the same reduction order in the CPU kernels."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        train.main([str(a) for a in args])
    finally:
        torch.set_num_threads(threads)


def read_log(out_dir: Path):
    rows = [json.loads(line) for line in (out_dir / "log.jsonl").read_text().splitlines()]
    return ([r for r in rows if "config" in r], {r["step"]: r["loss"] for r in rows if "loss" in r},
            {r["step"]: r["val"] for r in rows if "val" in r})


# one process, 12 steps of 4 x 2 micro-batches; the reference for the resume and the FSDP tests
COMMON = [*TINY, "--grad_accum=2", "--ckpt_interval=3", "--keep_ckpts=2"]


@pytest.fixture(scope="module")
def straight(mix_json, tmp_path_factory):
    out = tmp_path_factory.mktemp("straight")
    train_here(*COMMON, f"--mix={mix_json}", "--batch_size=4", f"--out_dir={out}", "--max_steps=12")
    return out


def test_straight_run_outputs(straight, mix_json):
    headers, losses, evals = read_log(straight)
    assert sorted(losses) == list(range(1, 13)) and losses[12] < losses[1] - 0.3  # it learns
    assert sorted(evals) == [0, 4, 8, 12] and evals[12]["eng_Latn"] < evals[0]["eng_Latn"]
    assert set(evals[0]) == {"high", "low", "eng_Latn"}  # tiers of the mix + English
    assert headers[0]["config"]["max_steps"] == 12 and headers[0]["local_numel"] == [headers[0]["n_params"]]
    assert sorted(p.name for p in (straight / "ckpt").iterdir()) == ["latest", "step_12", "step_9"]
    meta = json.loads((straight / "ckpt" / "step_12" / "meta.json").read_text())
    assert meta["step"] == 12 and meta["tokens_seen"] == 12 * 8 * 32 and meta["config"]["lr"] == 3e-3
    assert meta["mix_sha256"] == hashlib.sha256(mix_json.read_bytes()).hexdigest()
    hf = straight / "hf"
    assert json.loads((hf / "config.json").read_text())["vocab_size"] == VOCAB
    tokenizer = json.loads(mix_json.read_text())["tokenizer"]["path"]
    assert (hf / "tokenizer.model").read_bytes() == Path(tokenizer).read_bytes()


def test_exact_resume_also_after_kill_during_save(straight, mix_json, tmp_path):
    """Stop after 6 steps (max_steps=6; lr_decay_steps=12 keeps the schedule), resume towards 12 and
    SIGKILL it while step 9 is half written, resume again: identical losses, bit-identical weights."""
    _, losses, _ = read_log(straight)
    final = load_file(straight / "hf" / "model.safetensors")
    out = tmp_path / "parts"
    args = [*COMMON, f"--mix={mix_json}", "--batch_size=4", f"--out_dir={out}"]
    train_here(*args, "--max_steps=6")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "EMMA_TEST_SLEEP_IN_SAVE": "9:60"}
    proc = subprocess.Popen(train_cmd(*args, "--max_steps=12", "--resume"), cwd=ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    for line in proc.stdout:
        if line.startswith("EMMA_TEST_SLEEP_IN_SAVE"):
            proc.send_signal(signal.SIGKILL)
            break
    assert proc.wait() == -signal.SIGKILL
    assert (out / "ckpt" / "step_9.tmp" / ".metadata").exists()  # the dcp files were written ...
    assert (out / "ckpt" / "latest").read_text() == "step_6"  # ... but never became a checkpoint
    assert max(read_log(out)[1]) == 9  # the killed run logged steps 7-9
    result = run_train(*args, "--max_steps=12", "--resume")
    assert "resume from" in result.stdout and "step_6" in result.stdout
    headers, resumed_losses, evals = read_log(out)
    assert [h["start_step"] for h in headers] == [0, 6, 6]
    assert resumed_losses == losses  # every step, bit-identical floats (lines after step 6 replaced)
    assert sorted(evals) == [0, 4, 6, 8, 12]
    resumed = load_file(out / "hf" / "model.safetensors")
    assert resumed.keys() == final.keys() and all(torch.equal(final[k], resumed[k]) for k in final)
    assert not (out / "ckpt" / "step_9.tmp").exists()
    assert sorted(p.name for p in (out / "ckpt").iterdir()) == ["latest", "step_12", "step_9"]


def test_fsdp_two_ranks_match_one_process(straight, mix_json, tmp_path):
    """2 ranks x 2 sequences x 2 micro-steps = the straight run's 1 x 4 x 2: same losses and validation
    losses (1e-5); each rank holds half of the parameters. Activation checkpointing on (recomputation is
    exact). The 2-rank checkpoint, read back in one process by --export, equals the gathered export."""
    out = tmp_path / "two"
    run_train(*COMMON, f"--mix={mix_json}", "--batch_size=2", f"--out_dir={out}", "--max_steps=8",
              "--activation_checkpointing=True", nproc=2)
    (header1,), one, val_one = read_log(straight)
    (header,), two, val_two = read_log(out)
    assert sorted(two) == list(range(1, 9))
    for step in two:
        assert abs(one[step] - two[step]) <= 1e-5 * abs(one[step]), (step, one[step], two[step])
    for step in val_two:
        for group, loss in val_two[step].items():
            assert abs(val_one[step][group] - loss) <= 1e-5 * loss, (step, group)
    assert header["world_size"] == 2 and header["n_params"] == header1["n_params"]
    assert sum(header["local_numel"]) == header["n_params"]
    assert max(header["local_numel"]) <= header["n_params"] // 2 + 64  # a shard each, not a replica
    train.main(["--export", str(out / "ckpt"), "--to", str(tmp_path / "exported")])
    gathered = load_file(out / "hf" / "model.safetensors")
    exported = load_file(tmp_path / "exported" / "model.safetensors")
    assert gathered.keys() == exported.keys() and all(torch.equal(gathered[k], exported[k]) for k in gathered)
    assert (tmp_path / "exported" / "tokenizer.model").is_file()


def test_cpt_init_from_transformers_folder(mix_json, tmp_path):
    transformers = pytest.importorskip("transformers")
    config = transformers.LlamaConfig(vocab_size=VOCAB, hidden_size=64, intermediate_size=128,
                                      num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                                      max_position_embeddings=128, rope_theta=500000.0, rms_norm_eps=1e-5,
                                      tie_word_embeddings=False)
    torch.manual_seed(1)
    hf_model = transformers.LlamaForCausalLM(config).eval()
    hf_model.save_pretrained(tmp_path / "hf_init")
    train_here(*TINY, f"--mix={mix_json}", f"--init={tmp_path / 'hf_init'}", "--batch_size=4",
               "--max_steps=1", f"--out_dir={tmp_path / 'cpt'}", "--eval_interval=0")
    _, losses, _ = read_log(tmp_path / "cpt")
    x, y = mix.Mixture(mix_json, 32, seed=0).get_batch(0, 0, 0, 1, 4)
    with torch.no_grad():
        logits = hf_model(x).logits.float()
    expected = torch.nn.functional.cross_entropy(logits.view(-1, VOCAB), y.view(-1)).item()
    assert abs(losses[1] - expected) <= 1e-5 * expected, (losses[1], expected)


def test_init_from_our_checkpoint(straight, mix_json, tmp_path):
    """init = a run's checkpoint dir (its `latest`, step 12): the weights, a fresh optimizer and step 0."""
    from model import load_hf

    train_here(*TINY, f"--mix={mix_json}", f"--init={straight / 'ckpt'}", "--batch_size=4", "--max_steps=1",
               f"--out_dir={tmp_path / 'cont'}", "--eval_interval=0")
    (header,), losses, _ = read_log(tmp_path / "cont")
    assert header["start_step"] == 0 and list(losses) == [1]
    x, y = mix.Mixture(mix_json, 32, seed=0).get_batch(0, 0, 0, 1, 4)
    with torch.no_grad():
        _, expected = load_hf(straight / "hf")(x, y)  # the same weights, exported at step 12
    assert abs(losses[1] - expected.item()) <= 1e-6 * expected.item()


def test_bad_input_fails_before_compute(straight, mix_json, tmp_path):
    def error(*argv) -> str:
        with pytest.raises(SystemExit) as e:
            train.main([*TINY, f"--mix={mix_json}", f"--out_dir={tmp_path / 'bad'}", *argv])
        return str(e.value)

    message = error("--lerning_rate=0.1")
    assert "unknown key 'lerning_rate'" in message and "batch_size" in message and "warmup_steps" in message
    assert "max_steps must be int" in error("--max_steps=ten")
    assert "lr must be float" in error("--lr='fast'")
    assert "compile must be bool" in error("--compile=1")
    bad_cfg = tmp_path / "bad_cfg.py"
    bad_cfg.write_text("batch_size = 4\nlearning_rate = 1e-4\n")
    message = error(str(bad_cfg))
    assert str(bad_cfg) in message and "unknown key 'learning_rate'" in message and "grad_clip" in message
    assert "init folder" in error(f"--init={tmp_path / 'no_such_model'}")
    assert "not found" in error(f"--mix={tmp_path / 'none.json'}")
    # a mix.json whose data went missing
    broken = tmp_path / "broken"
    broken_mix = make_data(broken)
    (broken / "data" / "fra_Latn.bin").unlink()
    assert "fra_Latn.bin" in error(f"--mix={broken_mix}")
    # resume with another model shape: refused from meta.json, before anything is built
    message = error(f"--out_dir={straight}", "--resume", "--model=demo")
    assert "cannot resume" in message and "dim: checkpoint 64, this run 128" in message
    # SystemExit with a message: python prints it to stderr (no traceback) and exits with status 1
    with pytest.raises(SystemExit) as e:
        train.main(["--batch_sise=2"])
    assert isinstance(e.value.code, str) and "unknown key 'batch_sise'" in e.value.code
