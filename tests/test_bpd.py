"""Negative log-likelihood in bits per dimension, one test over every family that has ``bpd``."""

from __future__ import annotations

from typing import Any

import pytest
import torch

import models
from infoprobe.data import load_dataset

FAMILIES = [("vae", {"dataset": "digits", "prior": "realnvp"}), ("selfvae", {"dataset": "digits", "levels": 1})]


@pytest.mark.slow
@pytest.mark.parametrize(("name", "config"), FAMILIES, ids=[n for n, _ in FAMILIES])
def test_bpd_finite_untrained_and_lower_after_training(name: str, config: dict[str, Any]) -> None:
    torch.manual_seed(0)
    model = models.build(name, **config)
    x = load_dataset("digits").images[:512]
    test = load_dataset("digits", split="test").images[:32]
    model.train()
    model.loss(x[:64])  # data-dependent initialisation on a first batch
    model.eval()
    before = float(model.bpd(test, n_importance=8))
    assert torch.isfinite(torch.tensor(before))
    optimizer = torch.optim.Adamax(model.parameters(), lr=2e-3)
    model.train()
    for step in range(60):
        loss = model.loss(x[(step * 32) % len(x):][:32])["loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    after = float(model.bpd(test, n_importance=8))
    assert after < before
    # the importance-sampled bound is at least as tight as the ELBO on average
    elbo_bpd = float(torch.stack([model.loss(test)["bpd"] for _ in range(8)]).mean())
    assert after <= elbo_bpd + 0.05
