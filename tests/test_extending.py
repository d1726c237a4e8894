"""The recipes for extending infoprobe, each one module (here: this file) plus one registration
line: a new estimator, a new figure, a new model family."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import infoprobe
import models
from infoprobe import estimators, plotting
from infoprobe.data import dataset_spec
from infoprobe.errors import InfoprobeError
from infoprobe.estimators.estimate import Flag
from infoprobe.results import AnalysisResult
from models.base import Autoencoder


def _range_entropy(x: torch.Tensor, *, floor: float = 1e-12) -> tuple[float, list[str | Flag]]:
    """log of the volume of the data's bounding box: the entropy of a uniform distribution on it."""
    widths = (x.max(0).values - x.min(0).values).double().clamp_min(floor)
    return float(torch.log(widths).sum()), []


def test_a_new_estimator_is_one_function_and_one_registration() -> None:
    method = estimators.Method("entropy", "box_test", _range_entropy, "log volume of the bounding box",
                               "(a test)", "bootstrap")
    estimators.register(method)
    x = np.random.default_rng(0).uniform(0, 2, size=(20_000, 3))
    est = infoprobe.entropy(x, method="box_test")
    assert est.value == pytest.approx(3 * math.log(2), abs=1e-3)  # uniform on [0, 2]^3
    result = infoprobe.analyze(nn.Sequential(nn.Linear(3, 3)), torch.from_numpy(x[:300]).float(),
                               estimators=["entropy=box_test(floor=1e-9)"], umap=False, progress=False)
    assert "box_test(floor=1e-09)" in result.layers[0].entropy
    with pytest.raises(InfoprobeError, match="already registered"):
        estimators.register(method)


def test_a_new_figure_is_one_function_and_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    def plot_dims(result: AnalysisResult, path: Path) -> Path:
        plt = plotting._plt()
        fig, ax = plt.subplots()
        ax.plot([row.dim for row in result.layers])
        fig.savefig(path)
        plt.close(fig)
        return path

    monkeypatch.setitem(plotting.FIGURES, "dims", plot_dims)
    result = infoprobe.analyze(nn.Sequential(nn.Linear(4, 2)), torch.randn(50, 4), estimators=["entropy=callahan2021"],
                               umap=False, progress=False)
    assert plotting.plot_all(result, tmp_path)["dims"].stat().st_size > 1000


def test_a_new_model_family_is_one_module_and_one_registration() -> None:
    class Halving(Autoencoder):
        bottleneck_modules = ("enc",)

        def __init__(self, config: dict) -> None:  # type: ignore[type-arg]
            super().__init__(config, input_shape=dataset_spec(config["dataset"]).shape)
            self.enc, self.dec = nn.Linear(64, 32), nn.Linear(32, 64)

        def encode(self, x: torch.Tensor) -> torch.Tensor:
            return self.enc(x.flatten(1))

        def decode(self, code: torch.Tensor) -> torch.Tensor:
            return self.dec(code).reshape(-1, 1, 8, 8)

    @models.register("halving-test")
    def build(**config: str) -> Halving:
        return Halving(config)

    model = models.build("halving-test", dataset="digits")
    result = infoprobe.analyze(model, infoprobe.load_dataset("digits", split="test"), preset="callahan2021",
                               umap=False, progress=False)
    assert [row.region for row in result.layers] == ["encoder", "bottleneck", "decoder"]
