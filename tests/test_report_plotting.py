"""AnalysisResult as plain data: JSON round trip against the schema, CSV, figures, report,
and the commands that only read results (plot, compare). No model is run here: the results
are built by hand with every status an estimate can have, so that each rule about showing a
value (never an impossible number, never a non-ok value as a plain one) can be checked."""

from __future__ import annotations

import base64
import csv
import html
import json
import math
import re
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from infoprobe.cli import main
from infoprobe.errors import InfoprobeError
from infoprobe.estimators.estimate import Estimate
from infoprobe.plotting import plot_all, plot_entropy, plot_relative_entropy
from infoprobe.report import write_report
from infoprobe.results import AnalysisResult, GlobalEstimates, LayerRow, metrics_schema
from infoprobe.spec import AnalysisSpec
from infoprobe.summary import fit_table, layer_table

jsonschema = pytest.importorskip("jsonschema")

LEVEL = 0.9
BIASED_H = 7.125  # the one biased entropy: shown only as "7.125 [B]"
NEGATIVE_KL = -0.321  # an impossible KL (interval below 0): never shown as a number
SMALL_NEGATIVE_KL = -0.0456  # a negative KL whose interval reaches 0: shown as "≈0 [B]"
PASSTHROUGH = "flatten"


def _est(value: float, method: str, quantity: str = "entropy", *, status: str = "ok", reason: str = "",
         ci: tuple[float, float] | None = None, interval: str | None = None, ceiling: float | None = None,
         n: int = 60, d: int = 4) -> Estimate:
    return Estimate(value, ci, method, n, d, quantity=quantity, status=status, reason=reason, ceiling=ceiling,
                    interval=interval if ci is not None else None, level=LEVEL if ci is not None else None)


def _around(value: float, half: float = 0.1) -> tuple[float, float]:
    return (value - half, value + half)


