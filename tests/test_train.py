"""train.py: exact resume (also after a kill during a checkpoint write), FSDP over 2 ranks equals one
process, CPT init from a transformers-written folder, faults (kills, torn logs, reused folders) and clear
errors on bad input.

Runs use a tiny model on synthetic data: in this process (train.main) where that is enough, as
`python train.py` / torchrun subprocesses where a separate process is the point (resume, kill, FSDP)."""

import ast
import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import checkpoint
import mix
import sampler
import train
from tokenizer import train_bpe

ROOT = Path(__file__).resolve().parent.parent
VOCAB = 512  # a byte-level tokenizer: 256 bytes + 256 specials (bos 256, eos 257)
TINY = ["--model=tiny", "--block_size=32", "--dtype=float32", "--device=cpu", "--warmup_steps=2",
        "--lr=3e-3", "--min_lr=3e-4", "--lr_decay_steps=12", "--eval_interval=4", "--eval_sequences=4"]


def make_data(root: Path, n_vocab: int = VOCAB) -> Path:
    """A data dir as prepare_mala.py writes it (index.json + uint32 .bin files), mixed by mix.py's CLI.
    Documents are bos + an arithmetic progression mod 256 + eos: learnable, so the loss falls."""
    data = root / "data"
    data.mkdir(parents=True)
    tok = train_bpe(["bytes only"], 256, data / "tokenizer.model")
    bos, eos = tok.bos_id, tok.eos_id
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
    index = {"format": 2, "dtype": "uint32", "complete": True, "sources": sources,
             "tokenizer": {"file": "tokenizer.model", "sha256": tok.sha256, "n_vocab": n_vocab, "bos_id": bos,
                           "eos_id": eos}}
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


# one process, 12 steps of 2 micro-steps of 4 sequences; the reference for the resume and the FSDP tests
COMMON = [*TINY, "--global_batch_size=8", "--ckpt_interval=3", "--keep_ckpts=2"]


@pytest.fixture(scope="module")
def straight(mix_json, tmp_path_factory):
    out = tmp_path_factory.mktemp("straight")
    train_here(*COMMON, f"--mix={mix_json}", "--micro_batch_size=4", f"--out_dir={out}", "--max_steps=12")
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
    data_tokenizer = mix_json.parent / "data" / "tokenizer.model"
    assert (hf / "tokenizer.model").read_bytes() == data_tokenizer.read_bytes()
    assert (hf / "tokenizer.json").is_file() and (hf / "generation_config.json").is_file()


