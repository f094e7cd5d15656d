"""The README's first command at toy scale: every stage of demo.py runs (two CPT seeds per mix, side by side),
leaves artefacts that parse, and its report's numbers come back from the samples alone."""

import json
import subprocess
import sys

import numpy as np
import sacrebleu
from conftest import ROOT


def test_quick_demo_end_to_end(tmp_path):
    data, out = tmp_path / "data", tmp_path / "out"
    cmd = [sys.executable, "demo.py", "--quick", "--data", str(data), "--out", str(out)]
    run = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]

    index = json.loads((data / "index.json").read_text())
    assert index["complete"] and index["sources"], "prepare wrote no sources"
    for name, source in index["sources"].items():
        tokens = np.fromfile(data / source["bin"], dtype=np.uint32)
        assert len(tokens) == source["n_tokens"], name
        assert (tokens < index["tokenizer"]["n_vocab"]).all()
    mixes = {m: json.loads((data / f"mix_{m}.json").read_text())["sources"] for m in ("base", "bi", "mono")}
    for sources in mixes.values():
        assert abs(sum(s["weight"] for s in sources) - 1) < 1e-6
    # the same replay of the base's data on top of both mixes: 20% of the tokens by size; in Mix 2 the
    # base's bitext is there as replay only
    replay = {s["name"]: s["n_tokens"] for s in mixes["base"] if s["weight"] > 0}
    on_top = {name: 0.2 * n / sum(replay.values()) for name, n in replay.items()}
    for sources in (mixes["bi"], mixes["mono"]):
        assert all(s["weight"] >= on_top[s["name"]] - 1e-12 for s in sources if s["name"] in replay)
    assert all(abs(s["weight"] - on_top[s["name"]]) < 1e-12 for s in mixes["mono"]
               if s["name"] in replay and s["kind"] == "bi")
    assert all(s["weight"] == 0 for s in mixes["mono"] if s["kind"] == "bi" and s["name"] not in replay)

    doc = json.loads((out / "demo_report.json").read_text())
    assert [(r["name"], r["seed"]) for r in doc["runs"]] == [("base", None), ("bi", 0), ("mono", 0),
                                                             ("bi", 1), ("mono", 1)]
    assert set(doc["base_languages"]) >= {"eng_Latn", "fra_Latn"} and doc["zero_shot"]
    for r in doc["runs"]:
        run_dir = (ROOT / r["results"]).parent
        rows = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]
        assert any("loss" in row for row in rows) and any("val" in row for row in rows)
        assert json.loads((run_dir / "hf" / "config.json").read_text())["model_type"] == "llama"
        samples = [json.loads(line) for line in (ROOT / r["samples"]).read_text().splitlines()]
        units = {s["unit"] for s in samples}
        assert "-".join(doc["zero_shot"]) in units and any(u.startswith("eng_Latn-") for u in units)
    # a number of the report, recomputed from the samples alone: chrF++ per language, then the mean
    key = "chrf++ eng_Latn->X all"
    langs = sorted({c for ls in doc["eval_languages"].values() for c in ls})
    bi = [json.loads(line) for line in (ROOT / doc["runs"][1]["samples"]).read_text().splitlines()]
    per_lang = [sacrebleu.CHRF(word_order=2).corpus_score(
        [s["hypothesis"] for s in bi if s["unit"] == f"eng_Latn-{c}"],
        [[s["reference"] for s in bi if s["unit"] == f"eng_Latn-{c}"]]).score for c in langs]
    assert abs(doc["tables"][key]["bi"][0] - sum(per_lang) / len(per_lang)) < 1e-9
    report = (out / "demo_report.md").read_text()
    assert "Bi - Mono" in report and "### Targets" in report and "zero-shot" in report
    assert (out / "demo_report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # a second run reuses every finished stage
    again = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stdout.count("reusing") >= 8, again.stdout
