"""AnalysisResult as plain data: JSON round trip against the schema, CSV, figures, report,
and the commands that only read results (plot, compare). No model is run here."""

from __future__ import annotations

import base64
import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest

from infoprobe.analysis import AnalysisResult, EstimateRow, LayerRow, metrics_schema
from infoprobe.cli import main

jsonschema = pytest.importorskip("jsonschema")


def _estimate(value: float | None, method: str, *, ci: bool = False, ceiling: float | None = None) -> EstimateRow:
    interval = None if not ci or value is None else (value - 0.1, value + 0.1)
    near = ceiling is not None and value is not None and value >= 0.95 * ceiling
    return EstimateRow(value=value, method=method, ci=interval, n=100, d=4, ceiling=ceiling,
                       near_ceiling=near)


def make_result(*, offset: float = 0.0, invertible: bool = True, n_layers: int = 7) -> AnalysisResult:
    """A result with the structure analyze() writes (values drawn, not measured)."""
    rng = np.random.default_rng(int(offset * 10))
    regions = ["encoder"] * 3 + ["bottleneck"] + ["decoder"] * (n_layers - 4)
    rows = []
    for i in range(n_layers):
        h = 3.0 + offset + 0.2 * math.sin(i)
        rows.append(LayerRow(
            index=i, label=f"layer{i}" + (":inverse" if invertible and i > 3 else ""),
            name=f"net.{i}", direction="inverse" if invertible and i > 3 else "forward",
            module_type="Linear", feature_shape=(4,), region=regions[i],
            n_nonfinite=0,
            entropy={"callahan2021": _estimate(h, "callahan2021", ceiling=math.log(100)),
                     "gaussian": _estimate(h - 5 if i != 2 else None, "gaussian", ci=True)},
            relative_entropy={} if i == 0 else {"callahan2021": _estimate(0.05 * i, "callahan2021")},
            mi_input=_estimate(4.0 - 0.1 * i, "ksg", ci=False, ceiling=math.log(100)),
            mi_label=_estimate(1.0 + 0.1 * i, "ksg", ceiling=math.log(10)),
        ))
    coords = rng.normal(size=(60, 2)).round(4).tolist()
    return AnalysisResult(
        model={"name": "toy", "class": "tests.Toy", "config": {"k": 4}, "n_parameters": 10,
               "invertible": invertible, "bottleneck_modules": ["net.3"], "checkpoint": None},
        dataset={"name": "digits", "split": "test", "n_samples": 60, "input_shape": [1, 8, 8],
                 "n_classes": 10},
        settings={"estimators": ["callahan2021", "gaussian"], "preset": None, "units": "nats",
                  "histogram_bins": 100, "joint_samples": 60, "ci": 0.95, "n_boot": 10,
                  "mi_method": "ksg", "layers": None, "seed": 0, "batch_size": 32,
                  "device": "cpu", "umap": True, "umap_samples": 5000},
        layers=rows,
        globals={"kl_data_reconstruction": {"callahan2021": _estimate(0.7 + offset, "callahan2021")},
                 "mse": 0.01, "l1": float("nan")},
        embedding={"method": "umap", "layer": "layer3", "coords": coords,
                   "labels": [i % 10 for i in range(60)], "indices": list(range(60)),
                   "n_features": 4, "params": {}, "seconds": 0.5},
        examples={"shape": [1, 8, 8], "inputs": rng.uniform(size=(3, 64)).round(3).tolist(),
                  "reconstructions": rng.uniform(size=(3, 64)).round(3).tolist(), "labels": [0, 1, 2]},
        timings={"record": 0.1, "total": 0.2}, versions={"infoprobe": "0.1.0"},
        warnings=["layer2: gaussian not computed"], created="2026-01-01T00:00:00+00:00",
    )


def _assert_png_not_blank(path: Path) -> None:
    from PIL import Image

    with Image.open(path) as im:
        im.verify()
    with Image.open(path) as im:
        pixels = np.asarray(im.convert("L"), dtype=float)
    assert pixels.shape[0] > 50 and pixels.shape[1] > 50
    assert pixels.std() > 5, f"{path.name} looks blank"