# The kill during a checkpoint write is made here, not in train.py: a wrapper whose dcp.save writes the
# shards of step 9, says so, and sleeps before train.py can rename them into a checkpoint.
SLOW_SAVE = """
import os, runpy, sys, time
import torch.distributed.checkpoint as dcp
save = dcp.save
def slow_save(state, checkpoint_id):
    save(state, checkpoint_id=checkpoint_id)
    if str(checkpoint_id).endswith("step_9.tmp"):
        print("step 9 half written", flush=True)
        time.sleep(60)
dcp.save = slow_save
sys.argv = sys.argv[1:]
sys.path.insert(0, os.path.dirname(os.path.abspath(sys.argv[0])))
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def test_exact_resume_also_after_kill_during_save(straight, mix_json, tmp_path):
    """Stop after 6 steps (max_steps=6; lr_decay_steps=12 keeps the schedule), resume towards 12 and
    SIGKILL it while step 9 is half written, resume again: identical losses, bit-identical weights."""
    _, losses, _ = read_log(straight)
    final = load_file(straight / "hf" / "model.safetensors")
    out = tmp_path / "parts"
    args = [*COMMON, f"--mix={mix_json}", "--micro_batch_size=4", f"--out_dir={out}"]
    train_here(*args, "--max_steps=6")
    (tmp_path / "slow_save.py").write_text(SLOW_SAVE)
    cmd = [sys.executable, str(tmp_path / "slow_save.py"),
           *train_cmd(*args, "--max_steps=12", "--resume")[1:]]
    proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, "OMP_NUM_THREADS": "1"}, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    for line in proc.stdout:
        if line.startswith("step 9 half written"):
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


TWO_RANKS = [*COMMON, "--micro_batch_size=2", "--max_steps=8", "--activation_checkpointing=True"]


@pytest.fixture(scope="module")
def two_ranks(mix_json, tmp_path_factory):
    out = tmp_path_factory.mktemp("two")
    run_train(*TWO_RANKS, f"--mix={mix_json}", f"--out_dir={out}", nproc=2)
    return out


def test_fsdp_two_ranks_match_one_process(straight, two_ranks, mix_json, tmp_path):
    """2 ranks x 2 sequences x 2 micro-steps = the straight run's 1 x 4 x 2: same losses and the same
    validation losses (the same sequences whatever the world size, 1e-5); each rank holds half of the
    parameters. Activation checkpointing on (recomputation is exact). The 2-rank checkpoint, exported in
    one process by checkpoint.py, equals the gathered export."""
    out = two_ranks
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
    checkpoint.main([str(out / "ckpt"), "--to", str(tmp_path / "exported")])
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
    train_here(*TINY, f"--mix={mix_json}", f"--init={tmp_path / 'hf_init'}", "--global_batch_size=4",
               "--micro_batch_size=4", "--max_steps=1", f"--out_dir={tmp_path / 'cpt'}", "--eval_interval=0")
    _, losses, _ = read_log(tmp_path / "cpt")
    x, y = sampler.Mixture(mix_json, 32, seed=0).get_batch(0, 0, 0, 1, 4)
    with torch.no_grad():
        logits = hf_model(x).logits.float()
    expected = torch.nn.functional.cross_entropy(logits.view(-1, VOCAB), y.view(-1)).item()
    assert abs(losses[1] - expected) <= 1e-5 * expected, (losses[1], expected)


def test_init_from_our_checkpoint(straight, mix_json, tmp_path):
    """init = a run's checkpoint dir (its `latest`, step 12): the weights, a fresh optimizer and step 0."""
    train_here(*TINY, f"--mix={mix_json}", f"--init={straight / 'ckpt'}", "--global_batch_size=4",
               "--micro_batch_size=4", "--max_steps=1", f"--out_dir={tmp_path / 'cont'}", "--eval_interval=0")
    (header,), losses, _ = read_log(tmp_path / "cont")
    assert header["start_step"] == 0 and list(losses) == [1]
    x, y = sampler.Mixture(mix_json, 32, seed=0).get_batch(0, 0, 0, 1, 4)
    with torch.no_grad():
        _, expected = checkpoint.load_hf(straight / "hf")(x, y)  # the same weights, exported at step 12
    assert abs(losses[1] - expected.item()) <= 1e-6 * expected.item()


def test_bad_input_fails_before_compute(straight, mix_json, tmp_path, capsys):
    def error(*argv) -> str:
        capsys.readouterr()
        with pytest.raises(SystemExit) as e:
            train.main([*TINY, f"--mix={mix_json}", f"--out_dir={tmp_path / 'bad'}", *argv])
        err = capsys.readouterr().err
        assert e.value.code == 1 and err.count("\n") == 1 and err.startswith("train.py: error: "), err
        return err

    message = error("--lerning_rate=0.1")
    assert "unknown key 'lerning_rate'" in message and "global_batch_size" in message
    assert "warmup_steps" in message
    assert "max_steps must be int" in error("--max_steps=ten")
    assert "lr must be float" in error("--lr='fast'")
    assert "compile must be bool" in error("--compile=1")
    bad_cfg = tmp_path / "bad_cfg.py"
    bad_cfg.write_text("micro_batch_size = 4\nlearning_rate = 1e-4\n")
    message = error(str(bad_cfg))
    assert str(bad_cfg) in message and "unknown key 'learning_rate'" in message and "grad_clip" in message
    assert "init folder" in error(f"--init={tmp_path / 'no_such_model'}")
    assert "not found" in error(f"--mix={tmp_path / 'none.json'}")
    # a global batch that does not divide into micro-batches over the ranks
    assert ("global_batch_size 6 is not a multiple of micro_batch_size 4 x 1 ranks = 4"
            in error("--global_batch_size=6", "--micro_batch_size=4"))
    # a mix.json whose data went missing
    broken = tmp_path / "broken"
    broken_mix = make_data(broken)
    (broken / "data" / "fra_Latn.bin").unlink()
    assert "fra_Latn.bin" in error(f"--mix={broken_mix}")
    # resume with another model shape: refused from meta.json, before anything is built
    message = error(f"--out_dir={straight}", "--resume", "--model=demo")
    assert "cannot resume" in message and "dim: checkpoint 64, this run 96" in message


