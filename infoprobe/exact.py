"""Exact change of differential entropy across invertible blocks, from their log-Jacobians.

For a bijection f of ℝ^d that is differentiable with a non-singular Jacobian, and a random
vector X with a density on ℝ^d, the change-of-variables formula gives, exactly,

    h(f(X)) = h(X) + E[log |det J_f(X)|]

(Cover & Thomas 2006, *Elements of Information Theory*, §8.6, for linear maps; the general
form follows from p_Y(f(x)) = p_X(x) / |det J_f(x)|, as used by normalising flows: Dinh, Sohl-
Dickstein & Bengio 2017, *Density estimation using Real NVP*). FrEIA blocks and PIE's
bijections return log |det J_f(x)| per sample, and the recorder keeps it
(`infoprobe.recording.Recording.log_jacobian`), so the entropy change across such a block needs
no density estimate at all: it is the sample mean of those values, with the plain
central-limit interval of a mean. For an INN this answers exactly where information is kept:
every block changes h by this finite amount, and only the bottleneck (which drops entries)
loses information.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from statistics import NormalDist
from typing import Any

import numpy as np
import torch

from infoprobe.errors import InfoprobeError
from infoprobe.estimators._base import log_base
from infoprobe.estimators.estimate import Estimate, Flag, judge

__all__ = ["CLT", "entropy_change"]

#: ``Estimate.interval`` of the exact change: a normal (central-limit) interval of a mean.
CLT = "clt"


def _per_sample(log_jacobians: Any) -> torch.Tensor:
    """The per-sample values as one float64 vector; a sequence of vectors is summed row-wise."""
    if isinstance(log_jacobians, (list, tuple)) and log_jacobians and all(
        isinstance(v, (torch.Tensor, np.ndarray)) for v in log_jacobians
    ):
        parts = [torch.as_tensor(v).detach().to("cpu", torch.float64) for v in log_jacobians]
        shapes = {tuple(p.shape) for p in parts}
        if len(shapes) != 1 or len(next(iter(shapes))) != 1:
            raise InfoprobeError(
                f"Expected log-Jacobians of consecutive blocks as 1-D tensors of one length n, got "
                f"shapes {sorted(shapes)}; pass rec.log_jacobian(label) of each block of one pass"
            )
        return torch.stack(parts).sum(0)
    try:
        values = torch.as_tensor(log_jacobians).detach().to("cpu", torch.float64)
    except (TypeError, ValueError, RuntimeError) as error:
        raise InfoprobeError(
            f"Expected per-sample log|det J| values (a 1-D tensor or array), got "
            f"{type(log_jacobians).__name__}: {error}"
        ) from None
    if values.dim() != 1:
        raise InfoprobeError(
            f"Expected one log|det J| per sample, a 1-D tensor of shape (n,), got shape "
            f"{tuple(values.shape)}; a block's values are rec.log_jacobian(label)"
        )
    return values


def entropy_change(
    log_jacobians: torch.Tensor | np.ndarray | Sequence[torch.Tensor | np.ndarray],
    *,
    ci: float | None = 0.95,
    d: int = 0,
    base: Any = "e",
) -> Estimate:
    """Exact change of differential entropy h(f(X)) − h(X) across invertible blocks.

    ``log_jacobians`` holds log |det J_f(x_i)| in nats for samples x_i of X, shape (n,)
    (``rec.log_jacobian(label)``); a list of such vectors, one per consecutive block of one
    pass, is summed per sample (the log-det of a composition is the sum). The estimate is their
    mean, ``method="exact"``, ``quantity="entropy_change"``: by the change-of-variables formula
    h(f(X)) = h(X) + E[log |det J_f(X)|] (Cover & Thomas 2006, §8.6; Dinh et al. 2017) the
    only error is that of a sample mean, so ``ci`` (default 0.95; None for none) is the
    central-limit interval mean ± z·s/√n, ``interval="clt"``. ``d`` is the block's dimension,
    recorded on the estimate; ``base`` "e" (nats) or 2 (bits).

    Assumption: X has a density on all of ℝ^d, i.e. the input of the block is
    full-dimensional. For inputs on a lower-dimensional set (constant pixels, a zero-padded
    code, the decoder side of a bottleneck) both h(X) and h(f(X)) are −∞ as d-dimensional
    entropies; the value is then still the mean log-volume change of the d-dimensional map,
    not the change of the entropy within that set. Dequantising inputs (uniform noise within
    a pixel level) gives them a full-dimensional density.

    Status: "ok" for a finite mean; values that are NaN (a call recorded without a
    log-Jacobian) make it "invalid", an infinite value (a singular Jacobian) "degenerate".
    """
    divisor, units = log_base(base)
    if ci is not None and (isinstance(ci, bool) or not isinstance(ci, (int, float)) or not 0 < ci < 1):
        raise InfoprobeError(f"Expected a confidence level 0 < ci < 1 or None, got {ci!r}; pass e.g. ci=0.95")
    values = _per_sample(log_jacobians)
    n = values.shape[0]
    if n == 0:
        raise InfoprobeError("Expected at least one log|det J| value, got none; record the model on some inputs")
    notes: list[str | Flag] = []
    missing = int(torch.isnan(values).sum())
    if missing:
        notes.append(Flag("invalid", f"{missing} of {n} samples have no log-Jacobian (calls with jac=False?)"))
    value = float(values.mean())
    interval = None
    if ci is not None and n >= 2 and math.isfinite(value):
        half = NormalDist().inv_cdf((1 + ci) / 2) * float(values.std()) / math.sqrt(n)
        interval = (value - half, value + half)
    status, reason, warnings = judge(value, quantity="entropy_change", notes=notes, ci=interval)
    estimate = Estimate(
        value, interval, "exact", n, int(d), "nats", quantity="entropy_change", status=status,
        reason=reason, interval=None if interval is None else CLT,
        level=ci if interval is not None else None, warnings=warnings,
    )
    return estimate.to_units(divisor, units)
