import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# Meta's real Llama 3 tokenizer is not in this repository: LLAMA3_TOKENIZER names it (our CI keeps a copy
# beside the checkout); tests that need it skip without it
CI_COPY = ROOT.parent / "shared" / "llama3" / "tokenizer.model"
LLAMA3_TOKENIZER = Path(os.environ.get("LLAMA3_TOKENIZER") or CI_COPY)
sys.path.insert(0, str(ROOT))


@pytest.fixture
def llama3_tokenizer_path():
    """Meta's real Llama 3 tokenizer.model (CI has it; a user's clone may not)."""
    if not LLAMA3_TOKENIZER.exists():
        pytest.skip(f"{LLAMA3_TOKENIZER} not found: set LLAMA3_TOKENIZER to Meta's Llama 3 tokenizer.model")
    return LLAMA3_TOKENIZER


@pytest.fixture(autouse=True)
def _seed_and_threads():
    import torch

    torch.manual_seed(0)
    if os.environ.get("TEST_THREADS"):
        torch.set_num_threads(int(os.environ["TEST_THREADS"]))
    yield