def test_help_lists_every_key_with_its_default_and_meaning():
    result = run_train("--help")
    for key, default in train.DEFAULTS.items():
        line = next(line for line in result.stdout.splitlines() if line.startswith(f"{key} = "))
        value, meaning = line.removeprefix(f"{key} = ").split("  # ", 1)
        assert len(meaning) > 8, line  # a line of meaning
        assert key in ("device", "dtype") or ast.literal_eval(value) == default, line
    assert "global_batch_size = 8  # sequences per optimizer step" in result.stdout
    assert "bi.py" in result.stdout and "demo_base.py" in result.stdout  # the config files


def test_a_fresh_run_never_mixes_with_an_old_runs_checkpoints(straight, mix_json, tmp_path, capsys):
    """A fresh run into an out_dir with checkpoints is refused (checkpoints of step 9 and 12 would outrank
    the new run's and get it pruned); --resume continues it; pruning never touches the newest."""
    out = tmp_path / "reused"
    args = [*COMMON, f"--mix={mix_json}", "--micro_batch_size=4", f"--out_dir={out}", "--export_hf=False"]
    train_here(*args, "--max_steps=6")
    capsys.readouterr()
    with pytest.raises(SystemExit):
        train_here(*args, "--max_steps=3")
    assert "holds checkpoints of a run (latest: step_6): add --resume" in capsys.readouterr().err
    # a checkpoint of a later step from elsewhere (copied in by hand): resuming from latest never prunes it,
    # and the new checkpoints of this run are kept
    (out / "ckpt" / "step_99").mkdir()
    train_here(*args, "--max_steps=9", "--resume", "--keep_ckpts=1")
    assert sorted(p.name for p in (out / "ckpt").iterdir()) == ["latest", "step_9", "step_99"]
    assert (out / "ckpt" / "latest").read_text() == "step_9"


def test_a_torn_last_log_line_is_dropped_on_resume(mix_json, tmp_path, capsys):
    out = tmp_path / "torn"
    args = [*TINY, f"--mix={mix_json}", "--global_batch_size=4", "--micro_batch_size=4", f"--out_dir={out}",
            "--ckpt_interval=2", "--export_hf=False"]
    train_here(*args, "--max_steps=2")
    with open(out / "log.jsonl", "a") as f:
        f.write('{"step": 3, "loss": 2.7')  # killed while writing the line of step 3
    capsys.readouterr()
    train_here(*args, "--max_steps=3", "--resume")
    assert "dropped a torn last line" in capsys.readouterr().out
    _, losses, _ = read_log(out)
    assert sorted(losses) == [1, 2, 3]


