"""``analyses/demo.py --checkpoints``: analyse given checkpoints, compare them, and end with where
the reports are and the headline numbers (the path ``make demo`` takes after training)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

import models
from analyses import demo
from infoprobe import checkpoint


@pytest.mark.slow
def test_checkpoints_are_analysed_compared_and_summarised(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    paths = []
    for family in ("classical-ae", "inn-ae"):
        torch.manual_seed(0)
        paths.append(checkpoint.save(tmp_path / "ckpt" / f"{family}.pt", models.build(family, dataset="digits"),
                                     dataset={"name": "digits", "split": "train"}))
    out = tmp_path / "out"
    assert demo.main(["--checkpoints", *map(str, paths), "--samples", "60", "--no-umap", "--device", "cpu",
                      "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    ending = printed[printed.index("demo: 2 models analysed"):]
    for name in ("classical-ae", "inn-ae"):
        report = out / name / "analysis" / "report.html"
        assert report.is_file() and str(report) in ending
        metrics = json.loads((out / name / "analysis" / "metrics.json").read_text())
        assert metrics["dataset"]["n_samples"] == 60
        assert f"{name}:\n    reconstruction L1 = {metrics['globals']['l1']:.4g}  (" in ending
    assert str(out / "compare" / "compare.html") in ending and (out / "compare" / "compare.html").is_file()


def test_run_names_are_distinct() -> None:
    assert demo._names([Path("a/inn.pt"), Path("b/ae.pt")]) == ["inn", "ae"]
    assert demo._names([Path("a/checkpoint.pt"), Path("b/checkpoint.pt")]) == ["a-checkpoint", "b-checkpoint"]
    assert demo._names([Path("a/c.pt"), Path("a/c.pt")]) == ["0-a-c", "1-a-c"]