def make_result(*, offset: float = 0.0, invertible: bool = True) -> AnalysisResult:
    """A result with the structure analyze() writes (values chosen, not measured).

    Rows: 0 input, 1 a pass-through Flatten, 2–3 encoder, 4 the bottleneck, 5–7 decoder. The
    decoder's joint entropies are degenerate (−∞), row 2's Gaussian entropy is biased, row 3's
    could not be computed (NaN), row 4's pooled histogram is at its ceiling; rows 5 and 6 have
    negative kNN KLs; invertible rows carry an exact entropy change.
    """
    rng = np.random.default_rng(int(offset * 10))
    shapes = [(1, 8, 8), (64,), (16,), (8,), (4,), (8,), (16,), (64,)]
    regions = ["encoder"] * 4 + ["bottleneck"] + ["decoder"] * 3
    ln100 = math.log(100)
    rows = []
    for i, (shape, region) in enumerate(zip(shapes, regions, strict=True)):
        inverse = invertible and region == "decoder"
        base: dict[str, Any] = dict(
            index=i, label=["input", PASSTHROUGH][i] if i < 2 else f"net.{i}" + (":inverse" if inverse else ""),
            name=["input", PASSTHROUGH][i] if i < 2 else f"net.{i}",
            direction="input" if i == 0 else "inverse" if inverse else "forward",
            module_type=["input", "Flatten"][i] if i < 2 else "Linear", feature_shape=shape, region=region)
        if i == 1:
            rows.append(LayerRow(**base, passthrough=True))
            continue
        h = 3.0 + offset + 0.2 * math.sin(i)
        entropy = {"callahan2021": _est(h, "histogram[callahan2021]", ceiling=ln100)}
        if i == 4:
            entropy["callahan2021"] = _est(4.5, "histogram[callahan2021]", status="at_ceiling", ceiling=ln100,
                                           reason="4.5 is at its ceiling 4.61 on these data")
        if region == "decoder":
            gaussian = _est(-math.inf, "gaussian", status="degenerate",
                            reason="computed from the 4-dimensional bottleneck: its differential entropy is −∞")
        elif i == 2:
            gaussian = _est(BIASED_H, "gaussian", status="biased", ci=_around(BIASED_H), interval="bootstrap",
                            reason="only 60 samples for 16 dimensions")
        elif i == 3:
            gaussian = Estimate.failed("gaussian", RuntimeError("singular covariance"), quantity="entropy", n=60, d=8)
        else:
            gaussian = _est(h - 5, "gaussian", ci=_around(h - 5), interval="bootstrap")
        entropy["gaussian"] = gaussian
        change = {}
        if invertible and i >= 2:
            change["exact"] = _est(-0.5 - 0.1 * i, "exact", "entropy_change", ci=_around(-0.5 - 0.1 * i, 0.05),
                                   interval="clt")
        kl = {}
        if i >= 2:
            kl["callahan2021"] = _est(0.05 * i, "histogram[callahan2021]", "kl_divergence")
        if i == 5:
            kl["knn"] = _est(NEGATIVE_KL, "knn", "kl_divergence", status="invalid", ci=(-0.5, -0.2),
                             interval="subsampling",
                             reason=f"negative estimate ({NEGATIVE_KL:.3g}) of a non-negative quantity")
        elif i == 6:
            kl["knn"] = _est(SMALL_NEGATIVE_KL, "knn", "kl_divergence", status="biased", ci=(-0.1, 0.05),
                             interval="subsampling", reason="negative, consistent with 0 within its interval")
        elif i >= 2 and shapes[i] == shapes[i - 1]:
            kl["knn"] = _est(0.2, "knn", "kl_divergence", ci=_around(0.2), interval="subsampling")
        mi_input = {"noisy(scale=0.3)": _est(4.0 - 0.1 * i, "noisy(scale=0.3)", "mutual_information",
                                             ci=_around(4.0 - 0.1 * i), interval="subsampling", ceiling=math.log(60))}
        mi_label = {"ksg": _est(1.0 + 0.1 * i, "ksg", "mutual_information", ci=_around(1.0 + 0.1 * i),
                                interval="subsampling", ceiling=math.log(10))}
        rows.append(LayerRow(**base, rank=min(int(np.prod(shape)), 60),
                             intrinsic_dim=4 if region == "decoder" else None,
                             entropy=entropy, entropy_change=change, relative_entropy=kl, mi_input=mi_input,
                             mi_label=mi_label))
    spec = AnalysisSpec.create(ci=LEVEL, n_boot=10, joint_samples=60, batch_size=32, umap_samples=5000)
    coords = rng.normal(size=(60, 2)).round(4).tolist()
    return AnalysisResult(
        model={"name": "toy", "class": "tests.Toy", "config": {"k": 4}, "n_parameters": 10,
               "invertible": invertible, "bottleneck_modules": ["net.4"], "checkpoint": None},
        dataset={"name": "digits", "split": "test", "n_samples": 60, "input_shape": [1, 8, 8], "n_classes": 10},
        settings={**spec.to_dict(), "preset": None, "device": "cpu"},
        layers=rows,
        globals=GlobalEstimates(
            kl_data_reconstruction={
                "callahan2021": _est(0.7 + offset, "histogram[callahan2021]", "kl_divergence"),
                "knn": _est(2.5 + offset, "knn", "kl_divergence", status="biased", ci=_around(2.5 + offset),
                            interval="subsampling", reason="only 30 samples for 64 dimensions")},
            mse=0.01, l1=float("nan"), label_entropy=math.log(10), bottleneck="net.4", bottleneck_dim=4),
        embedding={"method": "umap", "layer": "net.4", "coords": coords, "labels": [i % 10 for i in range(60)],
                   "indices": list(range(60)), "n_features": 4, "params": {}, "seconds": 0.5},
        examples={"shape": [1, 8, 8], "inputs": rng.uniform(size=(3, 64)).round(3).tolist(),
                  "reconstructions": rng.uniform(size=(3, 64)).round(3).tolist(), "labels": [0, 1, 2]},
        timings={"record": 0.1, "total": 0.2}, versions={"infoprobe": "0.1.0"},
        warnings=["net.3: gaussian not computed"], created="2026-01-01T00:00:00+00:00",
    )


