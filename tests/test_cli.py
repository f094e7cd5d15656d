"""Every script's --help: exit 0, the usage, and every option that has a default shows it."""

import argparse
import importlib
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = ["prepare_mala", "mix", "evaluate", "checkpoint", "tokenizer", "cldr_corpus", "demo", "bench",
           "scripts.gpu_check"]


@pytest.mark.parametrize("name", SCRIPTS)
def test_help_shows_every_option_with_its_default(name, capsys, monkeypatch):
    parsers = []
    real = argparse.ArgumentParser.parse_args

    def spy(self, *args, **kwargs):  # the parser main() builds, to list its options
        parsers.append(self)
        return real(self, *args, **kwargs)

    monkeypatch.setattr(argparse.ArgumentParser, "parse_args", spy)
    monkeypatch.setattr(argparse.ArgumentParser, "parse_intermixed_args", spy)
    monkeypatch.syspath_prepend(str(ROOT))
    module = importlib.import_module(name)
    with pytest.raises(SystemExit) as e:
        module.main(["--help"])
    out = capsys.readouterr().out
    assert e.value.code == 0 and out.startswith("usage:")
    options = [a for a in parsers[0]._actions if a.option_strings and a.dest != "help"]
    assert options
    for action in options:
        assert action.help, f"{name}: {action.option_strings[0]} has no help"
        if action.default not in (None, False, argparse.SUPPRESS) and not isinstance(action.default, list):
            assert f"(default: {action.default})" in " ".join(out.split()), (name, action.option_strings)


def test_train_help_lists_the_config_files(capsys):
    sys.path.insert(0, str(ROOT))
    import train

    train.main(["--help"])
    out = capsys.readouterr().out
    assert "global_batch_size = 8  # sequences per optimizer step" in out and "config/" in out
