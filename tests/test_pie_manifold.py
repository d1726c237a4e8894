"""The learning-curve pieces of the PIE scripts: the plateau reading on curves with a known answer,
and epoch-by-epoch training that equals one uninterrupted ``train`` call."""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import pytest
import torch

from analyses.pie_diagnosis import train_by_epoch
from analyses.pie_manifold import pca_reconstruct, plateau, plateau_word
from infoprobe.errors import InfoprobeError
from infoprobe.quality import proportion_interval
from models.training import train
from tests._tiny_model import tiny_model


def test_straight_line_makes_its_window_share_and_is_no_plateau() -> None:
    line = [5.0 - 0.3 * k for k in range(11)]  # 10 steps, window 0.2 · 10 = 2 steps
    reading = plateau(line)
    assert reading["window"] == 2
    assert reading["late_share"] == pytest.approx(2 / 10)
    assert reading["net_change"] == pytest.approx(-3.0)
    assert reading["plateau"] is False


@pytest.mark.parametrize("rising", [False, True])
def test_exponential_approach_is_a_plateau_with_the_closed_form_share(rising: bool) -> None:
    tau, n = 3.0, 41  # window 8 of 40 steps
    decay = [math.exp(-k / tau) for k in range(n)]
    curve = [1.0 - v for v in decay] if rising else decay
    expected = (math.exp(-32 / tau) - math.exp(-40 / tau)) / (1.0 - math.exp(-40 / tau))
    reading = plateau(curve)
    assert reading["late_share"] == pytest.approx(expected, rel=1e-6)
    assert reading["plateau"] is True


def test_slow_exponential_is_still_improving() -> None:
    curve = [math.exp(-k / 100.0) for k in range(41)]  # nearly straight over 40 epochs
    assert plateau(curve)["late_share"] > 0.15
    assert plateau(curve)["plateau"] is False


def test_flat_tail_and_reversal() -> None:
    assert plateau([0.1, 0.5, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8, 0.8])["late_share"] == 0.0
    reading = plateau([0.1, 0.5, 0.8, 0.85, 0.85, 0.85, 0.85, 0.85, 0.85, 0.84, 0.83])
    assert reading["late_share"] == pytest.approx(-0.02 / 0.73)
    assert reading["plateau"] is True
    assert plateau([1.0, 2.0, 1.0])["late_share"] != plateau([1.0, 2.0, 1.0])["late_share"]  # NaN: no net change


def test_noise_at_the_end_is_not_progress() -> None:
    # A WAE-like curve: at its ceiling from epoch 10 on, swinging by about one standard error.
    curve = [0.85, 0.87, 0.88, 0.89, 0.90, 0.905, 0.91, 0.908, 0.912, 0.913, 0.913, 0.907, 0.909, 0.915, 0.915]
    reading = plateau(curve)
    assert reading["late_share"] > reading["tolerance"]  # the share alone would say "no"
    assert reading["plateau"] is True and reading["reason"] == "late trend within noise"
    assert abs(reading["late_t"]) < reading["noise_z"]
    assert plateau_word(reading) == "yes (noise)"
    assert plateau_word(plateau([1.0, 0.5, 0.3, 0.3, 0.3, 0.3])) == "yes"


def test_a_noisy_but_steady_rise_is_still_changing() -> None:
    curve = [0.02 * k + (0.004 if k % 2 else -0.004) for k in range(15)]
    reading = plateau(curve)
    assert reading["plateau"] is False and reading["reason"] == "still changing"
    assert reading["late_t"] > reading["noise_z"]


def test_late_t_is_the_least_squares_slope_over_its_standard_error() -> None:
    from scipy.stats import linregress

    curve = [5.0, 3.0, 2.2, 1.9, 1.7, 1.68, 1.61, 1.63, 1.55, 1.56, 1.52]  # falling: the net change is negative
    reading = plateau(curve)
    fit = linregress(range(reading["late_points"]), curve[-reading["late_points"]:])
    assert reading["late_points"] == 5
    assert reading["late_t"] == pytest.approx(-fit.slope / fit.stderr, rel=1e-9)  # sign: along the net change


def test_plateau_rejects_short_or_broken_curves() -> None:
    with pytest.raises(InfoprobeError, match="at least 3 epochs"):
        plateau([1.0, 0.5])
    with pytest.raises(InfoprobeError, match="finite curve"):
        plateau([1.0, float("nan"), 0.5])
    with pytest.raises(InfoprobeError, match=r"fraction must be in \(0, 1\)"):
        plateau([1.0, 0.5, 0.4], fraction=1.0)


