"""One command that proves the CUDA side works: estimators, training (with and without AMP),
``infoprobe analyze`` and DDP on the device, each against the CPU or against its own loss curve.

    python benchmarks/gpu_check.py                       # on a GPU machine (make gpu-check)
    python benchmarks/gpu_check.py --device cpu --tiny   # dry run of the same code on a CPU

Exits 0 when every step that ran passed, 1 otherwise, and writes ONE JSON file (default
``benchmarks/results/gpu_check.json``). Steps (each one entry of ``steps``):

- ``estimators/<name>``: kNN entropy, kNN KL, KSG MI, Ross MI (integer labels, method "ksg"),
  Gaussian entropy and histogram entropy through ``infoprobe.entropy / kl_divergence /
  mutual_information(..., device=...)`` on the device and on the CPU, same float64 data. They
  compute in float64 on both (kNN candidates in float32 are re-ranked exactly in float64), so
  they must agree to ``RTOL_ESTIMATORS`` = 1e-6 relative.
- ``training/<model>[+amp]``: ``models.training.train`` on the device. MNIST INN and classical
  AE one epoch each; PIE, VAE and selfVAE ``Sizes.steps`` optimizer steps each (300; ``--tiny``:
  15 on digits); with AMP on CUDA (skipped on the CPU, where AMP does not exist). Passes when every step's loss is finite and
  the mean loss of the last tenth of the steps is below that of the first tenth.
- ``analyze/<model>``: ``infoprobe analyze --device <device>`` and ``--device cpu`` on the
  checkpoint of the float32 training run (INN and classical AE; ``--tiny``: classical AE
  only); every numeric leaf of the two ``metrics.json`` files
  (walked generically; keys in ``SKIP_KEYS`` ignored) must agree within ``RTOL_ANALYZE`` /
  ``ATOL_ANALYZE`` (see ``TOLERANCE_REASONS``). TF32 is disabled during this step.
- ``ddp``: ``torchrun -m infoprobe train`` on every visible GPU (NCCL) when more than one is
  visible, else skipped; on the CPU with ``--ddp-cpu`` two gloo processes.

JSON fields (top level): ``schema``, ``passed`` (bool: no step failed), ``failed`` (names of
failed steps), ``command``, ``created`` (UTC), ``device``, ``tiny``, ``total_seconds``,
``environment`` (torch, CUDA, cuDNN, GPU names and count, TF32 flags, CPU threads),
``data`` (dataset used, root, and a ``note`` when MNIST was absent and digits were used),
``tolerances`` (rtol/atol per comparison and the reason), ``steps``. Each step has ``name``,
``status`` ("passed" | "failed" | "skipped"), ``reason`` (why it failed or was skipped, else
null), ``seconds``, ``peak_memory_bytes`` (``torch.cuda.max_memory_allocated``, reset at the
step's start; null on the CPU or in child processes), ``traceback`` (failed steps only), and
per kind:

- estimators: ``device_value``, ``cpu_value`` (nats), ``device_interval``, ``cpu_interval`` (90%
  interval from ``N_BOOT`` resamples), ``relative_difference`` (the largest over value and
  bounds), ``rtol``, ``n``, ``d``, ``device_seconds``, ``cpu_seconds``;
- training: ``model``, ``dataset``, ``amp``, ``steps``, ``epochs``, ``batch_size``, ``images``,
  ``images_per_second`` (train's timed epoch), ``loss_first``/``loss_last`` (mean of the first /
  last tenth of the steps), ``loss_curve`` (up to ``CURVE_POINTS`` window means of the per-step
  loss), ``parameters``;
- analyze: ``compared`` (numeric leaves), ``max_relative_difference``, ``max_absolute_difference``,
  ``rtol``, ``atol``, ``mismatch_count``, ``mismatches`` (up to 20: ``path``, ``device``, ``cpu``),
  ``structure_differences`` (paths present on one side only or with another type),
  ``text_differences`` (string leaves that differ; reported, not failed), ``samples``,
  ``device_seconds``, ``cpu_seconds``;
- ddp: ``backend``, ``world_size``, ``command``, ``returncode``, ``train_loss``,
  ``images_per_second``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import math
import os
import platform
import shlex
import socket
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import infoprobe  # noqa: E402
import models  # noqa: E402
from infoprobe import checkpoint  # noqa: E402
from infoprobe.cli import main as cli_main  # noqa: E402
from infoprobe.data import ImageData, load_dataset  # noqa: E402
from infoprobe.errors import InfoprobeError  # noqa: E402
from models.training import train  # noqa: E402

__all__ = ["compare_leaves", "estimator_cases", "loss_falls", "main", "run_checks"]

SCHEMA = "infoprobe.gpu_check/1"
DEFAULT_OUT = ROOT / "benchmarks" / "results" / "gpu_check.json"
RTOL_ESTIMATORS = 1e-6
RTOL_ANALYZE = 1e-3
ATOL_ANALYZE = 1e-5
TOLERANCE_REASONS = {
    "estimators": "float64 on both devices; only the order of floating-point sums differs",
    "analyze": (
        "the model's forward pass is float32 on different kernels (cuBLAS/cuDNN vs MKL/oneDNN; "
        "TF32 off), so activations differ by ~1e-6 relative; histograms can move a value across a "
        "bin edge and kNN estimates sum d·log(distance), which scales that up"
    ),
}
#: metrics.json keys whose subtrees are not compared (run-specific, not results)
SKIP_KEYS = frozenset({"timings", "created", "versions", "device", "devices", "checkpoint", "seconds"})
CURVE_POINTS = 50
N_BOOT = 10  # resamples of the estimators' intervals, compared too
#: (registry name, model options); the selfVAE and VAE at the zoo's defaults for the dataset
TRAINED: dict[str, dict[str, Any]] = {
    "inn-ae": {}, "classical-ae": {}, "pie": {"sigma": 0.1}, "vae": {"prior": "standard"},
    "selfvae": {"transform": "downscale", "levels": 1},
}
EPOCH_MODELS = ("inn-ae", "classical-ae")  # one full epoch; the others run Sizes.steps steps


@dataclass(frozen=True)
class Sizes:
    """How much each step does: the GPU check, or ``--tiny`` (the CPU dry run)."""

    epoch_images: int | None  # images of the one-epoch models (None: the whole training set)
    batch_size: int | None  # None: each model's recipe
    steps: int  # optimizer steps of the PIE, VAE and selfVAE
    samples: int  # ``infoprobe analyze --samples``
    estimator_n: int  # rows of the estimators' data
    analyzed: tuple[str, ...]  # models analysed on both devices


FULL = Sizes(epoch_images=None, batch_size=None, steps=300, samples=2000, estimator_n=4000,
             analyzed=("inn-ae", "classical-ae"))
#: --tiny analyses one model only: ``infoprobe analyze`` spends ~10 s drawing figures on a CPU
TINY = Sizes(epoch_images=256, batch_size=32, steps=15, samples=120, estimator_n=400,
             analyzed=("classical-ae",))


# --- helpers -----------------------------------------------------------------------------------


def compare_leaves(a: Any, b: Any, *, rtol: float, atol: float,
                   skip: frozenset[str] = SKIP_KEYS) -> dict[str, Any]:
    """Walk two JSON trees together and compare every numeric leaf: |a − b| ≤ atol + rtol·|b|.

    Keys in ``skip`` are ignored at any depth. Returns counts, the largest differences, the
    mismatching leaves, the paths present on one side only (or with other types) and the string
    leaves that differ.
    """
    report: dict[str, Any] = {"compared": 0, "max_relative_difference": 0.0,
                              "max_absolute_difference": 0.0, "mismatches": [],
                              "structure_differences": [], "text_differences": []}

    def number(v: Any) -> bool:
        return isinstance(v, int | float) and not isinstance(v, bool)

    def walk(x: Any, y: Any, path: str) -> None:
        if isinstance(x, dict) and isinstance(y, dict):
            for key in sorted(set(x) | set(y)):
                if key in skip:
                    continue
                if key not in x or key not in y:
                    report["structure_differences"].append(f"{path}/{key}")
                else:
                    walk(x[key], y[key], f"{path}/{key}")
        elif isinstance(x, list) and isinstance(y, list):
            if len(x) != len(y):
                report["structure_differences"].append(f"{path} (length {len(x)} vs {len(y)})")
            for i, (u, v) in enumerate(zip(x, y, strict=False)):
                walk(u, v, f"{path}[{i}]")
        elif number(x) and number(y):
            report["compared"] += 1
            diff = abs(float(x) - float(y))
            if math.isnan(diff):
                if not (math.isnan(float(x)) and math.isnan(float(y))):
                    report["mismatches"].append({"path": path, "device": x, "cpu": y})
                return
            rel = diff / abs(float(y)) if y != 0 else (0.0 if diff == 0 else math.inf)
            report["max_absolute_difference"] = max(report["max_absolute_difference"], diff)
            report["max_relative_difference"] = max(report["max_relative_difference"], rel)
            if diff > atol + rtol * abs(float(y)):
                report["mismatches"].append({"path": path, "device": x, "cpu": y})
        elif isinstance(x, str) and isinstance(y, str):
            if x != y:
                report["text_differences"].append({"path": path, "device": x, "cpu": y})
        elif (x is None and y is None) or (isinstance(x, bool) and isinstance(y, bool) and x == y):
            return
        else:
            report["structure_differences"].append(f"{path} ({type(x).__name__} vs {type(y).__name__})")
    walk(a, b, "")
    report["mismatch_count"] = len(report["mismatches"])
    report["mismatches"] = report["mismatches"][:20]
    return report


def loss_falls(losses: list[float]) -> tuple[bool, str | None, float, float]:
    """(passed, reason, mean of the first tenth, mean of the last tenth) of a per-step loss curve."""
    if len(losses) < 4:
        return False, f"expected at least 4 training steps, got {len(losses)}", math.nan, math.nan
    bad = [i for i, v in enumerate(losses) if not math.isfinite(v)]
    tenth = max(len(losses) // 10, 1)
    first, last = sum(losses[:tenth]) / tenth, sum(losses[-tenth:]) / tenth
    if bad:
        return False, f"non-finite loss at {len(bad)} step(s), first at step {bad[0]}", first, last
    if not last < first:
        return False, f"the loss did not fall: first-tenth mean {first:.6g}, last-tenth mean {last:.6g}", first, last
    return True, None, first, last


def _curve(losses: list[float], points: int = CURVE_POINTS) -> list[float]:
    width = max(math.ceil(len(losses) / points), 1)
    return [sum(chunk) / len(chunk) for chunk in (losses[i:i + width] for i in range(0, len(losses), width))]


class _LossTrace(nn.Module):
    """A zoo model whose ``loss`` also keeps each step's detached loss (no host sync per step)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.inner = model
        self.trace: list[Tensor] = []
        self.input_shape = model.input_shape  # type: ignore[union-attr]
        self.config = model.config  # type: ignore[union-attr]

    def default_recipe(self) -> dict[str, Any]:
        return self.inner.default_recipe()  # type: ignore[no-any-return, operator]

    def loss(self, x: Tensor) -> dict[str, Tensor]:
        terms: dict[str, Tensor] = self.inner.loss(x)  # type: ignore[operator]
        if self.training:
            self.trace.append(terms["loss"].detach())
        return terms


