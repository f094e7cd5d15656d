"""The README's first command at toy scale: every stage of demo.py runs and leaves artefacts that parse."""

import json
import subprocess
import sys

import numpy as np
from conftest import ROOT


def test_quick_demo_end_to_end(tmp_path):
    data, out = tmp_path / "data", tmp_path / "out"
    cmd = [sys.executable, "demo.py", "--quick", "--data", str(data), "--out", str(out)]
    run = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]

    index = json.loads((data / "index.json").read_text())
    assert index["sources"], "prepare wrote no sources"
    for name, source in index["sources"].items():
        tokens = np.fromfile(data / source["bin"], dtype=np.uint32)
        assert len(tokens) == source["n_tokens"], name
        assert (tokens < index["tokenizer"]["n_vocab"]).all()
    for mix in ("base", "bi", "mono"):
        sources = json.loads((data / f"mix_{mix}.json").read_text())["sources"]
        assert abs(sum(s["weight"] for s in sources) - 1) < 1e-6
        if mix == "mono":
            assert all(s["weight"] == 0 for s in sources if s["kind"] == "bi")
    for run_name in ("base", "bi", "mono"):
        run_dir = out / f"demo_{run_name}"
        rows = [json.loads(line) for line in (run_dir / "log.jsonl").read_text().splitlines()]
        assert any("loss" in r for r in rows) and any("val" in r for r in rows)
        assert (run_dir / "hf" / "model.safetensors").stat().st_size > 0
        assert json.loads((run_dir / "hf" / "config.json").read_text())["model_type"] == "llama"
        section = json.loads((run_dir / "flores.json").read_text())["tasks"]["flores"]
        directions = {s["direction"] for s in section["scores"].values()}
        assert directions == {"eng_Latn->X", "X->eng_Latn"}
        assert all(0 <= s["chrf++"] <= 100 for s in section["scores"].values())
    report = (out / "demo_report.md").read_text()
    assert "chrf++" in report and "Bi - Mono" in report
    assert (out / "demo_report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # a second run reuses every finished stage
    again = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr[-3000:]
    assert again.stdout.count("reusing") >= 9, again.stdout
