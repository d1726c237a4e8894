"""``infoprobe analyze`` / ``embed`` from the command line: user models through --model, the
zoo's checkpoints end to end, and every user error as one line on stderr with exit status 2."""

from __future__ import annotations

import csv
import json
import math
import re
import textwrap
from pathlib import Path

import numpy as np
import pytest
import torch

from infoprobe.cli import main
from infoprobe.results import metrics_schema

USER_MODEL = textwrap.dedent('''
    import torch
    from torch import nn

    class TinyAE(nn.Module):
        """A user's own autoencoder: no reconstruct(), no registry name."""

        def __init__(self, k=3):
            super().__init__()
            self.enc = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.Tanh(), nn.Linear(16, k))
            self.dec = nn.Sequential(nn.Linear(k, 16), nn.Tanh(), nn.Linear(16, 64), nn.Sigmoid(),
                                     nn.Unflatten(1, (1, 8, 8)))

        def forward(self, x):
            return self.dec(self.enc(x))

    def build(k=3):
        torch.manual_seed(0)
        return TinyAE(k)

    def build_small_input():
        model = build()
        model.input_shape = (1, 4, 4)
        return model

    CALLS = []

    class CountingAE(TinyAE):
        """Counts its forward passes: a bad option must fail before the model runs."""

        def forward(self, x):
            CALLS.append(x.shape[0])
            return super().forward(x)

    def build_counting():
        torch.manual_seed(0)
        return CountingAE()
''')