def _finite(tree: Any) -> Any:
    """``tree`` with NaN and ±inf replaced by None, so that the file is strict JSON."""
    if isinstance(tree, dict):
        return {k: _finite(v) for k, v in tree.items()}
    if isinstance(tree, list):
        return [_finite(v) for v in tree]
    if isinstance(tree, float) and not math.isfinite(tree):
        return None
    return tree


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@contextlib.contextmanager
def _step(steps: list[dict[str, Any]], name: str, device: torch.device) -> Iterator[dict[str, Any]]:
    """Record one step: status, reason (the exception on failure), seconds, peak GPU memory."""
    entry: dict[str, Any] = {"name": name, "status": "passed", "reason": None}
    steps.append(entry)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    print(f"[gpu_check] {name} ...", flush=True)
    try:
        yield entry
        _sync(device)
    except Exception as exc:  # recorded as the step's failure; main() exits non-zero
        entry["status"] = "failed"
        entry["reason"] = f"{type(exc).__name__}: {exc}"
        entry["traceback"] = traceback.format_exc(limit=-6)
    entry["seconds"] = time.perf_counter() - start
    entry["peak_memory_bytes"] = int(torch.cuda.max_memory_allocated(device)) if device.type == "cuda" else None
    print(f"[gpu_check] {name}: {entry['status']}" + (f" ({entry['reason']})" if entry["reason"] else "")
          + f", {entry['seconds']:.1f} s", flush=True)