def test_train_by_epoch_equals_one_run_and_resumes(tmp_path: Path) -> None:
    data = torch.rand(96, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    reference = tiny_model()
    train(reference, data, epochs=3, batch_size=32, seed=0, progress=False)

    model = tiny_model()
    seen: list[int] = []

    def count(m: torch.nn.Module) -> dict[str, float]:
        seen.append(len(seen) + 1)
        with torch.no_grad():
            return {"l1": float((m.reconstruct(data) - data).abs().mean())}  # type: ignore[operator]

    ckpt = tmp_path / "tiny.pt"
    first = list(train_by_epoch(model, data, epochs=2, out=ckpt, measure_fn=count, batch_size=32, seed=0))
    again = tiny_model(seed=5)  # other weights: everything must come from the checkpoint
    rest = list(train_by_epoch(again, data, epochs=3, out=ckpt, first_epoch=3, measure_fn=count,
                               batch_size=32, seed=0))
    assert [r["epoch"] for r in first + rest] == [1, 2, 3] and seen == [1, 2, 3]
    for p, q in zip(again.parameters(), reference.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=0, atol=0)
    with torch.no_grad():
        assert rest[0]["l1"] == pytest.approx(float((reference.reconstruct(data) - data).abs().mean()))
    assert first[0]["train_loss"] > rest[0]["train_loss"]


def test_lr_drop_names_a_model_by_its_checkpoint_tag(capsys: pytest.CaptureFixture[str]) -> None:
    from analyses.pie_manifold import parse_args

    args = parse_args(["--lr-drop", "pie_sigma0.01=18", "--lr-drop", "wae=12"])
    assert args.lr_drops == {"pie_sigma0.01": 18, "wae": 12}
    with pytest.raises(SystemExit, match=r"^2$"):  # argparse's usage error
        parse_args(["--lr-drop", "pie_sigma0.5=3"])
    assert "--lr-drop expects TAG=EPOCH with TAG one of pie_sigma0.01, pie_sigma0.1, pie_sigma1" in capsys.readouterr().err


def test_fit_records_the_schedule_the_checkpoint_was_trained_with(tmp_path: Path) -> None:
    import models
    from analyses.pie_manifold import fit, parse_args
    from infoprobe.data import load_dataset
    from infoprobe.quality import fit_reference_classifier

    train_data, test_data = load_dataset("digits", split="train"), load_dataset("digits", split="test")
    classifier = fit_reference_classifier(train_data, test_data, n_train=500, max_iter=50)
    common = {"folder": tmp_path, "classifier": classifier, "curve_data": test_data, "tag": "classical_ae10"}

    def run(*argv: str, epochs: int) -> dict:
        args = parse_args(["--resume", "--device", "cpu", *argv])
        _, record = fit("classical-ae", models.build("classical-ae", dataset="digits"), train_data, test_data,
                        epochs=epochs, args=args, **common)
        return record

    assert run(epochs=2)["milestones"] == []
    dropped = run("--lr-drop", "classical_ae10=2", epochs=3)
    assert dropped["milestones"] == [2] and [r["lr"] for r in dropped["curve"]] == pytest.approx([1e-3, 1e-3, 1e-4])
    assert run(epochs=4)["milestones"] == [2]  # a later --resume without the option keeps the drop


def test_pca_reference_matches_scikit_learn_and_is_exact_at_full_rank() -> None:
    from sklearn.decomposition import PCA

    generator = torch.Generator().manual_seed(0)
    mixing = torch.randn(12, 12, generator=generator) * torch.logspace(0, -2, 12)
    train_images = (torch.randn(400, 12, generator=generator) @ mixing.T).reshape(400, 1, 3, 4)
    images = (torch.randn(50, 12, generator=generator) @ mixing.T).reshape(50, 1, 3, 4)
    reference = PCA(4).fit(train_images.flatten(1).double().numpy())
    expected = reference.inverse_transform(reference.transform(images.flatten(1).double().numpy()))
    got = pca_reconstruct(train_images, images, components=4)
    assert got.shape == images.shape
    torch.testing.assert_close(got.flatten(1).double(), torch.from_numpy(expected), atol=1e-5, rtol=0)
    torch.testing.assert_close(pca_reconstruct(train_images, images, components=12), images, atol=1e-5, rtol=0)


def test_diagnosis_evaluate_only_measures_a_kept_checkpoint(shared_data: Path, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    import json

    import models
    from analyses import pie_diagnosis
    from infoprobe import checkpoint

    model = models.build("pie", dataset="mnist", sigma=0.01, hidden_channels=4, hidden_features=8,
                         couplings_per_block=1)
    path = tmp_path / "pie.pt"
    checkpoint.save(path, model, dataset={"name": "mnist"})
    argv = ["--data-root", str(shared_data), "--test-n", "40", "--classifier-images", "500", "--out", str(path), "--evaluate-only"]
    assert pie_diagnosis.main(argv) == 0
    row = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert row["test_n"] == 40 and 0.0 <= row["class_consistency"] <= 1.0
    low, high = row["class_consistency_95"]
    p = row["class_consistency"]
    assert 0.0 <= low < high <= 1.0 and low <= p <= high
    assert (low, high) == pytest.approx(proportion_interval(round(p * 40), 40), abs=1e-4)
    assert row["train_images"] == 5000  # the script's default --subset: the images the PCA reference sees
    assert 0.0 <= row["pca_class_consistency"] <= 1.0 and row["pca_recon_mse"] > 0
    assert pie_diagnosis.main([*argv[:-3], "--out", str(tmp_path / "missing.pt"), "--evaluate-only"]) == 2
    assert "--evaluate-only needs --out, an existing checkpoint" in capsys.readouterr().err


def test_umap_separation_has_a_spread_over_seeds_and_a_code_baseline(tmp_path: Path) -> None:
    from analyses.pie_manifold import umap_panels

    g = torch.Generator().manual_seed(0)
    labels = torch.arange(300) % 10
    centres = 6.0 * torch.randn(10, 10, generator=g)
    separated = centres[labels] + 0.3 * torch.randn(300, 10, generator=g)
    noise = torch.randn(300, 10, generator=g)  # carries no label
    with warnings.catch_warnings():  # ten separate clusters by construction: UMAP's graph is disconnected
        warnings.filterwarnings("ignore", message="Graph is not fully connected", category=UserWarning)
        out = umap_panels({0.01: separated, 1.0: noise}, labels, tmp_path / "umap.png", seed=0, repeats=2)
    assert (tmp_path / "umap.png").is_file()
    assert len(out[0.01]["umap"]) == 2 and len(out[1.0]["umap"]) == 2  # one accuracy per UMAP seed
    assert out[0.01]["codes"] > 0.95 and min(out[0.01]["umap"]) > 0.9
    assert out[1.0]["codes"] < 0.25 and max(out[1.0]["umap"]) < 0.25  # chance is 0.1


def test_ink_matching_reweights_real_images_to_the_samples_ink() -> None:
    from analyses.pie_diagnosis import ink_matched

    real = torch.linspace(0.0, 1.0, 1001, dtype=torch.float64)[:-1]  # 100 images per decile
    assert torch.allclose(ink_matched(real, real), torch.ones_like(real))  # same distribution: weight 1
    heavy = 0.9 + 0.1 * torch.rand(50, dtype=torch.float64)  # all in the top decile, and beyond the range
    w = ink_matched(real, torch.cat([heavy, torch.tensor([1.5], dtype=torch.float64)]))
    assert torch.all(w[real < 0.9] == 0) and torch.allclose(w[real >= 0.9], torch.full((100,), 10.0, dtype=torch.float64))
    assert float((w * real).sum() / w.sum()) == pytest.approx(0.9495, abs=1e-4)


def test_sample_diagnostics_flags_copies_of_training_images_and_scores_real_ones() -> None:
    from analyses.pie_diagnosis import sample_diagnostics
    from infoprobe.data import ImageData, load_dataset
    from infoprobe.quality import fit_reference_classifier

    train_data, test = load_dataset("digits", split="train"), load_dataset("digits", split="test")
    classifier = fit_reference_classifier(train_data, test, n_train=600)
    seen = train_data.images[:300]
    unseen = ImageData(train_data.images[300:900], train_data.labels[300:900], "digits", "train")

    class Copier(torch.nn.Module):  # "samples" that are training images it saw, at every temperature
        device = torch.device("cpu")

        def sample(self, n: int, *, temperature: float, generator: torch.Generator) -> torch.Tensor:
            return seen[torch.randperm(len(seen), generator=generator)[:n]]

    real, copies = sample_diagnostics(Copier(), test, classifier, seen.flatten(1), unseen, temperatures=[1.0],
                                      n=200, seed=0)
    top = classifier.predict_proba(test.images).max(1).values
    assert real["confident"] == pytest.approx(float((top >= 0.9).double().mean()), abs=1e-4)
    assert real["nn_seen"] > 0 and real["nn_unseen_equal"] >= real["nn_unseen"] > 0  # a subset is no nearer
    assert copies["images"] == "samples T=1" and copies["nn_seen"] == 0.0 < min(copies["nn_unseen"], copies["nn_unseen_equal"])
    assert 0.0 <= copies["knn_confident"] <= 1.0 and 0.0 <= copies["real_ink_matched_confident"] <= 1.0
