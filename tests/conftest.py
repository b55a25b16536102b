"""Shared test fixtures."""
import pytest


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny models run as fast on one torch thread, and far faster when other processes share the
    cores (thread-pool contention). Modules opt in with ``pytestmark = pytest.mark.usefixtures(...)``."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
