"""The CUDA paths: estimators, training (AMP) and analyze on the GPU equal the CPU (marked
``cuda``, skipped without a GPU), and the CPU dry run of ``benchmarks/gpu_check.py`` and of
``benchmarks/reproduce_gpu.py`` (run everywhere)."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest
import torch

import models
from benchmarks import gpu_check, reproduce_gpu
from infoprobe import checkpoint
from infoprobe.data import load_dataset
from models.training import train

NO_CUDA = "no CUDA device visible to torch; run on a GPU machine (make gpu-check)"
needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason=NO_CUDA)


# --- on a GPU ----------------------------------------------------------------------------------


@pytest.mark.cuda
@needs_cuda
@pytest.mark.parametrize("name", sorted(gpu_check.estimator_cases(8)))
def test_estimator_on_cuda_equals_cpu(name) -> None:
    estimate = gpu_check.estimator_cases(1500)[name]
    cpu, gpu = estimate("cpu"), estimate("cuda")
    assert math.isfinite(cpu.value)
    assert gpu.value == pytest.approx(cpu.value, rel=gpu_check.RTOL_ESTIMATORS, abs=0)


@pytest.mark.cuda
@needs_cuda
@pytest.mark.parametrize("amp", [False, True], ids=["float32", "amp"])
def test_training_on_cuda_lowers_the_loss(amp) -> None:
    data = load_dataset("digits", split="train")
    torch.manual_seed(0)
    model = models.build("classical-ae", dataset="digits")
    result = train(model, data, epochs=3, batch_size=64, device="cuda", amp=amp, progress=False)
    assert next(model.parameters()).device.type == "cuda"
    losses = [row["train_loss"] for row in result.history]
    assert all(math.isfinite(v) for v in losses) and losses[-1] < losses[0]


@pytest.mark.cuda
@needs_cuda
@pytest.mark.slow
def test_analyze_on_cuda_equals_cpu(tmp_path) -> None:
    torch.manual_seed(0)
    model = models.build("inn-ae", dataset="digits")
    path = checkpoint.save(tmp_path / "inn.pt", model, dataset=load_dataset("digits", split="train").describe())
    with gpu_check._no_tf32():
        on_gpu = gpu_check._analyze(path, "cuda", tmp_path / "gpu", samples=200, data_root=None)
        on_cpu = gpu_check._analyze(path, "cpu", tmp_path / "cpu", samples=200, data_root=None)
    report = gpu_check.compare_leaves(on_gpu, on_cpu, rtol=gpu_check.RTOL_ANALYZE, atol=gpu_check.ATOL_ANALYZE)
    assert report["compared"] > 100
    assert report["mismatches"] == [] and report["structure_differences"] == []


@pytest.mark.cuda
@needs_cuda
@pytest.mark.slow
def test_gpu_check_tiny_passes_on_cuda(tmp_path) -> None:
    out = tmp_path / "gpu_check.json"
    assert gpu_check.main(["--device", "cuda", "--tiny", "--out", str(out)]) == 0
    report = json.loads(out.read_text())
    amp = [s for s in report["steps"] if s["name"].endswith("+amp")]
    assert amp and all(s["status"] == "passed" for s in amp)
    assert all(s["peak_memory_bytes"] > 0 for s in report["steps"] if s["status"] == "passed")


# --- everywhere ----------------------------------------------------------------------------------


def test_compare_leaves_finds_differences_and_skips_run_fields() -> None:
    cpu = {"layers": [{"h": 2.0, "n": 100, "status": "ok"}], "mse": 0.5,
           "timings": {"total": 3.0}, "created": "x", "device": "cpu"}
    same = {"layers": [{"h": 2.0 + 1e-4, "n": 100, "status": "ok"}], "mse": 0.5,
            "timings": {"total": 99.0}, "created": "y", "device": "cuda"}
    report = gpu_check.compare_leaves(same, cpu, rtol=1e-3, atol=0.0)
    assert report["compared"] == 3  # h, n, mse; timings/created/device skipped
    assert report["mismatches"] == [] and report["structure_differences"] == []
    assert report["max_absolute_difference"] == pytest.approx(1e-4)

    off = {"layers": [{"h": 2.01, "n": 100, "status": "biased"}], "mse": None,
           "timings": {}, "created": "y", "device": "cuda", "extra": 1}
    report = gpu_check.compare_leaves(off, cpu, rtol=1e-3, atol=0.0)
    assert [m["path"] for m in report["mismatches"]] == ["/layers[0]/h"]
    assert report["text_differences"] == [{"path": "/layers[0]/status", "device": "biased", "cpu": "ok"}]
    assert sorted(report["structure_differences"]) == ["/extra", "/mse (NoneType vs float)"]


def test_loss_falls_needs_finite_falling_losses() -> None:
    assert gpu_check.loss_falls([5.0, 4.0, 3.0, 2.5, 2.0])[0]
    ok, reason, _, _ = gpu_check.loss_falls([2.0, 2.5, 3.0, 4.0, 5.0])
    assert not ok and re.match(r"the loss did not fall", reason)
    ok, reason, _, _ = gpu_check.loss_falls([5.0, math.nan, 3.0, 2.0, 1.0])
    assert not ok and reason == "non-finite loss at 1 step(s), first at step 1"
    assert not gpu_check.loss_falls([2.0, 1.0])[0]


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the failure without CUDA")
def test_gpu_check_without_cuda_fails_with_the_reason(tmp_path) -> None:
    out = tmp_path / "gpu_check.json"
    assert gpu_check.main(["--device", "cuda", "--out", str(out)]) == 1
    report = json.loads(out.read_text())
    assert report["passed"] is False and report["failed"] == ["setup"]
    assert "no CUDA device" in report["reason"]


def _documented_fields() -> set[str]:
    return set(re.findall(r"``(\w+)``", gpu_check.__doc__ or ""))


@pytest.mark.slow
def test_gpu_check_dry_run_on_cpu_passes_and_documents_its_fields(tmp_path) -> None:
    """``--device cpu --tiny``: every step of the GPU run on the CPU (AMP and DDP skipped)."""
    out = tmp_path / "gpu_check.json"
    assert gpu_check.main(["--device", "cpu", "--tiny", "--out", str(out)]) == 0
    report = json.loads(out.read_text())  # strict JSON: no NaN
    assert report["passed"] is True and report["failed"] == [] and report["device"] == "cpu"
    steps = {s["name"]: s for s in report["steps"]}
    estimators = [s for n, s in steps.items() if n.startswith("estimators/")]
    assert len(estimators) == 6 and all(s["relative_difference"] == 0.0 for s in estimators)
    for name in gpu_check.TRAINED:
        run = steps[f"training/{name}"]
        assert run["status"] == "passed" and run["loss_last"] < run["loss_first"]
        assert run["images_per_second"] > 0 and run["steps"] >= 4
        assert steps[f"training/{name}+amp"]["status"] == "skipped"
    analyzed = steps["analyze/classical-ae"]
    assert analyzed["compared"] > 100 and analyzed["max_relative_difference"] == 0.0
    assert steps["ddp"]["status"] == "skipped" and "--ddp-cpu" in steps["ddp"]["reason"]
    assert all(s["peak_memory_bytes"] is None for s in report["steps"])
    assert report["data"]["name"] == "digits" and report["data"]["note"]

    documented = _documented_fields()
    used = set(report) | {key for s in report["steps"] for key in s} - {"traceback"}
    assert used <= documented, f"fields missing from the module docstring: {sorted(used - documented)}"


def test_reproduce_gpu_dry_run_prints_the_paper_recipes(tmp_path, capsys) -> None:
    (tmp_path / "cifar-10-batches-py").mkdir()  # the standard files: CIFAR-10 parts included
    assert reproduce_gpu.main(["--dry-run", "--data-root", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    train = [line for line in lines if " train " in line]
    assert len(train) == 12  # 2 models x 3 bottlenecks x 2 datasets
    assert all("--resume" in line and "--device cuda" in line for line in train)
    inn20 = next(line for line in train if "inn-ae --dataset mnist --bottleneck 20 " in line)
    assert "--epochs 10 " in inn20 and "milestones=[8,10]" in inn20
    assert "runs/callahan2021/mnist/inn-k20" in inn20
    ae20 = next(line for line in train if "classical-ae --dataset mnist --bottleneck 20 " in line)
    assert "--epochs 100 " in ae20
    assert sum("analyses.callahan2021" in line and "--reuse" in line for line in lines) == 2
    assert any("analyses.pie_manifold" in line and "--resume" in line for line in lines)
    assert any("analyses.selfvae_levels --scale paper" in line and "--resume" in line for line in lines)

    assert reproduce_gpu.main(["--dry-run", "--data-root", str(tmp_path / "none")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert sum(line.startswith("# skip") for line in lines) == 2  # cifar10 and selfvae
    assert not any("--dataset cifar10" in line or "selfvae_levels" in line for line in lines)


def test_reproduce_targets_exist_in_the_makefile() -> None:
    makefile = (Path(__file__).resolve().parents[1] / "Makefile").read_text()
    assert re.search(r"^gpu-check:.*\n\t.*benchmarks/gpu_check\.py", makefile, re.M)
    assert re.search(r"^reproduce-gpu:.*\n\t.*benchmarks/reproduce_gpu\.py", makefile, re.M)
