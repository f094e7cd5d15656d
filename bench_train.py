"""Training throughput on CPU for the demo model: train.py's loop (FSDP2 over a process group of one, the
same code path as torchrun) against a plain PyTorch loop (no FSDP, same model, batches and AdamW).
Both alternate for a few rounds and the best step time counts: the 2 cores are shared and noisy.

    python bench_train.py [--quick]
"""

import dataclasses
import json
import sys
import tempfile
import time
from pathlib import Path

import torch

import train
from mix import Mixture
from model import PRESETS, Llama
from tests.test_train import make_data

BLOCK, BATCH, N_VOCAB = 256, 8, 4096 + 256  # prepare_mala.py --demo: 4096 BPE ranks + 256 specials


def plain_tokens_per_s(mix_json: Path, steps: int) -> float:
    model = Llama(dataclasses.replace(PRESETS["demo"], vocab_size=N_VOCAB))
    model.init_weights()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.95), weight_decay=0.1)
    mixture = Mixture(mix_json, BLOCK)
    best = float("inf")
    for step in range(steps):
        t0 = time.perf_counter()
        x, y = mixture.get_batch(step, 0, 0, 1, BATCH)
        _, loss = model(x, y)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        best = min(best, time.perf_counter() - t0) if step > 0 else best
    return BATCH * BLOCK / best


def train_tokens_per_s(mix_json: Path, steps: int, out: Path) -> float:
    train.main([f"--mix={mix_json}", "--model=demo", f"--block_size={BLOCK}", f"--batch_size={BATCH}",
                f"--max_steps={steps}", "--eval_interval=0", "--ckpt_interval=0", "--export_hf=False",
                "--device=cpu", "--dtype=float32", f"--out_dir={out}"])
    rows = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    return max(r["tokens_per_s"] for r in rows if r.get("step", 0) > 1)


def bench(quick: bool) -> list[tuple[str, float, str]]:
    steps, rounds = (3, 2) if quick else (8, 3)
    ours, plain = 0.0, 0.0
    with tempfile.TemporaryDirectory() as tmp:
        mix_json = make_data(Path(tmp), n_vocab=N_VOCAB)
        for r in range(rounds):
            plain = max(plain, plain_tokens_per_s(mix_json, steps))
            ours = max(ours, train_tokens_per_s(mix_json, steps, Path(tmp) / f"out{r}"))
    detail = (f"demo preset, {BATCH}x{BLOCK} tokens/step, fp32, {torch.get_num_threads()} threads, "
              f"best step of {rounds} x {steps}")
    return [("train.py tokens/s", ours, detail),
            ("plain loop tokens/s", plain, "same model and batches, no FSDP / process group"),
            ("train.py / plain", ours / plain, "cost of running one process through FSDP2 (1.0 = none)")]


if __name__ == "__main__":
    results = bench("--quick" in sys.argv[1:])
    print(f"\n{'benchmark':<22} {'value':>12}  detail")
    for name, value, detail in results:
        print(f"{name:<22} {value:>12,.2f}  {detail}")
