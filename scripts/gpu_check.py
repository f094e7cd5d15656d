"""The GPU path, checked in one prepared command: what a first session on a CUDA GPU runs and reads.

    python scripts/gpu_check.py [--json OUT] [--steps 30]   # one CUDA GPU, under 8 minutes
    python scripts/gpu_check.py --cpu-smoke                 # the same steps at tiny shapes on the CPU (CI),
                                                            # without torch.compile (tests/test_model.py
                                                            # checks the compiled decode on the CPU)

Steps, each printed as it ends:
  1. parity      our logits vs transformers' LlamaForCausalLM, fp32 and bf16, same weights (tolerances in
                 the table: fp32 1e-3 absolute; bf16 within 2x transformers' own bf16 error vs fp32)
  2. attention   which scaled-dot-product kernel attention runs (the profiler's kernel names; flash
                 expected on a GPU)
  3. train       train.py in this process at the Llama 3 8B shape (as many of its 32 layers as fit one GPU,
                 by plan.py's memory estimate): FSDP2 + bf16 + torch.compile + activation checkpointing,
                 block 8192, random tokens; tokens/s, MFU and peak memory of the last steps
  4. decode      greedy decode at batch 1: compiled decode step vs eager vs transformers' generate
  5. torchrun    `torchrun --nproc_per_node=1 train.py` for a few steps: the NCCL (gloo on CPU) path
Needs torch (2.11 or later), numpy, safetensors, tiktoken, regex, tqdm and pyarrow; transformers for
steps 1 and 4 (they print "skipped" without it). Installs nothing, downloads nothing.
"""

import argparse
import dataclasses
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import mix  # noqa: E402
import plan  # noqa: E402
import train  # noqa: E402
from checkpoint import save_hf  # noqa: E402
from common import HelpFormatter  # noqa: E402
from model import PRESETS, Llama  # noqa: E402

RESULTS: list[dict] = []


def report(step: str, **values) -> None:
    RESULTS.append({"step": step, **values})
    print(f"[{step}] " + ", ".join(f"{k}: {v}" for k, v in values.items()), flush=True)


def random_model(args, device, dtype=torch.float32, seed=0) -> Llama:
    torch.manual_seed(seed)
    with torch.device("meta"):
        model = Llama(args)
    model.to_empty(device=device)
    model.init_weights(seed)
    with torch.no_grad():  # spread-out logits (a fresh init's are nearly flat)
        model.output.weight.mul_(20)
    return model.to(dtype).eval()


def transformers_twin(model, folder: Path, dtype, device):
    from transformers import LlamaForCausalLM

    save_hf(model, folder, dtype=torch.float32)
    return LlamaForCausalLM.from_pretrained(folder, dtype=dtype, attn_implementation="sdpa").to(device).eval()


def check_parity(args, device, tmp: Path) -> None:
    try:
        import transformers  # noqa: F401
    except ImportError:
        return report("parity", skipped="transformers is not installed")
    ours = random_model(args, device)
    idx = torch.randint(0, args.vocab_size, (2, 256), device=device)
    with torch.no_grad():
        ref = transformers_twin(ours, tmp / "parity", torch.float32, device)(idx).logits.float()
        err32 = (ours(idx)[0] - ref).abs().max().item()
        theirs16 = transformers_twin(ours, tmp / "parity16", torch.bfloat16, device)(idx).logits.float()
        ours16 = ours.to(torch.bfloat16)(idx)[0]
    err16, their16 = (ours16 - ref).abs().max().item(), (theirs16 - ref).abs().max().item()
    report("parity", logit_scale=f"{ref.abs().max().item():.1f}", fp32_max_abs_diff=f"{err32:.2e}",
           bf16_ours_vs_fp32=f"{err16:.3f}", bf16_transformers_vs_fp32=f"{their16:.3f}",
           ok=err32 <= 1e-3 and err16 <= 2 * their16 + 1e-2)


def check_attention(args, device) -> None:
    model = random_model(args, device, torch.bfloat16 if device.type == "cuda" else torch.float32)
    idx = torch.randint(0, args.vocab_size, (1, 512), device=device)
    activities = [torch.profiler.ProfilerActivity.CPU] + (
        [torch.profiler.ProfilerActivity.CUDA] if device.type == "cuda" else [])
    with torch.no_grad(), torch.profiler.profile(activities=activities) as prof:
        model(idx)
    names = {e.key for e in prof.key_averages() if "attention" in e.key.lower() or "flash" in e.key.lower()
             or "fmha" in e.key.lower()}
    kind = next((k for k in ("flash", "cudnn", "efficient", "math") if any(k in n.lower() for n in names)),
                "unknown")
    report("attention", backend=kind, kernels="; ".join(sorted(names))[:300],
           ok=kind == "flash" or device.type != "cuda")