def test_a_user_error_under_torchrun_is_one_line(mix_json, tmp_path):
    result = run_train(*TINY, f"--mix={mix_json}", f"--out_dir={tmp_path / 'x'}", "--global_batch_size=3",
                       "--micro_batch_size=1", nproc=2, check=False)
    assert result.returncode != 0
    ours = [line for line in (result.stdout + result.stderr).splitlines() if "train.py: error" in line]
    assert ours == ["train.py: error: global_batch_size 3 is not a multiple of micro_batch_size 1 x 2 ranks "
                    "= 2: change one of them"]
    # the only traceback is torchrun's own ChildFailedError report: no frame of ours
    assert result.stderr.count("Traceback") <= 1 and 'train.py", line' not in result.stderr


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs /proc to find the rank processes")
def test_killing_torchrun_takes_its_ranks_with_it(mix_json, tmp_path):
    """kill -9 of torchrun's whole process group: the ranks (started in a session of their own) end too."""
    cmd = train_cmd(*TINY, f"--mix={mix_json}", f"--out_dir={tmp_path / 'k'}", "--global_batch_size=4",
                    "--micro_batch_size=2", "--max_steps=100000", "--eval_interval=0", "--ckpt_interval=0",
                    nproc=2)
    proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, "OMP_NUM_THREADS": "1"}, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    for line in proc.stdout:  # wait until training runs
        if line.startswith("step 2 "):
            break
    ranks = [int(p.name) for p in Path("/proc").iterdir()  # torchrun's children that run train.py
             if p.name.isdigit() and int(p.name) != proc.pid and str(tmp_path / "k") in _cmdline(p)]
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    deadline = time.time() + 5
    while time.time() < deadline and any(map(_alive, ranks)):
        time.sleep(0.05)
    assert len(ranks) >= 2 and not any(map(_alive, ranks)), ranks


def test_torchrun_killed_mid_run_resumes_bit_identically(two_ranks, mix_json, tmp_path):
    """kill -9 of torchrun's process group after step 4 (step 3 checkpointed), then the same torchrun
    command with --resume: the losses and the final weights of an uninterrupted 2-rank run, bit for bit."""
    out = tmp_path / "killed"
    cmd = train_cmd(*TWO_RANKS, f"--mix={mix_json}", f"--out_dir={out}", nproc=2)
    proc = subprocess.Popen(cmd, cwd=ROOT, env={**os.environ, "OMP_NUM_THREADS": "1"}, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    for line in proc.stdout:
        if line.startswith("step 4 "):
            os.killpg(proc.pid, signal.SIGKILL)
            break
    assert proc.wait() == -signal.SIGKILL
    assert (out / "ckpt" / "latest").read_text() in {"step_3", "step_6"} and not (out / "hf").exists()
    result = run_train(*TWO_RANKS, f"--mix={mix_json}", f"--out_dir={out}", "--resume", nproc=2)
    headers, losses, _ = read_log(out)
    assert "resume from" in result.stdout and [h["start_step"] for h in headers] in ([0, 3], [0, 6])
    assert losses == read_log(two_ranks)[1]  # every step's loss, the same floats
    resumed, whole = (load_file(d / "hf" / "model.safetensors") for d in (out, two_ranks))
    assert resumed.keys() == whole.keys() and all(torch.equal(whole[k], resumed[k]) for k in whole)


def _cmdline(proc_dir: Path) -> str:
    try:
        return (proc_dir / "cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_a_transformers_saved_folder_without_tokenizer_model(mix_json, tmp_path):
    """A Llama folder as transformers saves it (tokenizer.json, no tiktoken tokenizer.model) evaluates and
    continues training."""
    transformers = pytest.importorskip("transformers")
    import evaluate
    from tokenizer import Tokenizer, write_hf_tokenizer

    folder = tmp_path / "saved"
    config = transformers.LlamaConfig(vocab_size=VOCAB, hidden_size=64, intermediate_size=128,
                                      num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                                      max_position_embeddings=128, tie_word_embeddings=False)
    transformers.LlamaForCausalLM(config).save_pretrained(folder)
    data_tokenizer = Tokenizer(mix_json.parent / "data" / "tokenizer.model")
    write_hf_tokenizer(data_tokenizer, tmp_path / "tok", model_max_length=128)
    transformers.AutoTokenizer.from_pretrained(tmp_path / "tok").save_pretrained(folder)
    assert (folder / "tokenizer.json").is_file() and not (folder / "tokenizer.model").exists()
    model, tok = evaluate.load_model(str(folder))
    assert tok.path.endswith("tokenizer.json") and tok.sha256 == data_tokenizer.sha256
    assert model.args.vocab_size == VOCAB
    train_here(*TINY, f"--mix={mix_json}", f"--init={folder}", "--global_batch_size=4",
               "--micro_batch_size=4", "--max_steps=1", f"--out_dir={tmp_path / 'cpt'}", "--eval_interval=0")
    assert list(read_log(tmp_path / "cpt")[1]) == [1]