def _skip(steps: list[dict[str, Any]], name: str, reason: str) -> None:
    steps.append({"name": name, "status": "skipped", "reason": reason, "seconds": 0.0,
                  "peak_memory_bytes": None})
    print(f"[gpu_check] {name}: skipped ({reason})", flush=True)


@contextlib.contextmanager
def _no_tf32() -> Iterator[None]:
    """Plain float32 matmuls and convolutions on CUDA for the duration (restored afterwards)."""
    saved = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved


def _environment(device: torch.device) -> dict[str, Any]:
    cuda = torch.cuda.is_available()
    return {
        "python": platform.python_version(), "platform": platform.platform(),
        "torch": str(torch.__version__), "cuda": torch.version.cuda, "cudnn": torch.backends.cudnn.version() if cuda else None,
        "gpu_count": torch.cuda.device_count() if cuda else 0,
        "gpus": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if cuda else [],
        "tf32_matmul": torch.backends.cuda.matmul.allow_tf32, "tf32_cudnn": torch.backends.cudnn.allow_tf32,
        "cpu_threads": torch.get_num_threads(), "infoprobe": infoprobe.__version__,
    }


# --- the checks --------------------------------------------------------------------------------


def estimator_cases(n: int) -> dict[str, Callable[[str | torch.device], Any]]:
    """name -> f(device) -> Estimate, on fixed float64 data (a correlated Gaussian and labels)."""
    g = torch.Generator().manual_seed(0)
    d = 4
    mix = torch.eye(d, dtype=torch.float64) + 0.5 * torch.randn(d, d, generator=g, dtype=torch.float64)
    x = torch.randn(n, d, generator=g, dtype=torch.float64) @ mix
    q = torch.randn(n, d, generator=g, dtype=torch.float64) * 1.3 + 0.2
    y = x[:, :2] + 0.5 * torch.randn(n, 2, generator=g, dtype=torch.float64)
    labels = (x[:, 0] > 0).long() + (x[:, 1] > 0.5).long()
    ci: dict[str, Any] = {"ci": 0.9, "n_boot": N_BOOT}  # resampling indices are drawn on the CPU
    return {
        "knn_entropy": lambda dev: infoprobe.entropy(x, method="knn", k=3, device=dev, **ci),
        "knn_kl": lambda dev: infoprobe.kl_divergence(x, q, method="knn", k=3, device=dev, **ci),
        "ksg_mi": lambda dev: infoprobe.mutual_information(x, y, method="ksg", k=3, device=dev, **ci),
        "ross_mi": lambda dev: infoprobe.mutual_information(x, labels, method="ksg", k=3, device=dev, **ci),
        "gaussian_entropy": lambda dev: infoprobe.entropy(x, method="gaussian", device=dev, **ci),
        "histogram_entropy": lambda dev: infoprobe.entropy(x, method="histogram", bins=30, device=dev, **ci),
    }