def _assert_png_not_blank(path: Path) -> None:
    from PIL import Image

    with Image.open(path) as im:
        im.verify()
    with Image.open(path) as im:
        pixels = np.asarray(im.convert("L"), dtype=float)
    assert pixels.shape[0] > 50 and pixels.shape[1] > 50
    assert pixels.std() > 5, f"{path.name} looks blank"


def _no_nonfinite_literals(text: str) -> Any:
    def refuse(name: str) -> None:
        raise AssertionError(f"metrics.json holds the non-JSON literal {name}")

    return json.loads(text, parse_constant=refuse)


@pytest.fixture(scope="module")
def drawn(tmp_path_factory: pytest.TempPathFactory) -> tuple[AnalysisResult, dict[str, Path], Path]:
    """One invertible result, its figures and its report (drawing is the slow part)."""
    folder = tmp_path_factory.mktemp("drawn")
    result = make_result()
    figures = plot_all(result, folder / "figures")
    return result, figures, write_report(result, folder / "report.html", figures)


# ---------------------------------------------------------------- metrics.json and the schema


def test_json_round_trip_validates_against_schema(tmp_path: Path) -> None:
    result = make_result()
    path = result.to_json(tmp_path / "metrics.json")
    data = _no_nonfinite_literals(path.read_text())
    jsonschema.validate(data, metrics_schema())
    assert data["schema_version"] == 2
    rows = data["layers"]
    assert rows[5]["entropy"]["gaussian"]["value"] == "-inf"  # degenerate: the true value is −∞
    assert rows[5]["entropy"]["gaussian"]["status"] == "degenerate"
    assert rows[3]["entropy"]["gaussian"]["value"] == "nan"  # could not be computed
    assert rows[3]["entropy"]["gaussian"]["status"] == "invalid"
    assert "singular covariance" in rows[3]["entropy"]["gaussian"]["reason"]
    assert rows[1]["passthrough"] is True and rows[1]["entropy"] == {}
    assert rows[2]["entropy_change"]["exact"]["interval"] == "clt"
    assert data["globals"]["l1"] is None  # a NaN error is not a number to read

    again = AnalysisResult.from_json(path)
    assert again.to_dict() == data
    assert again.bottleneck_index == 4
    assert math.isinf(again.layers[5].entropy["gaussian"].value) and again.layers[5].entropy["gaussian"].value < 0
    assert math.isnan(again.layers[3].entropy["gaussian"].value)
    assert again.layers[2].entropy["gaussian"].status == "biased"
    assert again.layers[2].entropy["gaussian"].ci == pytest.approx(_around(BIASED_H))
    assert again.layers[1].passthrough and not again.layers[2].passthrough
    assert again.layers[6].entropy_change["exact"].value == pytest.approx(-1.1)
    assert again.layers[5].relative_entropy["knn"].value == pytest.approx(NEGATIVE_KL)
    assert again.globals.label_entropy == pytest.approx(math.log(10))


def test_a_run_without_labels_or_embedding_validates(tmp_path: Path) -> None:
    result = make_result(invertible=False)
    result.embedding = None
    result.examples = None
    data = json.loads(result.to_json(tmp_path / "metrics.json").read_text())
    jsonschema.validate(data, metrics_schema())
    assert all(row["entropy_change"] == {} for row in data["layers"])


def _set(data: dict[str, Any], path: tuple[Any, ...], value: Any) -> None:
    for key in path[:-1]:
        data = data[key]
    data[path[-1]] = value


