"""The checkpoints shipped in ``checkpoints/``: what the manifest claims holds, and each analyses end to end."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from infoprobe import checkpoint
from infoprobe.cli import main

ROOT = Path(__file__).resolve().parents[1]
MANIFEST = ROOT / "checkpoints" / "manifest.json"
ENTRIES: list[dict[str, Any]] = json.loads(MANIFEST.read_text())["checkpoints"] if MANIFEST.is_file() else []
#: the issue's bar for the full-recipe MNIST models at k = 20
MNIST_K20_L1 = 0.055


def test_there_are_shipped_checkpoints() -> None:
    assert ENTRIES, f"{MANIFEST} lists no checkpoints"


@pytest.mark.parametrize("entry", ENTRIES, ids=[e["file"] for e in ENTRIES])
def test_manifest_matches_the_file(entry: dict[str, Any]) -> None:
    path = ROOT / "checkpoints" / entry["file"]
    data = path.read_bytes()
    assert hashlib.sha256(data).hexdigest() == entry["sha256"]
    assert len(data) == entry["bytes"] < 6e6
    ckpt = checkpoint.load(path)
    assert ckpt.state is None  # weights only
    assert ckpt.model_name == entry["model"] and ckpt.model_config == entry["config"]
    assert ckpt.metrics["test_l1"] == entry["test_l1"]
    checkpoint.build_model(ckpt)  # the weights fit the zoo's model exactly
    assert entry["finished"] and entry["epochs"] == entry["recipe"]["epochs"]
    assert not entry["recipe_changes"]
    if entry["dataset"]["name"] == "mnist" and entry["config"].get("bottleneck") == 20:
        assert entry["test_l1"] < MNIST_K20_L1
        assert entry["dataset"]["n"] == 60000 and entry["test_dataset"]["n"] == 10000


@pytest.mark.parametrize("entry", ENTRIES, ids=[e["file"] for e in ENTRIES])
def test_every_shipped_checkpoint_analyses_on_a_few_hundred_images(
    entry: dict[str, Any], shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = ROOT / "checkpoints" / entry["file"]
    rc = main(["analyze", str(path), "--data-root", str(shared_data), "--samples", "300", "--no-umap",
               "--device", "cpu", "--out", str(tmp_path / "out"), "--quiet"])
    assert rc == 0, capsys.readouterr().err
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["dataset"]["n_samples"] == 300
    # 300 random test images: the sample's mean L1 lies within a few standard errors of the full test set's
    assert metrics["globals"]["l1"] == pytest.approx(entry["test_l1"], abs=0.01)
    assert (tmp_path / "out" / "report.html").is_file()


def test_ship_script_exports_and_documents_a_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import models
    from analyses.ship_checkpoints import main as ship
    from infoprobe.data import load_dataset
    from models.training import train

    data, test = load_dataset("digits", split="train"), load_dataset("digits", split="test")
    model = models.build("classical-ae", dataset="digits")
    train(model, data, test_data=test, out=tmp_path / "run", epochs=1, progress=False)
    train(model, data, test_data=test, out=tmp_path / "run", epochs=2, lr=5e-4, progress=False, resume=True)
    assert ship([str(tmp_path / "run"), "--out", str(tmp_path / "ship"),
                 "--note", "digits-classical-ae-k8.pt=A tiny test run."]) == 0
    manifest = json.loads((tmp_path / "ship" / "manifest.json").read_text())
    (entry,) = manifest["checkpoints"]
    shipped = tmp_path / "ship" / "digits-classical-ae-k8.pt"
    assert entry["sha256"] == hashlib.sha256(shipped.read_bytes()).hexdigest()
    assert [r["epoch"] for r in entry["learning_curve"]] == [1, 2] and entry["cpu_seconds"] > 0
    assert entry["recipe_changes"] == {"epochs": 2, "lr": 5e-4} and entry["finished"]
    assert entry["changed_on_resume"] == [{"epoch": 1, "step": 0, "changed": {"lr": [1e-3, 5e-4]}}]
    readme = (tmp_path / "ship" / "README.md").read_text()
    assert entry["sha256"] in readme and '"epochs": 2' in readme and "A tiny test run." in readme
    assert "Resumed at epoch 1, step 0 with lr 0.001 → 0.0005 (from then on)." in readme
    assert checkpoint.load(shipped).state is None

    # a run that has not finished its recipe is refused unless asked for
    meta = checkpoint.load(tmp_path / "run" / "checkpoint.pt")
    checkpoint.save(tmp_path / "cut" / "checkpoint.pt", model, dataset=meta.dataset,
                    training={**meta.training, "finished": False, "epochs_done": 1}, metrics=meta.metrics)
    assert ship([str(tmp_path / "cut"), "--out", str(tmp_path / "ship")]) == 2
    assert "has done 1 of 2 epochs" in capsys.readouterr().err
    assert ship([str(tmp_path / "cut"), "--out", str(tmp_path / "ship"), "--allow-unfinished"]) == 0
    assert "1 of 2 (unfinished)" in (tmp_path / "ship" / "README.md").read_text()