@pytest.fixture
def user_checkpoint(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A bare state_dict of a user model whose module lives in tmp_path (on sys.path)."""
    (tmp_path / "user_tiny_ae.py").write_text(USER_MODEL)
    monkeypatch.syspath_prepend(str(tmp_path))
    import importlib

    module = importlib.import_module("user_tiny_ae")
    path = tmp_path / "tiny.pt"
    torch.save(module.build().state_dict(), path)
    return path


def _one_line_error(capsys: pytest.CaptureFixture[str], *fragments: str) -> str:
    err = capsys.readouterr().err
    assert err.startswith("infoprobe: error:"), err
    assert err.count("\n") == 1, err
    for fragment in fragments:
        assert fragment in err, err
    return err


def _numbers(obj: object) -> list[float]:
    """Every number in a JSON document (booleans excluded)."""
    if isinstance(obj, bool):
        return []
    if isinstance(obj, int | float):
        return [float(obj)]
    if isinstance(obj, dict):
        return [v for x in obj.values() for v in _numbers(x)]
    if isinstance(obj, list):
        return [v for x in obj for v in _numbers(x)]
    return []


def check_run_folder(out: Path, *, umap: bool) -> dict:
    """The files of one analysis exist and validate; non-finite numbers only as strings."""
    jsonschema = pytest.importorskip("jsonschema")
    from PIL import Image

    def refuse(name: str) -> None:
        raise AssertionError(f"metrics.json holds the non-JSON literal {name}")

    data = json.loads((out / "metrics.json").read_text(), parse_constant=refuse)
    jsonschema.validate(data, metrics_schema())
    assert all(math.isfinite(v) for v in _numbers(data))
    with (out / "layers.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert [r["label"] for r in rows] == [r["label"] for r in data["layers"]]
    assert any(key.endswith("_status") for key in rows[0]) and any(key.endswith("_reason") for key in rows[0])
    exact = any(row["entropy_change"] for row in data["layers"])
    names = ["entropy", "relative_entropy", "info_plane", "reconstructions"] + (["umap"] if umap else []) \
        + (["entropy_change"] if exact else [])
    for name in names:
        with Image.open(out / "figures" / f"{name}.png") as im:
            assert np.asarray(im.convert("L"), float).std() > 5, name
    page = (out / "report.html").read_text()
    assert page.count("data:image/png;base64,") == len(names)
    assert page.index("id='summary'") < page.index("<figure")
    return data


def _table_lines(printed: str) -> list[str]:
    """The per-layer table printed by analyze: the lines before the legend of the marks."""
    lines = printed.splitlines()
    end = next(i for i, line in enumerate(lines) if line.startswith("marks:"))
    assert end >= 3, printed
    return lines[:end]


def _assert_plain(text: str) -> None:
    """No escape sequences, carriage returns or other control characters (output not a terminal)."""
    bad = re.findall(r"[\x00-\x08\x0b-\x1f\x7f]", text)
    assert not bad, f"control characters {sorted(set(bad))!r} in {text!r}"


def _calls() -> list[int]:
    """Batch sizes seen by the forward of user_tiny_ae.CountingAE (one module for the session)."""
    import importlib

    return importlib.import_module("user_tiny_ae").CALLS


# ---------------------------------------------------------------- errors (no pipeline needed)


def test_missing_checkpoint(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["analyze", str(tmp_path / "nope.pt")]) == 2
    _one_line_error(capsys, "does not exist")


def test_corrupt_checkpoint(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"PK\x03\x04 this is not a checkpoint")
    assert main(["analyze", str(bad)]) == 2
    _one_line_error(capsys, "corrupt")


def test_untrusted_checkpoint(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "pickled_module.pt"
    torch.save(torch.nn.Linear(2, 2), path)  # a whole pickled module: needs arbitrary code to load
    assert main(["analyze", str(path)]) == 2
    _one_line_error(capsys, "Refusing to open")


def test_bare_state_dict_needs_model(user_checkpoint: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["analyze", str(user_checkpoint), "--dataset", "digits"]) == 2
    _one_line_error(capsys, "--model")


@pytest.mark.parametrize(("spec", "fragment"), [
    ("no_colon", "package.module:factory"),
    ("no_such_module_xyz:build", "Cannot import"),
    ("user_tiny_ae:missing", "no callable 'missing'"),
])
def test_bad_model_spec(user_checkpoint: Path, capsys: pytest.CaptureFixture[str], spec: str, fragment: str) -> None:
    assert main(["analyze", str(user_checkpoint), "--model", spec, "--dataset", "digits"]) == 2
    _one_line_error(capsys, fragment)


def test_checkpoint_without_dataset(user_checkpoint: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["analyze", str(user_checkpoint), "--model", "user_tiny_ae:build"]) == 2
    _one_line_error(capsys, "--dataset")


def test_dataset_not_found(user_checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    code = main(["analyze", str(user_checkpoint), "--model", "user_tiny_ae:build",
                 "--dataset", "mnist", "--data-root", str(empty)])
    assert code == 2
    _one_line_error(capsys, "mnist")


def test_input_shape_mismatch(user_checkpoint: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["analyze", str(user_checkpoint), "--model", "user_tiny_ae:build_small_input",
                 "--dataset", "digits", "--out", str(user_checkpoint.parent / "o")])
    assert code == 2
    _one_line_error(capsys, "(1, 4, 4)", "(1, 8, 8)")


@pytest.mark.parametrize("flag", ["--layers", "--exclude"])
def test_unknown_layer_pattern(user_checkpoint: Path, capsys: pytest.CaptureFixture[str], flag: str) -> None:
    code = main(["analyze", str(user_checkpoint), "--model", "user_tiny_ae:build",
                 "--dataset", "digits", flag, "decoder.*"])
    assert code == 2
    _one_line_error(capsys, f"'decoder.*' in {flag} matches no module", "enc.0")


# ---------------------------------------------------------------- end to end


@pytest.mark.parametrize(("option", "fragments"), [
    (["--joint-samples", "5"], ["--joint-samples", "got 5"]),
    (["--ci", "1.5"], ["--ci", "got 1.5", "e.g. --ci 0.95"]),
    (["--n-boot", "1"], ["--n-boot", "got 1"]),
    (["--batch-size", "0"], ["--batch-size", "got 0"]),
    (["--samples", "1"], ["--samples", "got 1"]),
    (["--estimator", "entropy=nope"], ["Unknown entropy method 'nope'", "knn", "gaussian", "callahan2021"]),
    (["--estimator", "entropy=knn(kk=5)"], ["['kk']", "'k'"]),
    (["--estimator", "magic=knn"], ["estimator role", "mi_label"]),
])
def test_bad_option_fails_before_the_model_runs(user_checkpoint: Path, capsys: pytest.CaptureFixture[str],
                                                option: list[str], fragments: list[str]) -> None:
    out = user_checkpoint.parent / "never"
    _calls().clear()
    code = main(["analyze", str(user_checkpoint), "--model", "user_tiny_ae:build_counting", "--dataset", "digits",
                 "--no-umap", "--out", str(out), *option])
    assert code == 2
    err = _one_line_error(capsys, *fragments)
    assert "----" not in err and "Traceback" not in err
    assert _calls() == [] and not out.exists()


def test_user_model_end_to_end(user_checkpoint: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = user_checkpoint.parent / "run"
    _calls().clear()
    code = main(["analyze", str(user_checkpoint), "--model", "user_tiny_ae:build_counting", "--dataset", "digits",
                 "--samples", "120", "--joint-samples", "80", "--n-boot", "5", "--no-umap",
                 "--quiet", "--out", str(out)])
    assert code == 0
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err == ""  # --quiet, and stderr is no terminal: no bars
    assert sum(_calls()) == 120  # one reconstruction pass over the samples
    data = check_run_folder(out, umap=False)
    rows = data["layers"]
    assert rows[0]["label"] == "input" and data["dataset"]["n_samples"] == 120
    assert data["settings"]["joint_samples"] == 80 and data["settings"]["preset"] is None
    assert {"entropy=knn", "kl=knn", "mi_label=ksg"} <= set(data["settings"]["estimators"])
    assert data["model"]["name"] is None and data["model"]["class"].endswith("CountingAE")
    # Flatten and Unflatten keep the values of the layer before them: folded, no estimates
    by_name = {row["name"]: row for row in rows}
    assert by_name["enc.0"]["passthrough"] and by_name["dec.4"]["passthrough"]
    assert by_name["enc.0"]["entropy"] == {} and not by_name["enc.1"]["passthrough"]
    bottleneck = [row for row in rows if row["region"] == "bottleneck"]
    assert [row["dim"] for row in bottleneck] == [3]  # the smallest layer, for a model without hints
    # after a 3-dimensional code every wider layer lies on a <= 3-dimensional set: h = −∞
    after = [row for row in rows if row["region"] == "decoder" and not row["passthrough"] and row["dim"] > 3]
    assert after
    for row in after:
        assert row["intrinsic_dim"] == 3
        for method in ("gaussian", "knn"):
            assert row["entropy"][method]["value"] == "-inf"
            assert row["entropy"][method]["status"] == "degenerate"
    for row in rows:
        for group in ("entropy", "relative_entropy", "mi_input", "mi_label"):
            for est in row[group].values():
                if est["quantity"] in ("kl_divergence", "mutual_information") and est["status"] == "ok":
                    assert est["value"] >= 0  # an impossible value is never "ok"
    assert data["globals"]["kl_data_reconstruction"]["callahan2021"]["status"] in ("ok", "at_ceiling")
    assert data["globals"]["label_entropy"] == pytest.approx(math.log(10), abs=0.05)  # ~balanced digits


@pytest.mark.parametrize("wide", [False, True])
def test_terminal_table_fits_120_columns_unless_wide(user_checkpoint: Path, capsys: pytest.CaptureFixture[str],
                                                     wide: bool) -> None:
    code = main(["analyze", str(user_checkpoint), "--model", "user_tiny_ae:build", "--dataset", "digits",
                 "--samples", "60", "--joint-samples", "40", "--n-boot", "3", "--no-umap",
                 "--out", str(user_checkpoint.parent / "run"), *(["--wide"] if wide else [])])
    assert code == 0
    captured = capsys.readouterr()
    _assert_plain(captured.out)
    _assert_plain(captured.err)
    table = _table_lines(captured.out)
    width = max(len(line) for line in table)
    header = table[0]
    if wide:
        assert width > 120 and "H knn" in header and "enc.0 (=prev)" in captured.out
    else:
        assert width <= 120 and "enc.0" not in captured.out.split("marks:")[0]  # pass-through folded
    assert "H callahan2021" in header and "[D]" in captured.out  # the degenerate decoder entropies, marked
    assert "read first:" in captured.out and "KL(data ‖ reconstruction) [knn]" in captured.out


def test_preset_layers_default_out_and_summary(user_checkpoint: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["analyze", str(user_checkpoint), "--model", "user_tiny_ae:build", "--dataset", "digits",
                 "--samples", "60", "--preset", "callahan2021", "--layers", "enc.*", "--no-umap"])
    assert code == 0
    out = user_checkpoint.with_name("tiny_analysis")
    data = json.loads((out / "metrics.json").read_text())
    assert all(row["name"].startswith("enc.") for row in data["layers"][1:-1])
    assert data["settings"]["estimators"] == ["entropy=callahan2021", "kl=callahan2021"]
    assert data["settings"]["preset"] == "callahan2021"
    assert all(row["mi_input"] == {} and row["mi_label"] == {} for row in data["layers"])
    assert all(set(row["entropy"]) == {"callahan2021"} for row in data["layers"] if not row["passthrough"])
    printed = capsys.readouterr().out
    assert "KL(data ‖ reconstruction) [callahan2021]" in printed and "enc.1" in printed


def test_exclude_and_no_exact(user_checkpoint: Path) -> None:
    out = user_checkpoint.parent / "run"
    code = main(["analyze", str(user_checkpoint), "--model", "user_tiny_ae:build", "--dataset", "digits",
                 "--samples", "60", "--estimator", "entropy=gaussian", "--estimator", "kl=histogram(bins=30)",
                 "--exclude", "dec.*", "enc.2", "--no-exact", "--no-umap", "--quiet", "--out", str(out)])
    assert code == 0
    data = json.loads((out / "metrics.json").read_text())
    names = [row["name"] for row in data["layers"]]
    assert not any(name.startswith("dec.") for name in names) and "enc.2" not in names and "enc.3" in names
    assert data["settings"]["exclude"] == ["dec.*", "enc.2"] and data["settings"]["exact"] is False
    assert data["settings"]["estimators"] == ["entropy=gaussian", "kl=histogram(bins=30)"]
    assert {m for row in data["layers"] for m in row["relative_entropy"]} == {"histogram(bins=30)"}


def _zoo_names() -> list[str]:
    import models

    return models.available()


@pytest.mark.slow
@pytest.mark.parametrize("name", _zoo_names() or ["<none>"])
def test_zoo_checkpoint_end_to_end(tmp_path: Path, name: str) -> None:
    if name == "<none>":
        pytest.skip("no zoo family is merged yet")
    import models
    from infoprobe.checkpoint import save

    model = models.build(name, dataset="digits")
    ckpt = save(tmp_path / f"{name}.pt", model, dataset={"name": "digits", "split": "train"})
    out = tmp_path / "run"
    # the paper's estimates only: joint estimators are covered above, and PIE records ~360 layers
    code = main(["analyze", str(ckpt), "--samples", "64", "--preset", "callahan2021", "--no-umap",
                 "--quiet", "--out", str(out)])
    assert code == 0
    data = check_run_folder(out, umap=False)
    regions = [row["region"] for row in data["layers"]]
    assert "bottleneck" in regions
    first, last = regions.index("bottleneck"), len(regions) - 1 - regions[::-1].index("bottleneck")
    assert set(regions[:first]) == {"encoder"} and set(regions[last + 1 :]) <= {"decoder"}
    assert data["model"]["name"] == name
    if data["model"]["invertible"]:  # the exact Δh of every invertible block, with its CLT interval
        exact = [row["entropy_change"]["exact"] for row in data["layers"] if row["entropy_change"]]
        assert exact and all(e["quantity"] == "entropy_change" and e["interval"] == "clt" for e in exact)


@pytest.mark.slow
def test_embed_command(user_checkpoint: Path) -> None:
    out = user_checkpoint.parent / "emb"
    code = main(["embed", str(user_checkpoint), "--model", "user_tiny_ae:build", "--dataset", "digits",
                 "--layer", "enc.3", "--max-points", "100", "--out", str(out)])
    assert code == 0
    emb = json.loads((out / "embedding.json").read_text())["embedding"]
    xy = np.asarray(emb["coords"])
    assert xy.shape == (100, 2) and np.isfinite(xy).all()
    assert emb["layer"] == "enc.3" and emb["n_features"] == 3 and len(emb["labels"]) == 100
    from PIL import Image

    with Image.open(out / "umap.png") as im:
        assert np.asarray(im.convert("L"), float).std() > 5


def test_embed_needs_encode_or_layer(user_checkpoint: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["embed", str(user_checkpoint), "--model", "user_tiny_ae:build", "--dataset", "digits"])
    assert code == 2
    _one_line_error(capsys, "--layer")