def check_estimators(steps: list[dict[str, Any]], device: torch.device, *, n: int) -> None:
    for name, estimate in estimator_cases(n).items():
        with _step(steps, f"estimators/{name}", device) as entry:
            t0 = time.perf_counter()
            cpu = estimate("cpu")
            t1 = time.perf_counter()
            dev = estimate(device)
            _sync(device)
            t2 = time.perf_counter()
            pairs = [(dev.value, cpu.value)]
            if dev.ci is not None and cpu.ci is not None:
                pairs += list(zip(dev.ci, cpu.ci, strict=True))
            rel = max(abs(a - b) / max(abs(b), 1e-12) for a, b in pairs)
            entry.update(device_value=dev.value, cpu_value=cpu.value, relative_difference=rel,
                         device_interval=dev.ci, cpu_interval=cpu.ci,
                         rtol=RTOL_ESTIMATORS, n=cpu.n, d=cpu.d, cpu_seconds=t1 - t0,
                         device_seconds=t2 - t1)
            same_intervals = (dev.ci is None) == (cpu.ci is None)
            if not (math.isfinite(cpu.value) and rel <= RTOL_ESTIMATORS and same_intervals):
                raise AssertionError(f"{name}: {dev.value!r} {dev.ci} on {device} vs {cpu.value!r} {cpu.ci} on "
                                     f"the CPU (relative difference {rel:.3g} > {RTOL_ESTIMATORS})")