@pytest.mark.parametrize(("path", "value", "message"), [
    (("layers", 0, "region"), "middle", "'middle' is not one of"),
    (("layers", 2, "entropy", "gaussian", "status"), "fine", "'fine' is not one of"),
    (("layers", 2, "entropy", "gaussian", "near_ceiling"), False, "'near_ceiling' was unexpected"),
    (("layers", 2, "entropy", "gaussian", "interval"), "jackknife", "'jackknife' is not one of"),
    (("layers", 2, "entropy", "gaussian", "value"), "Infinity", "'Infinity' is not valid"),
    (("layers", 2, "entropy", "gaussian", "value"), None, "None is not valid"),
    (("layers", 2, "entropy", "gaussian", "reason"), "", "should be non-empty"),
    (("layers", 2, "entropy", "callahan2021", "reason"), "looks fine", "'' was expected"),
    (("layers", 1, "entropy"), {"gaussian": {}}, "should be non-empty|expected to be empty|has too many"),
    (("layers", 2, "passthrough"), "no", "'no' is not of type 'boolean'"),
    (("globals", "mse"), -1.0, "less than the minimum"),
    (("settings", "ci"), 1.5, "greater than or equal to the maximum"),
    (("schema_version",), 1, "2 was expected"),
])
def test_schema_rejects_a_broken_document(path: tuple[Any, ...], value: Any, message: str) -> None:
    data = make_result().to_dict()
    jsonschema.validate(data, metrics_schema())
    _set(data, path, value)
    with pytest.raises(jsonschema.ValidationError, match=message):
        jsonschema.validate(data, metrics_schema())


def test_schema_rejects_a_missing_group() -> None:
    data = make_result().to_dict()
    del data["layers"][2]["entropy_change"]
    with pytest.raises(jsonschema.ValidationError, match="'entropy_change' is a required property"):
        jsonschema.validate(data, metrics_schema())


def test_from_json_rejects_other_files(tmp_path: Path) -> None:
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"schema": "something-else"}))
    with pytest.raises(InfoprobeError, match="infoprobe-metrics"):
        AnalysisResult.from_json(other)
    other.write_text(json.dumps(make_result().to_dict() | {"schema_version": 1}))
    with pytest.raises(InfoprobeError, match="schema version 1"):
        AnalysisResult.from_json(other)
    other.write_text("{not json")
    with pytest.raises(InfoprobeError, match="not valid JSON"):
        AnalysisResult.from_json(other)


