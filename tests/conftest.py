"""Shared fixtures. Tests never need the network; real MNIST / CIFAR-10 come from ../shared/data."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

SHARED_DATA = Path(os.environ.get("INFOPROBE_TEST_DATA", Path(__file__).resolve().parents[1] / ".." / "shared" / "data")).resolve()


@pytest.fixture(autouse=True)
def _seed() -> None:
    torch.manual_seed(0)


@pytest.fixture
def shared_data() -> Path:
    """The folder with mnist.npz and cifar10.npz; the test is skipped when it is absent."""
    if not (SHARED_DATA / "mnist.npz").is_file():
        pytest.skip(f"real MNIST/CIFAR-10 test data not found in {SHARED_DATA} (set INFOPROBE_TEST_DATA)")
    return SHARED_DATA
