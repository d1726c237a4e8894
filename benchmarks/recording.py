"""Cost of recording every layer: plain reconstruction pass vs recorded pass (issue 3).

For the MNIST INN autoencoder (``models.build("inn-ae", dataset="mnist", bottleneck=20)``) and
the classical autoencoder (``models.build("classical-ae", ...)``) over the MNIST test images:

- **time**: one subprocess per model alternates a plain pass (``model.reconstruct`` over all
  batches under ``torch.no_grad()``) and a recorded pass (the same inside
  ``infoprobe.record(model)`` with default options: every layer, forward and inverse, float32,
  512 MB budget), ``--repeats`` times each; reports the medians and their ratio. For the
  classical model a naive recorder (hooks that ``clone()`` into Python lists, concatenated at
  the end) is timed too, for reference.
- **peak RSS**: one fresh subprocess per configuration (plain; recorded with 512 MB; recorded
  with 256 MB), whose peak resident set size the parent reads from ``os.wait4`` (``ru_maxrss``
  of exactly that child). Recorded configurations also read every recorded layer once after
  the pass (as an analysis would), so the merge of chunks and memory-mapped reads count.

If a zoo model is missing (the zoo not merged yet), a stand-in with the same architecture,
defined below, is used and labelled ``"model_source": "stand-in ..."`` in the JSON.

Usage: ``python benchmarks/recording.py [--quick] [--samples N] [--repeats R] [--out PATH]``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(HERE))

from _common import write_json  # noqa: E402

DEFAULT_OUT = HERE / "results" / "recording.json"


def _data_root() -> Path:
    """``$INFOPROBE_TEST_DATA``, else the first ``shared/data`` with mnist.npz above the repo."""
    if "INFOPROBE_TEST_DATA" in os.environ:
        return Path(os.environ["INFOPROBE_TEST_DATA"])
    for folder in (ROOT / "shared" / "data", ROOT.parent / "shared" / "data",
                   ROOT.parent.parent / "shared" / "data"):
        if (folder / "mnist.npz").is_file():
            return folder
    return ROOT.parent / "shared" / "data"


# -- stand-ins (used only when the zoo models are missing) -------------------------------------------


def _stand_in(name: str) -> Any:
    """Same architectures as the reference (see shared REFERENCE.md); not the zoo's code."""
    import FrEIA.modules as Fm
    import torch
    from torch import nn

    class Chain(nn.ModuleDict):
        def forward(self, x: torch.Tensor, *, rev: bool = False) -> torch.Tensor:
            for module in reversed(list(self.values())) if rev else self.values():
                (x,), _ = module((x,), rev=rev, jac=False)
            return x

    class Keep(nn.Module):
        def forward(self, z: torch.Tensor) -> torch.Tensor:
            return z.flatten(1)[:, :20]

    class Pad(nn.Module):
        def forward(self, code: torch.Tensor) -> torch.Tensor:
            out = code.new_zeros(code.shape[0], 784)
            out[:, :20] = code
            return out.view(-1, 1, 28, 28)

    class INNAE(nn.Module):
        def __init__(self) -> None:
            super().__init__()

            def conv(c_in: int, c_out: int) -> nn.Module:
                return nn.Sequential(nn.Conv2d(c_in, 100, 3, padding=1), nn.LeakyReLU(0.1),
                                     nn.Conv2d(100, 100, 3, padding=1), nn.LeakyReLU(0.1),
                                     nn.Conv2d(100, c_out, 1))

            def fc(d_in: int, d_out: int) -> nn.Module:
                return nn.Sequential(nn.Linear(d_in, 180), nn.ReLU(), nn.Linear(180, d_out))

            dims = [(1, 28, 28)]
            blocks: dict[str, nn.Module] = {}
            for key, cls, kw in [("haar", Fm.HaarDownsampling, {}),
                                 *[(f"glow{i}", Fm.GLOWCouplingBlock,
                                    {"subnet_constructor": conv, "clamp": 1.0}) for i in (1, 2, 3)],
                                 ("flatten", Fm.Flatten, {}),
                                 ("fc", Fm.RNVPCouplingBlock, {"subnet_constructor": fc, "clamp": 1.0}),
                                 ("unflatten", Fm.Reshape, {"output_dims": (4, 14, 14)}),
                                 ("haar_up", Fm.HaarUpsampling, {})]:
                blocks[key] = cls(dims, **kw)
                dims = blocks[key].output_dims(dims)
            self.inn = Chain(blocks)
            self.bottleneck, self.pad = Keep(), Pad()

        def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
            return self.inn(self.pad(self.bottleneck(self.inn(x))), rev=True)

    class ClassicalAE(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            widths = [784, 512, 256, 128, 20]

            def stack(ws: list[int], last: nn.Module | None) -> nn.Sequential:
                layers: list[nn.Module] = []
                for i, (a, b) in enumerate(itertools.pairwise(ws)):
                    layers.append(nn.Linear(a, b))
                    if i < len(ws) - 2:
                        layers.append(nn.ReLU())
                if last is not None:
                    layers.append(last)
                return nn.Sequential(*layers)

            self.encoder = stack(widths, None)
            self.decoder = stack(widths[::-1], nn.Tanh())

        def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
            return self.decoder(self.encoder(x.flatten(1))).view_as(x)

    return INNAE() if name == "inn-ae" else ClassicalAE()


def _build(name: str) -> tuple[Any, str]:
    try:
        import models

        return models.build(name, dataset="mnist", bottleneck=20), f"models.build({name!r})"
    except Exception as error:  # the zoo is being written in parallel
        return _stand_in(name), f"stand-in (models.build({name!r}) failed: {type(error).__name__}: {error})"


# -- one configuration, in a child process -------------------------------------------------------------


def _images(samples: int) -> Any:
    from infoprobe.data import load_dataset

    return load_dataset("mnist", split="test", root=_data_root()).images[:samples].contiguous()


def _naive_pass(model: Any, batches: list[Any]) -> int:
    """Reference point: hooks that clone into lists, concatenated at the end."""
    import torch

    lists: dict[str, list[torch.Tensor]] = {}
    handles = []
    for name, module in model.named_modules():
        if not list(module.children()):
            def hook(m: Any, args: Any, out: Any, name: str = name) -> None:
                if isinstance(out, torch.Tensor):
                    lists.setdefault(name, []).append(out.detach().clone())
            handles.append(module.register_forward_hook(hook))
    try:
        with torch.no_grad():
            for b in batches:
                model.reconstruct(b)
    finally:
        for h in handles:
            h.remove()
    arrays = {k: torch.cat(v) for k, v in lists.items()}
    return len(arrays)


def run_child(cfg: dict[str, Any]) -> dict[str, Any]:
    import torch

    import infoprobe

    torch.manual_seed(0)
    torch.set_num_threads(cfg["threads"])
    model, source = _build(cfg["model"])
    model.eval()
    images = _images(cfg["samples"])
    batches = list(images.split(cfg["batch_size"]))

    def plain() -> None:
        with torch.no_grad():
            for b in batches:
                model.reconstruct(b)

    def recorded(budget: str | None) -> Any:
        with torch.no_grad(), infoprobe.record(model, memory_budget=budget) as rec:
            for b in batches:
                model.reconstruct(b)
        return rec

    def timed(fn: Any) -> float:
        start = time.perf_counter()
        fn()
        return time.perf_counter() - start

    result: dict[str, Any] = {"model_source": source, "n_samples": images.shape[0]}
    if cfg["mode"] == "time":
        with torch.no_grad(), infoprobe.record(model) as warm:  # warm-up, also of record()
            model.reconstruct(batches[0])
        warm.close()
        t_plain, t_rec, t_naive = [], [], []
        for _ in range(cfg["repeats"]):  # interleaved: both see the same machine load
            t_plain.append(timed(plain))
            start = time.perf_counter()
            rec = recorded(cfg["budget"])
            t_rec.append(time.perf_counter() - start)
            layers = len(rec.layers)
            stored = rec.store.memory_bytes + rec.store.disk_bytes
            spilled = rec.store.disk_bytes
            rec.close()
            if cfg["naive"]:
                t_naive.append(timed(lambda: _naive_pass(model, batches)))
        med_plain, med_rec = statistics.median(t_plain), statistics.median(t_rec)
        result.update({
            "plain_s": t_plain, "recorded_s": t_rec,
            "plain_median_s": med_plain, "recorded_median_s": med_rec,
            "ratio_recorded_over_plain": med_rec / med_plain,
            "ratio_of_paired_runs_median": statistics.median(r / p for r, p in zip(t_rec, t_plain, strict=True)),
            "recorded_layers": layers, "stored_bytes": stored, "spilled_bytes": spilled,
        })
        if t_naive:
            result.update({"naive_s": t_naive, "naive_median_s": statistics.median(t_naive),
                           "ratio_naive_over_plain": statistics.median(t_naive) / med_plain})
    elif cfg["mode"] == "plain":
        result["seconds"] = timed(plain)
    else:
        start = time.perf_counter()
        rec = recorded(cfg["budget"])
        result["seconds"] = time.perf_counter() - start
        total = 0.0
        for label in [infoprobe.recording.INPUT_LABEL, *rec.labels]:
            total += float(rec[label].double().sum()) if rec[label].numel() < 2**20 else float(rec[label].sum())
        result.update({
            "recorded_layers": len(rec.layers), "labels": rec.labels,
            "feature_sizes": [math.prod(i.feature_shape) for i in rec.layers],
            "memory_bytes": rec.store.memory_bytes, "spilled_bytes": rec.store.disk_bytes,
            "read_all_layers_checksum": total, "read_seconds": time.perf_counter() - start - result["seconds"],
        })
        rec.close()
    return result


def _spawn(cfg: dict[str, Any]) -> dict[str, Any]:
    """Run one configuration in a fresh interpreter; add its own peak RSS (from wait4)."""
    env = dict(os.environ, OMP_NUM_THREADS=str(cfg["threads"]), MKL_NUM_THREADS=str(cfg["threads"]))
    proc = subprocess.Popen([sys.executable, __file__, "--child", json.dumps(cfg)],
                            stdout=subprocess.PIPE, env=env, text=True)
    assert proc.stdout is not None
    out = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"child {cfg} failed with exit code {proc.returncode}")
    result = json.loads(out.strip().splitlines()[-1])
    result["peak_rss_mb"] = usage.ru_maxrss / 1024  # ru_maxrss is in KiB on Linux
    return {"config": cfg, **result}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="1,000 images, 3 repeats (smoke run)")
    parser.add_argument("--samples", type=int, default=None, help="MNIST test images (default 10,000)")
    parser.add_argument("--repeats", type=int, default=None, help="timed repeats (default 5; 3 with --quick)")
    parser.add_argument("--batch-size", type=int, default=500)
    parser.add_argument("--threads", type=int, default=1, help="torch threads in each child")
    parser.add_argument("--models", nargs="+", default=["classical-ae", "inn-ae"])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_child(json.loads(args.child))))
        return 0

    samples = args.samples or (1000 if args.quick else 10000)
    repeats = args.repeats or (3 if args.quick else 5)
    base = {"samples": samples, "batch_size": args.batch_size, "threads": args.threads}
    runs = []
    for name in args.models:
        configs = [
            {**base, "model": name, "mode": "time", "repeats": repeats, "budget": "512MB",
             "naive": name == "classical-ae"},
            {**base, "model": name, "mode": "plain"},
            {**base, "model": name, "mode": "recorded", "budget": "512MB"},
            {**base, "model": name, "mode": "recorded", "budget": "256MB"},
        ]
        for cfg in configs:
            print(f"running {cfg}", file=sys.stderr, flush=True)
            runs.append(_spawn(cfg))
            print(f"  -> {json.dumps({k: v for k, v in runs[-1].items() if k not in ('config', 'labels')})[:400]}",
                  file=sys.stderr, flush=True)

    import torch

    summary = {}
    for name in args.models:
        mine = [r for r in runs if r["config"]["model"] == name]
        by = {(r["config"]["mode"], r["config"].get("budget")): r for r in mine}
        summary[name] = {
            "model_source": mine[0]["model_source"],
            "time_ratio_recorded_over_plain": by[("time", "512MB")]["ratio_recorded_over_plain"],
            "plain_median_s": by[("time", "512MB")]["plain_median_s"],
            "recorded_median_s": by[("time", "512MB")]["recorded_median_s"],
            "recorded_layers": by[("recorded", "512MB")]["recorded_layers"],
            "peak_rss_mb_plain": by[("plain", None)]["peak_rss_mb"],
            "peak_rss_mb_recorded_512MB": by[("recorded", "512MB")]["peak_rss_mb"],
            "peak_rss_mb_recorded_256MB": by[("recorded", "256MB")]["peak_rss_mb"],
        }
    result = {
        "benchmark": "recording",
        "description": "plain reconstruction pass vs recorded pass (every layer, forward + inverse, float32) "
                       "over MNIST test images; medians of interleaved repeats; peak RSS per fresh subprocess",
        "goals": {"time_ratio_max": 1.3, "inn_peak_rss_mb_512MB_max": 1536, "inn_peak_rss_mb_256MB_max": 1024},
        "settings": {"samples": samples, "repeats": repeats, "batch_size": args.batch_size,
                     "threads_per_child": args.threads, "quick": args.quick},
        "machine": {"python": platform.python_version(), "torch": torch.__version__,
                    "cpu_count": os.cpu_count(), "platform": platform.platform(),
                    "load_average_at_end": os.getloadavg()},
        "summary": summary,
        "runs": runs,
    }
    path = write_json(args.out, result)
    print(json.dumps(summary, indent=2))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