def write_random_data(folder: Path, n_vocab: int, n_tokens: int) -> Path:
    """A data dir as prepare_mala.py leaves it (random tokens, a placeholder tokenizer file that only its
    sha256 is read of) and its mix.json."""
    folder.mkdir(parents=True)
    (folder / "tokenizer.model").write_bytes(b"placeholder\n")
    rng, sources = np.random.default_rng(0), {}
    for name, kind, langs in (("eng_Latn-fra_Latn", "bi", ["eng_Latn", "fra_Latn"]),
                              ("eng_Latn", "mono", ["eng_Latn"])):
        stats = {}
        for split, n in (("bin", n_tokens), ("val_bin", 8 * 8192 + 1)):
            path = folder / f"{name}.{split.replace('_', '.')}"
            rng.integers(0, n_vocab, n, dtype=np.uint32).tofile(path)
            stats[split] = {"n_tokens": n, "n_words": n // 2, "n_docs": 1, "n_pairs": 0, "n_lines": 0,
                            "sha256": hashlib.sha256(path.read_bytes()).hexdigest()}
        sources[name] = {"kind": kind, "langs": langs, "bin": f"{name}.bin", "val_bin": f"{name}.val.bin",
                         **stats["bin"], "val": stats["val_bin"], "dropped": {}}
    index = {"format": 2, "dtype": "uint32", "complete": True, "sources": sources,
             "tokenizer": {"file": "tokenizer.model", "sha256": hashlib.sha256(b"placeholder\n").hexdigest(),
                           "n_vocab": n_vocab, "bos_id": 0, "eos_id": 1}}
    (folder / "index.json").write_text(json.dumps(index))
    (folder / "mix_config.py").write_text("from config.mix_bi import *  # noqa\nkinds = ['bi', 'mono']\n"
                                          "kind_shares = {'bi': 0.5, 'mono': 0.5}\ntotal_tokens = 10_000\n")
    mix.main([str(folder), "--config", str(folder / "mix_config.py"), "--out", str(folder / "mix.json")])
    return folder / "mix.json"


def layers_that_fit(cfg: dict, memory_gb: float) -> int:
    """The most layers of the run's model whose plan.py memory estimate stays under memory_gb on one GPU."""
    base = PRESETS[cfg["model"]]
    for n_layers in range(base.n_layers, 0, -1):
        PRESETS["gpu_check"] = dataclasses.replace(base, n_layers=n_layers)
        _, need = plan.plan({**cfg, "model": "gpu_check"}, 1, memory_gb, "H100", 0.4, train.PEAK_BF16_FLOPS)
        if need <= memory_gb:
            return n_layers
    raise SystemExit("gpu_check: not even one layer fits")


