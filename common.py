"""Small helpers every script shares: writes that are never seen half done, worker processes that end
with their parent (a `kill -9` of a run must not leave workers writing into a folder a rerun uses), and
the one loader of config files (mix configs and training configs alike)."""

import argparse
import ctypes
import hashlib
import os
import signal
import sys
import threading
import time
import types
from pathlib import Path


def write_atomic(path, data: str | bytes) -> None:
    """Write a temporary sibling, then rename it: a reader (or a rerun after a kill) sees the old file or
    the new one, never a part."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        tmp.write_bytes(data.encode() if isinstance(data, str) else data)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def file_sha256(path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def die_with_parent() -> None:
    """End this process when its parent dies, even by SIGKILL: Linux delivers SIGKILL at once
    (prctl PR_SET_PDEATHSIG); elsewhere a thread checks the parent every 0.2 s."""
    parent = os.getppid()
    if sys.platform.startswith("linux"):
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # 1 = PR_SET_PDEATHSIG
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)
        return

    def watch():
        while os.getppid() == parent:
            time.sleep(0.2)
        os._exit(1)

    threading.Thread(target=watch, daemon=True).start()


def read_config_file(path) -> dict:
    """The names a config file (plain Python assignments; it may import another config) defines: the one
    loader of mix configs and train.py's configs. Names starting with _ and imported modules are not keys."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"config file {path} not found")
    namespace: dict = {}
    try:
        exec(compile(path.read_text(), str(path), "exec"), namespace)
    except Exception as e:
        raise ValueError(f"{path}: {type(e).__name__}: {e}") from None
    is_key = lambda k, v: not k.startswith("_") and not isinstance(v, types.ModuleType)
    return {k: v for k, v in namespace.items() if is_key(k, v)}


class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Every script's --help: its docstring as written, and every option with its default."""