def check_training(steps: list[dict[str, Any]], device: torch.device, *, dataset: str,
                   train_data: ImageData, sizes: Sizes, workdir: Path) -> dict[str, Path]:
    """Train every model in ``TRAINED`` (float32, then AMP on CUDA); returns float32 checkpoints."""
    checkpoints: dict[str, Path] = {}
    for name, options in TRAINED.items():
        for amp in (False, True):
            step_name = f"training/{name}" + ("+amp" if amp else "")
            if amp and device.type != "cuda":
                _skip(steps, step_name, "AMP (float16 autocast) needs CUDA")
                continue
            with _step(steps, step_name, device) as entry:
                torch.manual_seed(0)
                model = models.build(name, dataset=dataset, **options)
                traced = _LossTrace(model)
                bs = sizes.batch_size or int(model.default_recipe()["batch_size"])  # type: ignore[operator]
                if name in EPOCH_MODELS:
                    images = min(sizes.epoch_images or len(train_data), len(train_data))
                else:
                    images = min(sizes.steps * bs, len(train_data))
                result = train(traced, train_data, epochs=1, batch_size=bs, subset=images,
                               device=device, amp=amp, seed=0, progress=False)
                losses = torch.stack(traced.trace).float().cpu().tolist() if traced.trace else []
                ok, reason, first, last = loss_falls(losses)
                entry.update(model=name, dataset=dataset, amp=amp, steps=len(losses), epochs=1,
                             batch_size=bs, images=images, images_per_second=result.images_per_second,
                             loss_first=first, loss_last=last, loss_curve=_curve(losses),
                             parameters=sum(p.numel() for p in model.parameters()))
                if not ok:
                    raise AssertionError(f"{name}: {reason}")
                if not amp and name in sizes.analyzed:
                    path = workdir / f"{name}.pt"
                    checkpoint.save(path, model, dataset=train_data.describe(),
                                    training={"recipe": result.recipe, "device": str(device)})
                    checkpoints[name] = path
    return checkpoints


def _analyze(path: Path, device: str, out: Path, *, samples: int, data_root: str | None) -> dict[str, Any]:
    args = ["analyze", str(path), "--device", device, "--out", str(out), "--samples", str(samples),
            "--joint-samples", str(min(samples, 1000)), "--n-boot", "5", "--no-umap", "--quiet"]
    if data_root is not None:
        args += ["--data-root", data_root]
    code = cli_main(args)
    if code != 0:
        raise AssertionError(f"infoprobe {' '.join(args)} exited with {code}")
    return json.loads((out / "metrics.json").read_text())  # type: ignore[no-any-return]


