"""The bottleneck-sweep script on digits: a re-run of one model keeps the other's rows and the hand-written reading."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from analyses import bottleneck_sweep
from analyses.callahan2021 import DISCUSSION_MARK


@pytest.mark.slow
def test_rerunning_one_model_keeps_the_other_and_the_reading(tmp_path: Path) -> None:
    base = ["--dataset", "digits", "--ks", "2", "--epochs", "1", "--threads", "1", "--device", "cpu",
            "--runs", str(tmp_path / "runs"), "--results", str(tmp_path / "sweep"), "--figures", str(tmp_path)]
    assert bottleneck_sweep.main(base) == 0
    page = tmp_path / "sweep.md"
    page.write_text(page.read_text() + f"\n{DISCUSSION_MARK}\nhand-written reading\n")
    first = {r["model"]: r for r in json.loads((tmp_path / "sweep.json").read_text())["rows"]}

    assert bottleneck_sweep.main([*base, "--models", "classical-ae", "--runs", str(tmp_path / "runs2")]) == 0
    rows = {r["model"]: r for r in json.loads((tmp_path / "sweep.json").read_text())["rows"]}
    assert rows["inn-ae"]["test_l1"] == first["inn-ae"]["test_l1"]
    assert "--models" not in rows["inn-ae"]["command"] and "--models classical-ae" in rows["classical-ae"]["command"]
    text = page.read_text()
    assert "Rows of inn-ae from an earlier run" in text and text.endswith("hand-written reading\n")

    # another scale: nothing is kept
    assert bottleneck_sweep.main([*base, "--models", "classical-ae", "--epochs", "2",
                                  "--runs", str(tmp_path / "runs3")]) == 0
    assert {r["model"] for r in json.loads((tmp_path / "sweep.json").read_text())["rows"]} == {"classical-ae"}
