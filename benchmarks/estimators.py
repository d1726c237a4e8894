"""Benchmark of infoprobe's estimators against reference implementations (JSON out).

Cases (issue 4): kNN entropy (k=3, N(0, I), n=10,000, d=10 and 64); KSG MI (d=5+5, ρ=0.8 per
coordinate, n=5,000); kNN KL (N(0, I₁₀) vs N(0.5, 1.44·I₁₀), n=m=5,000); matrix-based Rényi
entropy (n=2,000, d=784). For each: value, truth, relative error, median wall time, for
infoprobe and for references run in the same process. The references are written here from
the papers with scipy's cKDTree (Kozachenko–Leonenko entropy as in Kraskov et al. 2004 eq. 20;
KSG estimator 1 with the max-norm, Kraskov et al. 2004 eq. 8; Wang–Kulkarni–Verdú 2009 eq. 5),
plus scikit-learn's ``mutual_info_regression`` for the one-dimensional MI it supports
(applied per coordinate pair, summed, which is exact here because the pairs are independent).

    python benchmarks/estimators.py [--quick] [--out benchmarks/results/estimators.json]

Each case also records, for every reference, the absolute difference of its value from
infoprobe's and the speed-up (reference time / infoprobe time). A last entry measures the
extra peak memory (RSS) of a kNN entropy on 10,000 × 784 float32 inputs, in a fresh process.
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.spatial import cKDTree
from scipy.special import digamma, gammaln

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import infoprobe


def ref_kl_entropy(x: np.ndarray, k: int) -> float:
    """Kozachenko–Leonenko, Euclidean: ψ(n) − ψ(k) + log V_d + (d/n) Σ log ε_i."""
    n, d = x.shape
    eps = cKDTree(x).query(x, k=k + 1)[0][:, k]
    log_vd = 0.5 * d * math.log(math.pi) - gammaln(0.5 * d + 1)
    return float(digamma(n) - digamma(k) + log_vd + d * np.mean(np.log(eps)))


def ref_ksg(x: np.ndarray, y: np.ndarray, k: int) -> float:
    """KSG estimator 1, max-norm: ψ(k) + ψ(N) − ⟨ψ(n_x + 1) + ψ(n_y + 1)⟩, strict counts."""
    n = x.shape[0]
    joint = np.hstack([x, y])
    eps = cKDTree(joint).query(joint, k=k + 1, p=np.inf)[0][:, k]
    radius = np.nextafter(eps, 0)
    nx = cKDTree(x).query_ball_point(x, radius, p=np.inf, return_length=True) - 1
    ny = cKDTree(y).query_ball_point(y, radius, p=np.inf, return_length=True) - 1
    return float(digamma(k) + digamma(n) - np.mean(digamma(nx + 1) + digamma(ny + 1)))


def ref_wkv_kl(p: np.ndarray, q: np.ndarray, k: int) -> float:
    """Wang–Kulkarni–Verdú: (d/n) Σ log(ν_k/ρ_k) + log(m/(n − 1))."""
    n, d = p.shape
    m = q.shape[0]
    rho = cKDTree(p).query(p, k=k + 1)[0][:, k]
    nu = cKDTree(q).query(p, k=k)[0]
    nu = nu[:, k - 1] if nu.ndim == 2 else nu
    return float(d * np.mean(np.log(nu / rho)) + math.log(m / (n - 1)))


def ref_sklearn_mi(x: np.ndarray, y: np.ndarray, k: int) -> float:
    """Sum over coordinate pairs of scikit-learn's 1-D KSG estimate (pairs are independent)."""
    from sklearn.feature_selection import mutual_info_regression

    return float(sum(mutual_info_regression(x[:, [j]], y[:, j], n_neighbors=k, random_state=0)[0] for j in range(x.shape[1])))


def ref_renyi_numpy(x: np.ndarray, alpha: float, gamma: float) -> float:
    """Giraldo et al. matrix Rényi entropy with a plain dense numpy eigendecomposition."""
    n, d = x.shape
    z = (x - x.mean(0)) / np.where(x.std(0, ddof=1) > 0, x.std(0, ddof=1), 1.0)
    sigma = gamma * n ** (-1.0 / (4 + d))
    sq = (z * z).sum(1)
    d2 = np.maximum(sq[:, None] + sq[None, :] - 2 * z @ z.T, 0)
    np.fill_diagonal(d2, 0)
    a = np.exp(-d2 / (2 * sigma**2)) / n
    lam = np.clip(np.linalg.eigvalsh(a), 0, None)
    return float(np.log(np.sum(lam[lam > 0] ** alpha)) / (1 - alpha))


def timed(fn: Callable[[], float], repeats: int) -> tuple[float, float]:
    """(value, median wall time in s) over ``repeats`` runs."""
    times, value = [], math.nan
    for _ in range(repeats):
        start = time.perf_counter()
        value = float(fn())
        times.append(time.perf_counter() - start)
    return value, statistics.median(times)


def row(name: str, value: float, truth: float | None, seconds: float) -> dict[str, Any]:
    rel = None if truth is None or truth == 0 else abs(value - truth) / abs(truth)
    return {"implementation": name, "value": value, "truth": truth, "rel_error": rel, "median_seconds": seconds}