def check_train(cfg: dict, mix_json: Path, out: Path, smoke: bool, steps: int) -> None:
    if smoke:
        PRESETS["gpu_check"] = PRESETS["tiny"]
    else:  # 85% of the card for the estimate: the allocator's fragmentation and compile's workspaces
        memory_gb = torch.cuda.get_device_properties(0).total_memory / 1e9
        PRESETS["gpu_check"] = dataclasses.replace(PRESETS[cfg["model"]], n_layers=layers_that_fit(
            cfg, 0.85 * memory_gb))
    argv = [f"--{k}={v!r}" for k, v in cfg.items()] + [f"--mix={mix_json}", f"--out_dir={out}",
                                                        "--model=gpu_check", f"--max_steps={steps}"]
    torch.cuda.reset_peak_memory_stats() if torch.cuda.is_available() else None
    t0 = time.perf_counter()
    train.main(argv)
    rows = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    last = [r for r in rows if "tokens_per_s" in r][-max(1, steps // 3):]  # after compile and warm-up
    args = PRESETS["gpu_check"]
    report("train", layers=f"{args.n_layers} of 32" if not smoke else "tiny", block=cfg["block_size"],
           tokens_per_s=f"{np.mean([r['tokens_per_s'] for r in last]):,.0f}",
           mfu=f"{np.mean([r['mfu'] for r in last]):.1%}" if "mfu" in last[0] else "n/a (no peak for device)",
           peak_memory_gb=f"{torch.cuda.max_memory_allocated() / 1e9:.1f}" if torch.cuda.is_available()
           else "-",
           loss=f"{rows[-1].get('loss', last[-1]['loss']):.3f}", wall_s=f"{time.perf_counter() - t0:.0f}")


def check_decode(args, device, tmp: Path, new_tokens: int) -> None:
    gpu = device.type == "cuda"
    dtype = torch.bfloat16 if gpu else torch.float32
    ours = random_model(args, device, dtype)
    prompt = torch.randint(1, args.vocab_size, (32,)).tolist()

    def rate(fn) -> float:
        fn()  # warm-up (and the compile)
        if gpu:
            torch.cuda.synchronize()
        t = time.perf_counter()
        out = fn()
        if gpu:
            torch.cuda.synchronize()
        return new_tokens / (time.perf_counter() - t), out

    eager, eager_out = rate(lambda: ours.generate([prompt], new_tokens))
    compiled, compiled_out = rate(lambda: ours.generate([prompt], new_tokens, compile=gpu))
    values = {"eager_tok_s": f"{eager:,.0f}", "compiled_tok_s": f"{compiled:,.0f}",
              "same_tokens": eager_out == compiled_out}
    try:
        theirs = transformers_twin(ours.float(), tmp / "decode", dtype, device)
        ids = torch.tensor([prompt], device=device)
        hf, hf_out = rate(lambda: theirs.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False,
                                                  max_new_tokens=new_tokens, min_new_tokens=new_tokens,
                                                  pad_token_id=0)[0, len(prompt):].tolist())
        values |= {"transformers_tok_s": f"{hf:,.0f}", "compiled_vs_transformers": f"{compiled / hf:.2f}x",
                   "same_as_transformers": hf_out == eager_out[0],
                   # the speed goal is a GPU's: at the CPU smoke run's tiny shapes only the tokens count
                   "ok": eager_out == compiled_out and hf_out == eager_out[0] and (
                       not gpu or compiled >= 2 * hf)}
    except ImportError:
        values["transformers"] = "skipped (not installed)"
    report("decode", **values)


def check_torchrun(cfg: dict, mix_json: Path, out: Path) -> None:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=1",
           str(ROOT / "train.py"), *[f"--{k}={v!r}" for k, v in cfg.items()], f"--mix={mix_json}",
           f"--out_dir={out}", "--model=tiny", "--max_steps=3", "--compile=False"]
    result = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, env={**os.environ,
                                                                               "OMP_NUM_THREADS": "1"})
    steps = [line for line in result.stdout.splitlines() if line.startswith("step 3 ")]
    report("torchrun", returncode=result.returncode, backend="nccl" if cfg["device"] == "cuda" else "gloo",
           last_step=steps[-1][:80] if steps else result.stderr[-300:],
           ok=result.returncode == 0 and bool(steps))


def main(argv=None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    p.add_argument("--cpu-smoke", action="store_true", help="tiny shapes on the CPU: checks the script only")
    p.add_argument("--steps", type=int, default=30, help="training steps of step 3")
    p.add_argument("--json", help="also write the results to this file")
    args = p.parse_args(argv)
    smoke = args.cpu_smoke
    if not smoke and not torch.cuda.is_available():
        raise SystemExit("gpu_check: no CUDA device (use --cpu-smoke to check the script on the CPU)")
    device = torch.device("cpu" if smoke else "cuda")
    print(f"torch {torch.__version__}, {torch.cuda.get_device_name() if not smoke else 'CPU smoke run'}")
    vocab = 512 if smoke else 128256
    small = dataclasses.replace(PRESETS["tiny" if smoke else "llama32_1b"], vocab_size=vocab)
    cfg = {"device": device.type, "dtype": "float32" if smoke else "bfloat16",
           "block_size": 64 if smoke else 8192,
           "global_batch_size": 2, "micro_batch_size": 1 if smoke else 2, "compile": not smoke,
           "activation_checkpointing": True, "grad_sync_per_micro_step": True, "model": "llama3_8b",
           "eval_interval": 0, "ckpt_interval": 0, "export_hf": False, "warmup_steps": 2, "lr": 1e-4,
           "log_interval": 1}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        mix_json = write_random_data(tmp / "data", vocab, 4_000 if smoke else 4_000_000)
        steps = [("parity", lambda: check_parity(small, device, tmp)),
                 ("attention", lambda: check_attention(small, device)),
                 ("train", lambda: check_train(cfg, mix_json, tmp / "run", smoke, 4 if smoke else
                                               args.steps)),
                 ("decode", lambda: check_decode(small, device, tmp, 16 if smoke else 128)),
                 ("torchrun", lambda: check_torchrun(cfg, mix_json, tmp / "torchrun"))]
        for name, step in steps:
            try:
                step()
            except Exception as e:  # one failing step must not hide the others' numbers
                report(name, error=f"{type(e).__name__}: {e}"[:300], ok=False)
    if args.json:
        Path(args.json).write_text(json.dumps(RESULTS, indent=1))
    failed = [r["step"] for r in RESULTS if r.get("ok") is False]
    print("gpu_check: " + (f"FAILED: {', '.join(failed)}" if failed else "all steps ran"))
    raise SystemExit(1 if failed else 0)


if __name__ == "__main__":
    main()
