"""Benchmark evaluate.py against the naive ways, same model and data in one run:
- multiple choice: choices/s when each question's context + 4 choices go through ONE packed forward
  (batched), vs one plain forward per choice (the context recomputed for every choice);
- translation: sentences/s of batched generation (16 prompts per Llama.generate) vs one prompt at a time;
- the stop token ('.\\n' is one token): kept by Llama.generate(include_stop=True) vs the previous way, which
  dropped it and ran one more forward per batch to recover it (model nudged to emit '.\\n', so rows stop).

    python bench_evaluate.py [--quick]
"""

import argparse
import dataclasses
import random
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

import torch

import evaluate
from model import PRESETS, Llama
from tokenizer import train_bpe

WORDS = ("the cat dog house river city green small quick runs sleeps near over under with from "
         "maison chat chien rivière ville vert petit rapide dort sous avec").split()


def sentence(rng: random.Random, n_words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(n_words)).capitalize() + "."


def setup(seed: int = 0):
    rng = random.Random(seed)
    corpus = [f"[eng_Latn]: {sentence(rng, 12)}\n[fra_Latn]: {sentence(rng, 12)}\n" for _ in range(300)]
    tok = train_bpe(corpus, 400, Path(tempfile.mkdtemp()) / "tokenizer.model")
    torch.manual_seed(seed)
    model = Llama(dataclasses.replace(PRESETS["demo"], vocab_size=tok.n_vocab))
    model.init_weights()
    return model.eval(), tok, rng


def timed(fn):
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


@torch.no_grad()
def one_choice_per_forward(model, tok, items):
    scores = []
    for item in items:
        context, row = tok.encode(item.context, bos=True), []
        for choice in item.choices:
            ids = tok.encode(choice)
            logp = model(torch.tensor([context + ids]))[0][0, len(context) - 1:-1].log_softmax(-1)
            row.append(logp.gather(1, torch.tensor(ids)[:, None]).sum().item())
        scores.append(row)
    return scores


def mc_row(name, model, tok, items) -> tuple[str, float, str]:
    one_choice_per_forward(model, tok, items[:2])  # warm-up
    packed, t_packed = timed(lambda: evaluate.score_choices(model, tok, items, batch_size=8))
    naive, t_naive = timed(lambda: one_choice_per_forward(model, tok, items))
    max_diff = max(abs(a - b) for p, q in zip(packed, naive) for a, b in zip(p, q))
    n = sum(len(it.choices) for it in items)
    context = sum(len(tok.encode(it.context)) for it in items) / len(items)
    choice = sum(len(tok.encode(c)) for it in items for c in it.choices) / n
    return (f"{name}: packed+batched vs one choice/forward", t_naive / t_packed,
            f"{n / t_packed:.0f} vs {n / t_naive:.0f} choices/s ({len(items)} questions x 4, "
            f"context ~{context:.0f} tokens, choice ~{choice:.1f}; batch 8; max |dLL| {max_diff:.1e})")


@torch.no_grad()
def lines_with_recovery_forward(model, tok, prompts, args) -> list[str]:
    """The previous evaluate.py: generate drops the stop token; one more forward over the rows that stopped
    finds the most likely stop token, kept when it holds text before the newline ('.\\n')."""
    stop_ids = evaluate.newline_stop_ids(tok)
    encoded = [tok.encode(p, bos=True) for p in prompts]
    order, lines = sorted(range(len(prompts)), key=lambda i: (-len(encoded[i]), i)), [""] * len(prompts)
    for start in range(0, len(order), args.batch_size):
        batch = order[start:start + args.batch_size]
        outs = model.generate([encoded[i] for i in batch], args.max_new_tokens, stop_tokens=stop_ids)
        stopped = [k for k, out in enumerate(outs) if len(out) < args.max_new_tokens]
        seqs = [encoded[batch[k]] + outs[k] for k in stopped]
        if seqs:
            idx = torch.zeros(len(seqs), max(map(len, seqs)), dtype=torch.long)
            for b, seq in enumerate(seqs):
                idx[b, :len(seq)] = torch.tensor(seq)  # right padding: causal attention never sees it
            last = model(idx)[0][torch.arange(len(seqs)), torch.tensor([len(seq) - 1 for seq in seqs])]
            for k, j in zip(stopped, last[:, stop_ids].argmax(-1).tolist()):
                outs[k] = outs[k] + [stop_ids[j]] * (stop_ids[j] < tok.n_base)  # eos: no text
        for i, out in zip(batch, outs):
            lines[i] = tok.decode(out).split("\n", 1)[0].strip()
    return lines