def check_analyze(steps: list[dict[str, Any]], device: torch.device, checkpoints: dict[str, Path], *,
                  analyzed: tuple[str, ...], samples: int, data_root: str | None, workdir: Path) -> None:
    for name in analyzed:
        step_name = f"analyze/{name}"
        if name not in checkpoints:
            _skip(steps, step_name, "its float32 training step failed, so there is no checkpoint")
            continue
        with _step(steps, step_name, device) as entry, _no_tf32():
            t0 = time.perf_counter()
            on_device = _analyze(checkpoints[name], str(device), workdir / f"{name}-device", samples=samples,
                                 data_root=data_root)
            t1 = time.perf_counter()
            on_cpu = _analyze(checkpoints[name], "cpu", workdir / f"{name}-cpu", samples=samples,
                              data_root=data_root)
            report = compare_leaves(on_device, on_cpu, rtol=RTOL_ANALYZE, atol=ATOL_ANALYZE)
            entry.update(samples=samples, device_seconds=t1 - t0, cpu_seconds=time.perf_counter() - t1,
                         rtol=RTOL_ANALYZE, atol=ATOL_ANALYZE, **report)
            if report["compared"] == 0:
                raise AssertionError("no numeric leaves were compared: metrics.json is empty or all skipped")
            if report["mismatches"] or report["structure_differences"]:
                raise AssertionError(f"{report['mismatch_count']} numeric leaves differ beyond tolerance and "
                                     f"{len(report['structure_differences'])} paths differ in structure")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def check_ddp(steps: list[dict[str, Any]], device: torch.device, *, ddp_cpu: bool, dataset: str,
              data_root: str | None, tiny: bool, workdir: Path) -> None:
    if device.type == "cuda":
        world = torch.cuda.device_count()
        if world < 2:
            _skip(steps, "ddp", f"{world} GPU visible; DDP with NCCL needs 2 or more")
            return
        backend = "nccl"
    elif ddp_cpu:
        world, backend = 2, "gloo"
    else:
        _skip(steps, "ddp", "no GPU: gloo DDP on the CPU runs only with --ddp-cpu "
              "(tests/test_training.py checks it against one process)")
        return
    with _step(steps, "ddp", device) as entry:
        out = workdir / "ddp"
        subset = 128 if tiny else 256 * 128 * world
        cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(world),
               "--master_port", str(_free_port()), "-m", "infoprobe", "train", "classical-ae",
               "--dataset", dataset, "--epochs", "1", "--subset", str(subset), "--device", device.type,
               "--out", str(out), "--no-progress"]
        if data_root is not None:
            cmd += ["--data-root", data_root]
        env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
        done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240, check=False)
        entry.update(backend=backend, world_size=world, returncode=done.returncode,
                     command=shlex.join(cmd[1:]), train_loss=None, images_per_second=None)
        if done.returncode != 0:
            raise AssertionError(f"torchrun exited with {done.returncode}: {done.stderr[-2000:]}")
        ckpt = checkpoint.load(out / "checkpoint.pt")
        entry.update(train_loss=ckpt.metrics.get("train_loss"),
                     images_per_second=ckpt.training.get("images_per_second"))
        if ckpt.training.get("world_size") != world or not math.isfinite(ckpt.metrics.get("train_loss", math.nan)):
            raise AssertionError(f"expected world size {world} and a finite loss, got "
                                 f"{ckpt.training.get('world_size')} and {ckpt.metrics.get('train_loss')}")


# --- driver ------------------------------------------------------------------------------------


def _data(root: str | None, tiny: bool) -> tuple[str, ImageData, dict[str, Any]]:
    """(dataset, training split, description): MNIST from ``root``, else digits (said so)."""
    info: dict[str, Any] = {"root": root, "note": None}
    if tiny:
        info["note"] = "--tiny: scikit-learn digits (8x8), not MNIST"
        return "digits", load_dataset("digits", split="train"), {**info, "name": "digits"}
    try:
        return "mnist", load_dataset("mnist", split="train", root=root), {**info, "name": "mnist"}
    except InfoprobeError as exc:
        info["note"] = f"MNIST not found, so scikit-learn digits were used instead: {exc}"
        return "digits", load_dataset("digits", split="train"), {**info, "name": "digits"}


