"""selfvae_levels: models trained one per process (--train-only) and evaluated later give the numbers of one run."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from analyses import selfvae_levels

TINY = ["--quick", "--train-images", "32", "--test-images", "8", "--bpd-images", "4", "--n-importance", "2",
        "--device", "cpu"]


def test_train_only_then_resume_equals_one_run(shared_data: Path, tmp_path: Path) -> None:
    root = ["--root", str(shared_data)]
    one = tmp_path / "one"
    assert selfvae_levels.main([*root, *TINY, "--out", str(one), "--figures", str(one)]) == 0

    split, ckpt = tmp_path / "split", tmp_path / "ckpt"
    for name in ("selfvae-downscale", "vae-realnvp"):  # the opposite order of the script's own loop
        assert selfvae_levels.main([*root, *TINY, "--checkpoints", str(ckpt), "--train-only", name]) == 0
        assert (ckpt / f"{name}.pt").is_file()
    assert not split.exists()  # training alone writes no page
    page = (one / "selfvae_levels_quick.md").read_text()
    assert selfvae_levels.main([*root, *TINY, "--checkpoints", str(ckpt), "--resume",
                                "--out", str(split), "--figures", str(split)]) == 0

    assert "What z carries beyond y (selfvae-downscale" in page
    assert "The gain is not an amount of information" in page  # it can exceed the rate
    assert "per-channel histogram" in page and "ELBO bpd, train images" in page
    assert "| selfvae-downscale | kl_z1 | " in page and "| vae-realnvp | kl | " in page
    a = json.loads((one / "selfvae_levels_quick.json").read_text())["results"]
    b = json.loads((split / "selfvae_levels_quick.json").read_text())["results"]
    for name in a:
        assert [h["train_loss"] for h in b[name]["history"]] == pytest.approx(
            [h["train_loss"] for h in a[name]["history"]], rel=1e-5)
        assert b[name]["test_terms"] == pytest.approx(a[name]["test_terms"], rel=1e-4)
        assert b[name]["bpd"] == pytest.approx(a[name]["bpd"], rel=1e-4)
        assert b[name]["train_elbo_bpd"] == pytest.approx(a[name]["train_elbo_bpd"], rel=1e-4)
        assert (a[name]["z_gain"] is None) == (name == "vae-realnvp")  # only the selfVAE has a y to go beyond
        if a[name]["z_gain"] is not None:
            assert b[name]["z_gain"] == pytest.approx(a[name]["z_gain"], rel=1e-4)
        assert b[name]["train_seconds"] > 0  # the epochs' clock, not the evaluation run's


def test_train_only_needs_a_checkpoint_folder(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit, match="2"):
        selfvae_levels.main(["--quick", "--train-only", "vae-realnvp"])
    assert "--train-only needs --checkpoints" in capsys.readouterr().err


def test_marginal_histogram_bpd_is_the_entropy_of_a_known_histogram() -> None:
    # train: channel 0 takes levels 0 and 255 equally often; with add-one smoothing over 256
    # levels each has probability (n/2 + 1) / (n + 256); other levels 1 / (n + 256)
    n_img, side = 64, 4
    train = torch.zeros(n_img, 1, side, side)
    train[n_img // 2:] = 1.0
    total = n_img * side * side
    p_end, p_other = (total / 2 + 1) / (total + 256), 1 / (total + 256)
    test = torch.cat([torch.zeros(1, 1, side, side), torch.ones(1, 1, side, side),
                      torch.full((2, 1, side, side), 100 / 255)])
    expected = -(2 * math.log2(p_end) + 2 * math.log2(p_other)) / 4
    assert selfvae_levels.marginal_histogram_bpd(train, test) == pytest.approx(expected, rel=1e-12)


def test_page_names_each_models_epochs_when_one_trained_longer(shared_data: Path, tmp_path: Path) -> None:
    root, ckpt = ["--root", str(shared_data)], tmp_path / "ckpt"
    for name, epochs in (("vae-realnvp", "2"), ("selfvae-downscale", "1")):
        assert selfvae_levels.main([*root, *TINY, "--epochs", epochs, "--checkpoints", str(ckpt),
                                    "--train-only", name]) == 0
    assert selfvae_levels.main([*root, *TINY, "--epochs", "1", "--checkpoints", str(ckpt), "--resume",
                                "--out", str(tmp_path), "--figures", str(tmp_path)]) == 0
    page = (tmp_path / "selfvae_levels_quick.md").read_text()
    assert "epochs vae-realnvp 2, selfvae-downscale 1, batch" in page
    results = json.loads((tmp_path / "selfvae_levels_quick.json").read_text())["results"]
    assert [len(results[n]["history"]) for n in ("vae-realnvp", "selfvae-downscale")] == [2, 1]


def test_kl_warmup_control_is_a_third_model_with_its_recipe(shared_data: Path, tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["--root", str(shared_data), *TINY, "--out", str(tmp_path), "--figures", str(tmp_path)]
    assert selfvae_levels.main([*argv, "--kl-warmup-control", "2"]) == 0
    results = json.loads((tmp_path / "selfvae_levels_quick.json").read_text())["results"]
    assert list(results) == ["vae-realnvp", "selfvae-downscale", selfvae_levels.WARMUP]
    assert results[selfvae_levels.WARMUP]["recipe"]["kl_warmup"] == 2.0
    assert results["selfvae-downscale"]["recipe"]["kl_warmup"] == 0.0  # the paper's objective
    assert results[selfvae_levels.WARMUP]["z_gain"] is not None
    page = (tmp_path / "selfvae_levels_quick.md").read_text()
    assert f"| {selfvae_levels.WARMUP} | " in page and f"What z carries beyond y ({selfvae_levels.WARMUP}" in page
    with pytest.raises(SystemExit, match="2"):
        selfvae_levels.main([*argv, "--checkpoints", str(tmp_path), "--train-only", selfvae_levels.WARMUP])
    assert "needs --kl-warmup-control EPOCHS" in capsys.readouterr().err