def test_json_round_trip_validates_against_schema(tmp_path: Path) -> None:
    result = make_result()
    path = result.to_json(tmp_path / "metrics.json")
    data = json.loads(path.read_text())
    jsonschema.validate(data, metrics_schema())
    assert data["globals"]["l1"] is None  # NaN is written as null, never as invalid JSON
    assert data["layers"][2]["entropy"]["gaussian"]["value"] is None
    again = AnalysisResult.from_json(path)
    assert again.to_dict() == data
    assert again.bottleneck_index == 3
    assert again.series("entropy", "callahan2021") == [r.entropy["callahan2021"].value for r in result.layers]


def test_schema_rejects_a_broken_row(tmp_path: Path) -> None:
    data = make_result().to_dict()
    data["layers"][0]["region"] = "middle"
    with pytest.raises(jsonschema.ValidationError, match="middle"):
        jsonschema.validate(data, metrics_schema())


def test_from_json_rejects_other_files(tmp_path: Path) -> None:
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"schema": "something-else"}))
    with pytest.raises(ValueError, match="infoprobe-metrics"):
        AnalysisResult.from_json(other)
    future = make_result().to_dict() | {"schema_version": 99}
    other.write_text(json.dumps(future))
    with pytest.raises(ValueError, match="schema version 99"):
        AnalysisResult.from_json(other)


def test_csv_has_one_row_per_layer_with_intervals(tmp_path: Path) -> None:
    result = make_result()
    with result.to_csv(tmp_path / "layers.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert [r["label"] for r in rows] == [r.label for r in result.layers]
    assert float(rows[1]["entropy_gaussian_lo"]) == pytest.approx(result.layers[1].entropy["gaussian"].ci[0])
    assert rows[2]["entropy_gaussian"] == ""
    assert rows[0]["kl_prev_callahan2021"] == ""  # the first layer has no previous one
    assert float(rows[1]["kl_prev_callahan2021"]) == pytest.approx(0.05)


def test_figures_decode_and_are_not_blank(tmp_path: Path) -> None:
    figures = make_result().plot_all(tmp_path)
    assert set(figures) == {"entropy", "relative_entropy", "info_plane", "umap", "reconstructions"}
    for path in figures.values():
        _assert_png_not_blank(path)


def test_report_embeds_every_figure(tmp_path: Path) -> None:
    from infoprobe.report import write_report

    result = make_result(invertible=False)
    figures = result.plot_all(tmp_path / "figures")
    page = write_report(result, tmp_path / "report.html", figures).read_text()
    embedded = [part.split('"', 1)[0] for part in page.split("data:image/png;base64,")[1:]]
    assert len(embedded) == len(figures)
    assert {base64.b64decode(e) for e in embedded} == {p.read_bytes() for p in figures.values()}
    assert "src=\"http" not in page and "<script" not in page  # self-contained
    assert "layer2: gaussian not computed" in page


def test_plot_command_redraws_from_metrics(tmp_path: Path) -> None:
    make_result().to_json(tmp_path / "run" / "metrics.json")
    assert main(["plot", str(tmp_path / "run" / "metrics.json")]) == 0
    for name in ("entropy", "relative_entropy", "info_plane", "umap", "reconstructions"):
        _assert_png_not_blank(tmp_path / "run" / "figures" / f"{name}.png")
    assert (tmp_path / "run" / "report.html").is_file()


def test_compare_two_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    make_result().to_json(tmp_path / "inn" / "metrics.json")
    make_result(offset=1.0, invertible=False, n_layers=9).to_json(tmp_path / "classical" / "metrics.json")
    out = tmp_path / "cmp"
    assert main(["compare", str(tmp_path / "inn"), str(tmp_path / "classical"), "--out", str(out)]) == 0
    for name in ("entropy_compare.png", "relative_entropy_compare.png"):
        _assert_png_not_blank(out / name)
    with (out / "kl_table.csv").open() as fh:
        table = list(csv.reader(fh))
    assert [row[0] for row in table[1:]] == ["inn", "classical"]
    assert float(table[1][3]) == pytest.approx(0.7)
    assert float(table[2][3]) == pytest.approx(1.7)
    assert "data:image/png;base64," in (out / "compare.html").read_text()
    assert "| inn |" in capsys.readouterr().out


def test_compare_and_plot_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plot", str(tmp_path / "missing.json")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("infoprobe: error:") and err.count("\n") == 1
    make_result().to_json(tmp_path / "a" / "metrics.json")
    assert main(["compare", str(tmp_path / "a"), "--names", "x", "y", "--out", str(tmp_path / "o")]) == 2
    assert "one --names entry per run" in capsys.readouterr().err