def default_data_root() -> str | None:
    """``../shared/data`` next to the repository when present, else ``$INFOPROBE_DATA``."""
    shared = ROOT.parent / "shared" / "data"
    if shared.is_dir():
        return str(shared)
    return os.environ.get("INFOPROBE_DATA")


def run_checks(*, device: str, tiny: bool, data_root: str | None, ddp_cpu: bool = False) -> dict[str, Any]:
    """Run every step and return the JSON report (see the module docstring for its fields)."""
    from infoprobe.device import resolve_device

    dev = resolve_device(device)
    torch.ones(1, device=dev).sum().item()  # create the CUDA context before any step is timed
    start = time.perf_counter()
    steps: list[dict[str, Any]] = []
    dataset, train_data, data_info = _data(data_root, tiny)
    with tempfile.TemporaryDirectory(prefix="gpu_check_") as tmp:
        workdir = Path(tmp)
        sizes = TINY if tiny else FULL
        check_estimators(steps, dev, n=sizes.estimator_n)
        ckpts = check_training(steps, dev, dataset=dataset, train_data=train_data, sizes=sizes, workdir=workdir)
        check_analyze(steps, dev, ckpts, analyzed=sizes.analyzed, samples=sizes.samples,
                      data_root=None if dataset == "digits" else data_root, workdir=workdir)
        check_ddp(steps, dev, ddp_cpu=ddp_cpu, dataset=dataset,
                  data_root=None if dataset == "digits" else data_root, tiny=tiny, workdir=workdir)
    failed = [s["name"] for s in steps if s["status"] == "failed"]
    return {
        "schema": SCHEMA, "passed": not failed, "failed": failed,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "device": str(dev), "tiny": tiny, "total_seconds": time.perf_counter() - start,
        "environment": _environment(dev), "data": data_info,
        "tolerances": {
            "estimators": {"rtol": RTOL_ESTIMATORS, "atol": 0.0, "reason": TOLERANCE_REASONS["estimators"]},
            "analyze": {"rtol": RTOL_ANALYZE, "atol": ATOL_ANALYZE, "reason": TOLERANCE_REASONS["analyze"],
                        "skipped_keys": sorted(SKIP_KEYS)},
        },
        "steps": steps,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    p.add_argument("--device", default="cuda", help="cuda (default), cuda:N, or cpu for a dry run")
    p.add_argument("--tiny", action="store_true", help="tiny sizes on digits: the CPU dry run / CI")
    p.add_argument("--data-root", default=None,
                   help="folder with mnist.npz or the MNIST files (default: ../shared/data if present, "
                        "else $INFOPROBE_DATA); without MNIST the digits are used, as the JSON says")
    p.add_argument("--out", type=Path, default=DEFAULT_OUT, help="the JSON file (default: %(default)s)")
    p.add_argument("--ddp-cpu", action="store_true", help="on the CPU, also run 2-process gloo DDP")
    args = p.parse_args(argv)
    try:
        report = run_checks(device=args.device, tiny=args.tiny,
                            data_root=args.data_root or default_data_root(), ddp_cpu=args.ddp_cpu)
    except InfoprobeError as exc:  # e.g. --device cuda without CUDA: nothing could run
        report = {"schema": SCHEMA, "passed": False, "failed": ["setup"], "reason": str(exc),
                  "device": args.device, "tiny": args.tiny, "steps": []}
        print(f"[gpu_check] {exc}", file=sys.stderr, flush=True)
    report["command"] = shlex.join([sys.executable, "benchmarks/gpu_check.py", *(sys.argv[1:] if argv is None else argv)])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(_finite(report), indent=1, allow_nan=False) + "\n")
    verdict = "PASSED" if report["passed"] else f"FAILED: {', '.join(report['failed'])}"
    print(f"[gpu_check] {verdict}; wrote {args.out}", flush=True)
    return 0 if report["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