def bench(quick: bool) -> list[tuple[str, float, str]]:
    model, tok, rng = setup()
    n_questions, n_sentences, new_tokens = (8, 16, 48) if quick else (48, 48, 48)
    belebele = [evaluate.MCItem(  # passage + question + 4 listed answers, letter choices (lm-eval's format)
        "P: " + " ".join(sentence(rng, 15) for _ in range(6)) + f"\nQ: {sentence(rng, 8)}\n"
        + "".join(f"{letter}: {sentence(rng, 5)}\n" for letter in "ABCD") + "Answer:",
        [" A", " B", " C", " D"], 0) for _ in range(n_questions)]
    arc = [evaluate.MCItem(f"Question: {sentence(rng, 15)}\nAnswer:",
                           [" " + sentence(rng, rng.randint(3, 8)) for _ in range(4)], 0)
           for _ in range(n_questions)]
    rows = [mc_row("belebele-shaped", model, tok, belebele), mc_row("arc-shaped", model, tok, arc)]

    dev = [(sentence(rng, 12), sentence(rng, 12)) for _ in range(20)]
    prompts = evaluate.flores_prompts([d[0] for d in dev], [d[1] for d in dev],
                                      [sentence(rng, rng.randint(8, 16)) for _ in range(n_sentences)],
                                      "eng_Latn", "fra_Latn", 0, "eng_Latn", "fra_Latn")
    args = SimpleNamespace(max_new_tokens=new_tokens, temperature=0.0, top_p=1.0, seed=0, batch_size=16)
    evaluate.generate_lines(model, tok, prompts[:2], args, "warm-up")
    batched, t_batched = timed(lambda: evaluate.generate_lines(model, tok, prompts, args, "b"))
    args.batch_size = 1
    single, t_single = timed(lambda: evaluate.generate_lines(model, tok, prompts, args, "b"))
    same = sum(a == b for a, b in zip(batched, single))
    rows.append(("translation batch 16 vs 1", t_single / t_batched,
                 f"{n_sentences / t_batched:.1f} vs {n_sentences / t_single:.1f} sentences/s ({n_sentences} "
                 f"3-shot prompts, <= {new_tokens} new tokens, {same}/{n_sentences} identical outputs)"))

    args.batch_size = 16
    period_newline = tok.encode(".\n")[0]
    with torch.no_grad():  # a random model never stops; a larger '.\n' row makes it win at some steps
        model.output.weight[period_newline] *= 3.0
    evaluate.generate_lines(model, tok, prompts[:2], args, "warm-up")
    kept, t_kept = timed(lambda: evaluate.generate_lines(model, tok, prompts, args, "b"))
    recovered, t_recovered = timed(lambda: lines_with_recovery_forward(model, tok, prompts, args))
    same, periods = sum(a == b for a, b in zip(kept, recovered)), sum(line.endswith(".") for line in kept)
    rows.append(("stop token kept by generate vs recovery forward", t_recovered / t_kept,
                 f"{n_sentences / t_kept:.1f} vs {n_sentences / t_recovered:.1f} sentences/s (batch 16, "
                 f"{periods}/{n_sentences} lines end in '.', {same}/{n_sentences} identical outputs)"))
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="smaller run (< 25 s)")
    rows = bench(parser.parse_args().quick)
    print("| benchmark | speed-up | detail |\n|---|---:|---|")
    for name, ratio, detail in rows:
        print(f"| {name} | {ratio:.2f}x | {detail} |")
