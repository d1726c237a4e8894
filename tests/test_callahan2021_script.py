"""The Callahan & Paskett (2021) script on the tiny ``digits`` configuration: it goes through the
public API, so its numbers are the library's; the paper's io KL is checked against a numpy/scipy
transcription, and re-rendering keeps the hand-written discussion."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import scipy.stats
import torch

from analyses import callahan2021
from infoprobe import analyze, checkpoint
from infoprobe.data import load_dataset
from infoprobe.results import AnalysisResult


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("callahan")
    paths = {"runs": root / "runs", "figures": root / "figures", "results": root / "results"}
    argv = ["--dataset", "digits", "--quick", "--runs", str(paths["runs"]), "--figures", str(paths["figures"]),
            "--results", str(paths["results"])]
    assert callahan2021.main(argv) == 0
    paths["argv"] = argv  # type: ignore[assignment]
    return paths


@pytest.mark.slow
def test_script_numbers_are_the_librarys(run: dict[str, Path]) -> None:
    summary = json.loads((run["results"] / "callahan2021.json").read_text())["digits"]
    for stem in ("entropy", "relative_entropy", "bins", "entropy_change", "info_plane_inn"):
        assert (run["figures"] / f"callahan2021_{stem}_digits.png").stat().st_size > 5_000
    ckpt = checkpoint.load(run["runs"] / "digits" / "classical-k8" / "checkpoint.pt")
    model = checkpoint.build_model(ckpt, device="cpu").eval()
    test = load_dataset("digits", split="test")
    with torch.no_grad():  # in analyze()'s batches of 256: float32 results depend on the batch shape
        x_hat = torch.cat([model.reconstruct(b) for b in test.images.split(256)])
    # the paper's io KL: scipy.stats.entropy of 100-bin numpy histograms over each array's range, +1
    p = np.histogram(test.images.numpy().ravel(), bins=100)[0] + 1.0
    q = np.histogram(x_hat.numpy().ravel(), bins=100)[0] + 1.0
    entry = summary["models"]["classical"]
    assert entry["io_kl"]["callahan2021"]["value"] == pytest.approx(scipy.stats.entropy(p, q), rel=1e-4)
    # every per-layer number the script wrote is what infoprobe.analyze gives with its options
    written = AnalysisResult.from_json(run["results"] / "callahan2021" / "digits-classical-k8.metrics.json")
    again = analyze(model, test, estimators=callahan2021.ESTIMATORS, samples=360, joint_samples=360, n_boot=10,
                    seed=0, device="cpu", umap=False, progress=False)
    assert [row.to_dict() for row in again.layers] == [row.to_dict() for row in written.layers]
    assert summary["models"]["inn"]["inversion_error"] < 1e-4
    # the anatomy is computed on a second reconstruction pass: equal up to float32 round-off
    anatomy, io_kl = summary["models"]["inn"]["anatomy"]["value"], summary["models"]["inn"]["io_kl"]["callahan2021"]["value"]
    assert anatomy == pytest.approx(io_kl, rel=1e-4)


@pytest.mark.slow
def test_render_only_keeps_the_discussion_and_reuse_reproduces(run: dict[str, Path]) -> None:
    page = run["results"] / "callahan2021.md"
    page.write_text(page.read_text() + "\n" + callahan2021.DISCUSSION_MARK + "\nhand-written text\n")
    assert callahan2021.main([*run["argv"], "--render-only"]) == 0  # type: ignore[misc]
    assert page.read_text().endswith("hand-written text\n") and "## digits" in page.read_text()
    before = json.loads((run["results"] / "callahan2021.json").read_text())["digits"]
    assert callahan2021.main([*run["argv"], "--reuse"]) == 0  # type: ignore[misc]
    after = json.loads((run["results"] / "callahan2021.json").read_text())["digits"]
    for kind in ("inn", "classical"):
        assert after["models"][kind]["training"]["source"] == "loaded"
        assert after["models"][kind]["io_kl"] == before["models"][kind]["io_kl"]
        # a loaded model brings its learning curve: one row per epoch trained
        history = after["models"][kind]["training"]["history"]
        assert [h["epoch"] for h in history] == list(range(1, after["models"][kind]["training"]["epochs"] + 1))
    assert (run["figures"] / "callahan2021_learning_curves_digits.png").stat().st_size > 5_000
    assert "- inn: test L1 by epoch " in page.read_text()


@pytest.mark.slow
def test_untrained_control_and_seed_variants_with_their_spread(run: dict[str, Path]) -> None:
    argv = run["argv"]
    main_metrics = (run["results"] / "callahan2021" / "digits-inn-k8.metrics.json").read_text()
    assert callahan2021.main([*argv, "--untrained"]) == 0  # type: ignore[misc]
    assert callahan2021.main([*argv, "--seed", "1", "--variant", "seed 1"]) == 0  # type: ignore[misc]
    results = json.loads((run["results"] / "callahan2021.json").read_text())
    assert {"digits", "digits untrained", "digits seed 1"} <= results.keys()
    untrained = results["digits untrained"]
    assert untrained["models"]["inn"]["training"]["source"] == "untrained" and not untrained["sweep"]
    assert (run["figures"] / "callahan2021_entropy_digits_untrained.png").is_file()
    assert (run["figures"] / "callahan2021_entropy_digits_seed1.png").is_file()
    # the variants' per-layer files sit beside the main run's, which they leave alone
    assert (run["results"] / "callahan2021" / "digits_untrained-inn-k8.metrics.json").is_file()
    assert untrained["models"]["inn"]["metrics"].endswith("digits_untrained-inn-k8.metrics.json")
    assert (run["results"] / "callahan2021" / "digits-inn-k8.metrics.json").read_text() == main_metrics
    # the seeds table: the main run and seed 1, not the untrained control
    page = (run["results"] / "callahan2021.md").read_text()
    assert "## Seeds: digits, k = 8, quick scale (2 runs)" in page
    l1 = [results[key]["models"]["classical"]["l1"] for key in ("digits", "digits seed 1")]
    row = next(line for line in page.splitlines() if line.startswith("| test L1 |") and "±" in line)
    assert f"{np.mean(l1):.4g} ± {np.std(l1, ddof=1):.2g}" in row
    assert any(word in row for word in ("in all 2", "differs between runs"))
    assert results["digits seed 1"]["models"]["inn"]["exact_dh_total"] is not None
    # the label information of the code as a probe's lower bound, readable where the kNN one is not
    probe = results["digits seed 1"]["models"]["classical"]["code"]["mi_label probe"]
    assert probe["status"] == "ok" and 0 < probe["value"] <= np.log(10)
    # another seed of one model only, numbers without figures: the spread then has no order column
    assert callahan2021.main([*argv, "--seed", "2", "--variant", "seed 2", "--models", "classical", "--no-figures"]) == 0  # type: ignore[misc]
    results = json.loads((run["results"] / "callahan2021.json").read_text())
    assert set(results["digits seed 2"]["models"]) == {"classical"}
    assert not (run["figures"] / "callahan2021_entropy_digits_seed2.png").exists()
    page = (run["results"] / "callahan2021.md").read_text()
    assert "## Seeds: digits, k = 8, quick scale (3 runs)" in page and "## digits seed" not in page
    row = next(line for line in page.splitlines() if line.startswith("| test L1 |") and "±" in line)
    l1 = [results[key]["models"]["classical"]["l1"] for key in ("digits", "digits seed 1", "digits seed 2")]
    assert row.endswith(f"| {np.mean(l1):.4g} ± {np.std(l1, ddof=1):.2g} |  |")
    assert any(line.startswith("| I(T; Y) ≥ [probe], code |") for line in page.splitlines())
    # the other model's seed 2, analysed later, joins the same entry instead of replacing it
    assert callahan2021.main([*argv, "--seed", "2", "--variant", "seed 2", "--models", "inn", "--no-figures"]) == 0  # type: ignore[misc]
    merged = json.loads((run["results"] / "callahan2021.json").read_text())["digits seed 2"]
    assert list(merged["models"]) == ["inn", "classical"]
    assert merged["models"]["classical"] == results["digits seed 2"]["models"]["classical"]
    assert len(merged["commands"]) == 2 and "--models inn" in merged["commands"][1]
    page = (run["results"] / "callahan2021.md").read_text()
    row = next(line for line in page.splitlines() if line.startswith("| test L1 |") and "±" in line)
    assert any(word in row for word in ("in all 3", "differs between runs"))
    assert "| epochs trained (each run) | 2, 2, 2 | 2, 2, 2 | |" in page
    assert merged["commands"][1] in page


def test_one_model_alone_must_be_another_seed(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit, match=r"^2$"):  # argparse's usage error
        callahan2021.main(["--dataset", "digits", "--models", "classical"])  # type: ignore[misc]
    assert "--models classical analyses one model as another seed of a run: add --variant 'seed N'" in capsys.readouterr().err


def test_seeds_table_summarises_each_training_length_apart() -> None:
    # INN seed 0 at the full recipe, seeds 1 and 2 at a reduced one: one mean over the mix would
    # read the training length as seed-to-seed spread
    def run(variant: str | None, inn: tuple[int, float], classical: float) -> dict[str, object]:
        def model(epochs: int, l1: float) -> dict[str, object]:
            return {"training": {"epochs": epochs}, "l1": l1, "io_kl": {}, "io_kl_256_levels": float("nan")}

        return {"dataset": "mnist", "k": 20, "scale": "full", "variant": variant, "command": f"run {variant}",
                "models": {"inn": model(*inn), "classical": model(100, classical)}}

    results = {"mnist": run(None, (10, 0.0273), 0.0386), "mnist seed 1": run("seed 1", (5, 0.0330), 0.0387),
               "mnist seed 2": run("seed 2", (5, 0.0340), 0.0385)}
    lines = callahan2021.seeds_table(results)
    assert "| epochs trained (each run) | 10, 5, 5 | 100, 100, 100 | |" in lines
    l1 = [0.0386, 0.0387, 0.0385]
    assert (f"| test L1 | 10 ep: 0.0273; 5 ep: 0.0335 ± {np.std([0.0330, 0.0340], ddof=1):.2g} "
            f"| {np.mean(l1):.4g} ± {np.std(l1, ddof=1):.2g} | INN < classical in all 3 |") in lines