def test_csv_has_one_row_per_layer_with_status_and_reason(tmp_path: Path) -> None:
    result = make_result()
    with result.to_csv(tmp_path / "layers.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert [r["label"] for r in rows] == [r.label for r in result.layers]
    assert rows[1]["passthrough"] == "1"
    assert rows[1]["entropy_gaussian"] == "" and rows[1]["entropy_gaussian_status"] == ""
    assert rows[2]["passthrough"] == "0"
    assert float(rows[2]["entropy_gaussian"]) == BIASED_H
    assert float(rows[2]["entropy_gaussian_lo"]) == pytest.approx(BIASED_H - 0.1)
    assert rows[2]["entropy_gaussian_status"] == "biased" and "60 samples" in rows[2]["entropy_gaussian_reason"]
    assert rows[0]["entropy_gaussian_status"] == "ok" and rows[0]["entropy_gaussian_reason"] == ""
    assert math.isnan(float(rows[3]["entropy_gaussian"])) and rows[3]["entropy_gaussian_status"] == "invalid"
    assert float(rows[5]["entropy_gaussian"]) == -math.inf and rows[5]["entropy_gaussian_status"] == "degenerate"
    assert rows[0]["kl_prev_callahan2021"] == ""  # the first layer has no previous one
    assert float(rows[2]["kl_prev_callahan2021"]) == pytest.approx(0.1)
    assert float(rows[4]["dh_exact"]) == pytest.approx(-0.9) and rows[4]["dh_exact_status"] == "ok"
    assert rows[5]["kl_prev_knn_status"] == "invalid"


# ---------------------------------------------------------------- what is shown: tables and figures


def _cells(page: str) -> list[str]:
    return [html.unescape(c) for c in re.findall(r"<t[dh][^>]*>(.*?)</t[dh]>", page, flags=re.S)]


def _assert_shown_only_marked(cells: list[str]) -> None:
    """The biased value only with its mark; the impossible KL never as a number."""
    biased = [c for c in cells if f"{BIASED_H:.4g}" in c]
    assert biased, "the biased value is not shown at all"
    assert all("[B]" in c for c in biased), biased
    for number in (f"{NEGATIVE_KL:.4g}", f"{abs(NEGATIVE_KL):.4g}", f"{SMALL_NEGATIVE_KL:.4g}",
                   f"{abs(SMALL_NEGATIVE_KL):.4g}"):
        shown = [c for c in cells if number in c and "negative estimate" not in c]
        assert not shown, f"{number} is shown as a value: {shown}"


@pytest.mark.parametrize("wide", [False, True])
def test_terminal_table_marks_every_value_that_is_not_ok(wide: bool) -> None:
    result = make_result()
    header, rows = layer_table(result, wide=wide)
    cells = [c for row in rows for c in row]
    _assert_shown_only_marked(cells)
    assert any(c.startswith("−∞") and c.endswith("[D]") for c in cells)  # degenerate, never a finite number
    assert any(c == "— [X]" for c in cells)  # not computed
    assert any(c.startswith("4.5") and c.endswith("[C]") for c in cells)  # at its ceiling
    if wide:
        assert "≈0 [B]" in cells and "— [X]" in cells  # the two negative KLs
        assert any(f"[{BIASED_H - 0.1:.4g}, {BIASED_H + 0.1:.4g}]" in c for c in cells)
    labels = [row[1] for row in rows]
    if wide:
        assert f"{PASSTHROUGH} (=prev)" in labels
    else:  # folded, and the table fits 120 columns without cutting its last column
        assert PASSTHROUGH not in labels
        lines = fit_table(header, rows, width=120)
        assert all(len(line) <= 120 for line in lines) and lines[0].endswith(header[-1])


def _marker_uses(svg: str) -> dict[str, int]:
    """How many markers of each stroke colour an SVG written by matplotlib places."""
    colours = {}
    for ident, style in re.findall(r'<path id="(m[0-9a-f]+)"[^>]*style="([^"]*)"', svg):
        stroke = re.search(r"stroke:\s*(#[0-9a-f]{6})", style)
        if stroke:
            colours[ident] = stroke.group(1)
    counts: dict[str, int] = {}
    for ident in re.findall(r'<use xlink:href="#(m[0-9a-f]+)"', svg):
        if ident in colours:
            counts[colours[ident]] = counts.get(colours[ident], 0) + 1
    return counts


def test_a_value_that_is_not_ok_is_never_drawn_as_a_plain_point(tmp_path: Path) -> None:
    """Per panel: one plain marker per finite ok value and one cross per finite non-ok value
    (each plus its legend entry); non-finite values are not drawn."""
    import matplotlib

    plain, flagged = (matplotlib.colors.to_hex(c) for c in ("#1f4e79", "#c00000"))
    result = make_result()
    for method, n_ok, n_flagged in (("gaussian", 2, 1),  # ok: input, bottleneck; biased: row 2
                                    ("callahan2021", 6, 1)):  # at ceiling: the bottleneck
        only = make_result()
        for row in only.layers:
            row.entropy.clear()
            if method in result.layers[row.index].entropy:
                row.entropy[method] = result.layers[row.index].entropy[method]
        counts = _marker_uses(plot_entropy(only, tmp_path / f"entropy_{method}.svg").read_text())
        assert counts.get(plain, 0) == n_ok + 1, (method, counts)
        assert counts.get(flagged, 0) == n_flagged + 1, (method, counts)
    for row in result.layers:
        for method in list(row.relative_entropy):
            if method != "knn":
                del row.relative_entropy[method]
    counts = _marker_uses(plot_relative_entropy(result, tmp_path / "kl_knn.svg").read_text())
    assert counts.get(plain, 0) == 0 + 1  # no kNN KL is ok: only the legend's marker
    assert counts.get(flagged, 0) == 2 + 1  # the two negative KLs are crosses, never plain points


def test_figures_decode_and_are_not_blank(drawn: tuple[AnalysisResult, dict[str, Path], Path]) -> None:
    _, figures, _ = drawn
    assert set(figures) == {"entropy", "relative_entropy", "entropy_change", "info_plane", "umap", "reconstructions"}
    for path in figures.values():
        _assert_png_not_blank(path)


def test_report_opens_with_the_summary_and_embeds_every_figure(
        drawn: tuple[AnalysisResult, dict[str, Path], Path]) -> None:
    _, figures, report = drawn
    page = report.read_text()
    assert page.index("id='summary'") < page.index("<figure")
    summary = page[page.index("id='summary'"):page.index("</section>")]
    # the level, and each scheme with the methods that used it
    assert f"{LEVEL:.0%} bootstrap: gaussian" in summary and f"{LEVEL:.0%} clt: exact" in summary
    for name in ("knn", "ksg", "noisy(scale=0.3)"):
        assert re.search(rf"{LEVEL:.0%} subsampling: [^;]*{re.escape(name)}", summary), name
    assert "intervals from 10 resamples" in summary
    for mark, word in (("[B]", "biased"), ("[D]", "degenerate"), ("[C]", "at ceiling"), ("[X]", "invalid")):
        assert f"<b>{mark}</b> {word}" in summary
    assert "What these numbers mean" in summary
    embedded = [part.split('"', 1)[0] for part in page.split("data:image/png;base64,")[1:]]
    assert len(embedded) == len(figures)
    assert {base64.b64decode(e) for e in embedded} == {p.read_bytes() for p in figures.values()}
    assert "src=\"http" not in page and "<script" not in page  # self-contained
    assert "net.3: gaussian not computed" in page


def test_report_shows_values_only_with_their_status(drawn: tuple[AnalysisResult, dict[str, Path], Path]) -> None:
    _, _, report = drawn
    page = report.read_text()
    _assert_shown_only_marked(_cells(page))
    assert PASSTHROUGH not in page  # folded into the layer before it
    assert "≈0 [B]" in _cells(page)
    knn = next(c for c in _cells(page) if c.startswith("2.5"))  # the biased input/output KL
    assert knn.endswith("[B]")


def test_plot_command_redraws_from_metrics(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    make_result().to_json(tmp_path / "run" / "metrics.json")
    assert main(["plot", str(tmp_path / "run" / "metrics.json")]) == 0
    for name in ("entropy", "relative_entropy", "entropy_change", "info_plane", "umap", "reconstructions"):
        _assert_png_not_blank(tmp_path / "run" / "figures" / f"{name}.png")
    page = (tmp_path / "run" / "report.html").read_text()
    assert page.index("id='summary'") < page.index("<figure")
    assert "wrote 6 figures" in capsys.readouterr().out


def test_compare_two_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    make_result().to_json(tmp_path / "inn" / "metrics.json")
    make_result(offset=1.0, invertible=False).to_json(tmp_path / "classical" / "metrics.json")
    out = tmp_path / "cmp"
    assert main(["compare", str(tmp_path / "inn"), str(tmp_path / "classical"), "--out", str(out)]) == 0
    for name in ("entropy_compare.png", "relative_entropy_compare.png"):
        _assert_png_not_blank(out / name)
    with (out / "kl_table.csv").open() as fh:
        table = list(csv.reader(fh))
    header = table[0]
    assert [row[0] for row in table[1:]] == ["inn", "classical"]
    hist, knn = header.index("KL callahan2021"), header.index("KL knn")
    assert float(table[1][hist]) == pytest.approx(0.7) and float(table[2][hist]) == pytest.approx(1.7)
    assert [table[1][knn], table[2][knn]] == ["2.5 [B]", "3.5 [B]"]  # biased: never a plain number
    page = (out / "compare.html").read_text()
    assert page.index("id='summary'") < page.index("<figure") and "data:image/png;base64," in page
    assert "What these numbers mean" in page and "<b>[B]</b> biased" in page
    assert "2.5 [B]" in _cells(page)
    printed = capsys.readouterr().out
    assert "inn" in printed and "3.5 [B]" in printed


def test_compare_and_plot_errors_exit_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["plot", str(tmp_path / "missing.json")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("infoprobe: error:") and err.count("\n") == 1 and "does not exist" in err
    make_result().to_json(tmp_path / "a" / "metrics.json")
    assert main(["compare", str(tmp_path / "a"), "--names", "x", "y", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "one --names entry per run" in err
    old = make_result().to_dict() | {"schema_version": 1}
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "metrics.json").write_text(json.dumps(old))
    assert main(["compare", str(tmp_path / "a"), str(tmp_path / "old"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "schema version 1" in err