def compare(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Difference and speed-up of every other row relative to the first (infoprobe) row."""
    ours = results[0]
    for other in results[1:]:
        other["abs_diff_vs_infoprobe"] = abs(other["value"] - ours["value"])
        other["speedup_of_infoprobe"] = other["median_seconds"] / ours["median_seconds"]
    return results


def memory_probe() -> dict[str, Any]:
    """Peak RSS growth (MiB) of knn entropy on 10,000 × 784 float32 data (run in a fresh process)."""
    x = torch.randn(10_000, 784, generator=torch.Generator().manual_seed(0))
    before = _rss_kib("VmRSS")
    reset = Path("/proc/self/clear_refs")
    if reset.exists():
        reset.write_text("5")  # Linux: reset the peak-RSS counter VmHWM to the current RSS
    start = time.perf_counter()
    value = infoprobe.entropy(x, k=3).value
    seconds = time.perf_counter() - start
    after = _rss_kib("VmHWM")
    return {
        "case": "knn entropy memory, N(0,I) float32 n=10000 d=784",
        "input_mib": x.numel() * 4 / 2**20,
        "extra_peak_rss_mib": (after - before) / 1024,
        "value": value,
        "seconds": seconds,
    }


def _rss_kib(field: str) -> int:
    """A /proc/self/status memory field in KiB; ru_maxrss (peak) where /proc is missing."""
    status = Path("/proc/self/status")
    if status.exists():
        for line in status.read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def run(quick: bool) -> dict[str, Any]:
    repeats = 1 if quick else 5
    rng = np.random.default_rng(0)
    cases: list[dict[str, Any]] = []
    k = 3

    for d in (10, 64):
        x = rng.standard_normal((10_000, d))
        truth = 0.5 * d * math.log(2 * math.pi * math.e)
        results = [
            row("infoprobe knn", *_value_time(lambda x=x: infoprobe.entropy(x, k=k).value, repeats, truth)),
            row("cKDTree Kozachenko-Leonenko",
                *_value_time(lambda x=x: ref_kl_entropy(x, k), 1 if (quick or d > 10) else repeats, truth)),
        ]
        cases.append({"case": f"knn entropy k=3 N(0,I) n=10000 d={d}", "results": compare(results)})

    rho, n = 0.8, 5000
    x = rng.standard_normal((n, 5))
    y = rho * x + math.sqrt(1 - rho**2) * rng.standard_normal((n, 5))
    truth = -5 * 0.5 * math.log(1 - rho**2)
    results = []
    for name, fn in [
        ("infoprobe ksg", lambda: infoprobe.mutual_information(x, y, k=k).value),
        ("cKDTree KSG-1 (max-norm)", lambda: ref_ksg(x, y, k)),
        ("sklearn mutual_info_regression (sum of 5 1-D pairs)", lambda: ref_sklearn_mi(x, y, k)),
    ]:
        results.append(row(name, *_value_time(fn, repeats, truth)))
    cases.append({"case": "KSG MI d=5+5 rho=0.8 n=5000", "results": compare(results)})

    p = rng.standard_normal((5000, 10))
    q = 0.5 + 1.2 * rng.standard_normal((5000, 10))
    truth = 0.5 * (10 / 1.44 + 10 * 0.25 / 1.44 - 10 + 10 * math.log(1.44))
    results = []
    for name, fn in [
        ("infoprobe knn (WKV)", lambda: infoprobe.kl_divergence(p, q, k=k).value),
        ("cKDTree Wang-Kulkarni-Verdu", lambda: ref_wkv_kl(p, q, k)),
    ]:
        results.append(row(name, *_value_time(fn, repeats, truth)))
    cases.append({"case": "kNN KL N(0,I10) || N(0.5,1.44 I10) n=m=5000", "results": compare(results)})

    x = rng.standard_normal((2000, 784))
    for gamma in (1.0, 20.0):
        results = [
            row(f"infoprobe renyi gamma={gamma}",
                *_value_time(lambda g=gamma: infoprobe.entropy(x, method="renyi", gamma=g).value, repeats, None)),
            row(f"numpy dense eigvalsh gamma={gamma}", *_value_time(lambda g=gamma: ref_renyi_numpy(x, 1.01, g), 1, None)),
        ]
        cases.append({"case": f"matrix Renyi entropy alpha=1.01 gamma={gamma} N(0,I784) n=2000 "
                              f"(no closed form; ceiling log n = {math.log(2000):.4f})", "results": compare(results)})
    probe = subprocess.run([sys.executable, __file__, "--memory-probe"], capture_output=True, text=True, check=True)
    return {
        "quick": quick,
        "repeats": repeats,
        "torch_threads": torch.get_num_threads(),
        "machine": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cases": cases,
        "memory": json.loads(probe.stdout),
    }


def _value_time(fn: Callable[[], float], repeats: int, truth: float | None) -> tuple[float, float | None, float]:
    value, seconds = timed(fn, repeats)
    return value, truth, seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="one repetition per case")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results" / "estimators.json")
    parser.add_argument("--memory-probe", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.memory_probe:
        print(json.dumps(memory_probe()))
        return 0
    result = run(args.quick)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2))
    for case in result["cases"]:
        print(case["case"])
        for r in case["results"]:
            rel = "" if r["rel_error"] is None else f"  rel.err {r['rel_error']:.4f}"
            extra = ""
            if "speedup_of_infoprobe" in r:
                extra = f"  |diff| {r['abs_diff_vs_infoprobe']:.2e}  infoprobe speed-up x{r['speedup_of_infoprobe']:.2f}"
            print(f"  {r['implementation']:<55} {r['value']:.6f}{rel}  {r['median_seconds']:.3f} s{extra}")
    memory = result["memory"]
    print(f"{memory['case']}: +{memory['extra_peak_rss_mib']:.0f} MiB peak RSS over a {memory['input_mib']:.0f} MiB input, "
          f"{memory['seconds']:.2f} s")
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
