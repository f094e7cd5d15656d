import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED = ROOT.parent / "shared"
sys.path.insert(0, str(ROOT))


@pytest.fixture
def llama3_tokenizer_path():
    """Meta's real Llama 3 tokenizer.model from ../shared (CI has it; a user's clone may not)."""
    path = SHARED / "llama3" / "tokenizer.model"
    if not path.exists():
        pytest.skip(f"{path} not found: the real Llama 3 tokenizer lives in ../shared/llama3 (CI only)")
    return path


@pytest.fixture(autouse=True)
def _seed_and_threads():
    import torch

    torch.manual_seed(0)
    if os.environ.get("TEST_THREADS"):
        torch.set_num_threads(int(os.environ["TEST_THREADS"]))
    yield
