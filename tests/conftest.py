"""Shared fixtures: the PyTorch oracle (optional) and thread-count parametrisation."""
import warnings

import numpy as np
import pytest
from hypothesis import settings

import qlearn as ql

settings.register_profile("ci", max_examples=60, deadline=None)
settings.load_profile("ci")

try:
    import torch
    torch.set_num_threads(1)
except ImportError:  # torch is the oracle, never a dependency
    torch = None

requires_torch = pytest.mark.skipif(torch is None, reason="PyTorch is not installed "
                                    "(pip install torch==2.13.0 to run the oracle tests)")


@pytest.fixture
def torch_mod():
    """The torch module, with its deprecation warnings for quantized tensors silenced."""
    if torch is None:
        pytest.skip("PyTorch is not installed")
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=UserWarning)
        yield torch


@pytest.fixture
def torch_x86(torch_mod):
    """``torch_mod`` on the x86 quantized engine with its RNG seeded at 0; the engine is
    restored after."""
    before = torch_mod.backends.quantized.engine
    torch_mod.backends.quantized.engine = "x86"
    torch_mod.manual_seed(0)
    yield torch_mod
    torch_mod.backends.quantized.engine = before


@pytest.fixture(params=[1, 2], ids=["1thread", "2threads"])
def num_threads(request):
    """Run a test at 1 and 2 threads; restores the previous setting after."""
    before = ql.get_num_threads()
    ql.set_num_threads(request.param)
    yield request.param
    ql.set_num_threads(before)


@pytest.fixture
def rng():
    return np.random.default_rng(12345)
