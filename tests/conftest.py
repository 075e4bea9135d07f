import os

import pytest
import torch

# Two cores are shared by the whole suite; more threads only add contention.
torch.set_num_threads(min(2, os.cpu_count() or 1))


@pytest.fixture(autouse=True)
def grad_mode_is_not_leaked():
    """A test (or the code it calls in-process) must not switch autograd off for the next one."""
    yield
    assert torch.is_grad_enabled(), "autograd was left disabled (torch.set_grad_enabled(False) leaked)"
