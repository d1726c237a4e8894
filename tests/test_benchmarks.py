"""The benchmark scripts run end to end at a tiny scale and write the JSON they promise.

Their timings are not checked here (machines differ 3×; `make bench` measures), only that a
change of the library's API has not broken them, which a benchmark run once a month would miss.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"


def _run(script: str, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run([sys.executable, str(BENCH / script), *args], capture_output=True, text=True,
                          timeout=timeout)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


@pytest.mark.slow
def test_analyze_benchmark_reports_a_ratio_to_the_plain_pass(shared_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "analyze.json"
    _run("analyze.py", "--samples", "300", "--no-umap", "--data-root", str(shared_data), "--out", str(out))
    result = json.loads(out.read_text())
    plain = result["plain_pass_seconds"]
    assert result["n_samples"] == 300 and result["n_layers"] > 10
    assert plain["mean"] > 0 and result["ratio"] == pytest.approx(result["analyze_seconds"] / plain["mean"])
    assert result["peak_rss_mb"] > 0 and not result["umap"]


@pytest.mark.slow
def test_embedding_benchmark_compares_cold_and_warm_fits(tmp_path: Path) -> None:
    out = tmp_path / "embedding.json"
    _run("embedding.py", "--n", "300", "--repeats", "1", "--out", str(out))
    result = json.loads(out.read_text())
    assert result["n"] == 300 and result["same_seed_identical"] is True
    assert result["cold_over_warm"] == pytest.approx(result["cold_seconds"] / result["warm_median_seconds"], rel=0.01)
