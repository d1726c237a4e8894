"""The Callahan & Paskett (2021) analysis script, end to end on the tiny ``digits`` configuration."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import scipy.stats
import torch

from analyses import callahan2021
from infoprobe import checkpoint
from infoprobe.data import load_dataset


def _numbers(value: Any) -> list[float]:
    if isinstance(value, bool) or value is None:
        return []
    if isinstance(value, (int, float)):
        return [float(value)]
    if isinstance(value, dict):
        return [x for v in value.values() for x in _numbers(v)]
    if isinstance(value, list):
        return [x for v in value for x in _numbers(v)]
    return []


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("callahan")
    paths = {"runs": root / "runs", "figures": root / "figures", "results": root / "results"}
    argv = ["--dataset", "digits", "--quick", "--device", "cpu", "--sweep", "2", "--n-boot", "4",
            "--n-ip", "200", "--runs", str(paths["runs"]), "--figures", str(paths["figures"]),
            "--results", str(paths["results"])]
    assert callahan2021.main(argv) == 0
    paths["argv"] = argv  # type: ignore[assignment]
    return paths


@pytest.mark.slow
def test_outputs_exist_and_numbers_are_finite(run: dict[str, Path]) -> None:
    for stem in ("entropy", "relative_entropy", "bins", "bottleneck", "info_plane"):
        assert (run["figures"] / f"callahan2021_{stem}_digits.png").stat().st_size > 10_000
    results = json.loads((run["results"] / "callahan2021.json").read_text())["digits"]
    m = results["models"]
    for kind in ("inn", "classical"):
        entry = m[kind]
        n_layers = len(entry["layers"])
        assert len(entry["curves"]["entropy"]) == n_layers
        assert len(entry["curves"]["kl_previous"]) == n_layers - 1
        assert entry["regions"][0] == "input" and "bottleneck" in entry["regions"]
        assert all(math.isfinite(x) for x in _numbers(entry["curves"]) + _numbers(entry["io_kl_bins"]))
        assert entry["joint_kl"]["knn"]["value"] is not None
        ip = entry["info_plane"]
        for est in ("binned", "noisy_0.1", "noisy_0.3"):
            values = ip[est]["ixt"]
            assert len(values) == n_layers
            # Both estimators are bounded by log n (up to rounding).
            assert all(-1e-6 <= v <= ip["log_n"] + 1e-6 for v in values)
    # The INN blocks before the bottleneck are invertible: the input comes back from every T_l.
    assert max(m["inn"]["inversion_error"].values()) < 1e-4
    assert sorted(results["sweep"]) == ["2", "8"]
    md = (run["results"] / "callahan2021.md").read_text()
    assert "## digits" in md and "REDUCED SCALE" in md and "callahan2021 --dataset digits" in md


@pytest.mark.slow
def test_preset_matches_numpy_scipy_and_reuse_reproduces(run: dict[str, Path]) -> None:
    """The io KL equals scipy.stats.entropy of numpy histograms (100 own-range bins, +1);
    --render-only keeps the hand-written discussion; --reuse loads the checkpoints and
    reproduces the numbers."""
    results = json.loads((run["results"] / "callahan2021.json").read_text())["digits"]
    ckpt = checkpoint.load(run["runs"] / "digits-quick" / "classical-k8" / "checkpoint.pt")
    model = checkpoint.build_model(ckpt, device="cpu").eval()
    x = load_dataset("digits", split="test").images
    with torch.no_grad():
        x_hat = model.reconstruct(x)
    p = np.histogram(x.numpy().ravel(), bins=100)[0] + 1.0
    q = np.histogram(x_hat.numpy().ravel(), bins=100)[0] + 1.0
    expected = scipy.stats.entropy(p, q)
    assert results["models"]["classical"]["io_kl_preset"] == pytest.approx(expected, rel=1e-5)

    md_path = run["results"] / "callahan2021.md"
    md_path.write_text(md_path.read_text() + "\n" + callahan2021.DISCUSSION_MARK + "\nhand-written text\n")
    assert callahan2021.main([*run["argv"], "--render-only"]) == 0  # type: ignore[misc]
    rendered = md_path.read_text()
    assert "## digits" in rendered and rendered.endswith("hand-written text\n")

    argv = [*run["argv"], "--reuse"]  # type: ignore[misc]
    assert callahan2021.main(argv) == 0
    again = json.loads((run["results"] / "callahan2021.json").read_text())["digits"]
    for kind in ("inn", "classical"):
        assert again["models"][kind]["training"]["source"] == "loaded"
        assert again["models"][kind]["io_kl_preset"] == pytest.approx(
            results["models"][kind]["io_kl_preset"], rel=1e-6)
