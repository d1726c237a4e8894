"""What a module call returned, as the recorder sees it: its tensors and its log-Jacobian.

A tensor is recorded as is (rows along dim 0). For invertible modules (and any call with a
``rev=`` keyword) an output ``(outputs, log_jac)`` — a pair whose second element is None, a
number or a tensor with at most one dimension — is reduced to ``outputs`` (a pair of two batch
tensors, such as a split's ``(kept, dropped)``, is kept). Tuples, lists, namedtuples and dicts
are searched for tensors; when a call yields several tensors each becomes its own layer
labelled ``name[part]`` where ``part`` is the index, field name or key path (``enc[0]``,
``enc[mu]``, ``split[1]:inverse``); concatenate them yourself if you want one vector. A
``torch.distributions.Distribution`` (a VAE posterior) is recorded through its ``mean`` and
``stddev`` (``enc[mean]``, ``enc[stddev]``; for a Normal these are ``loc`` and ``scale``);
distributions without them are recorded through the tensor parameters named in their
``arg_constraints``. 0-d tensors and non-tensors are ignored.

**Log-Jacobians.** The ``log_jac`` of such a pair is kept beside the outputs, one value per
sample: ``Recording.log_jacobian(label)`` is an ``(n,)`` float64 tensor of log|det J| in nats of
the map the call applied (an inverse call returns the inverse's: minus the forward value at the
corresponding point), and ``LayerInfo.has_log_jacobian`` says whether there is one. A number or
a one-element tensor (a constant log-det: Haar, permutations, reshapes) is broadcast to every
sample; a 1-D tensor of another length than the batch is not a log-Jacobian. Calls with
``jac=False`` record none (FrEIA blocks may return a placeholder then). A layer has a
log-Jacobian when its first call returned one; rows of later calls that return none are NaN.
Modules that change the dimension (a bottleneck, zero-padding) return none.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

__all__ = ["per_sample_log_jacobian", "split_log_jacobian", "tensor_parts"]


def _distribution_tensors(dist: torch.distributions.Distribution) -> list[tuple[str, Any]]:
    try:
        return [("mean", dist.mean), ("stddev", dist.stddev)]
    except NotImplementedError:
        return [(k, vars(dist)[k]) for k in dist.arg_constraints if isinstance(vars(dist).get(k), Tensor)]


def _collect(value: Any, path: str, out: list[tuple[str, Tensor]]) -> None:
    if isinstance(value, Tensor):
        if value.dim() > 0:
            out.append((path, value))
    elif isinstance(value, Mapping):
        for key, item in value.items():
            _collect(item, f"{path}.{key}" if path else str(key), out)
    elif isinstance(value, (tuple, list)):
        fields = getattr(value, "_fields", None) or range(len(value))
        for key, item in zip(fields, value, strict=False):
            _collect(item, f"{path}.{key}" if path else str(key), out)
    elif isinstance(value, torch.distributions.Distribution):
        for key, item in _distribution_tensors(value):
            _collect(item, f"{path}.{key}" if path else key, out)


def _is_log_jacobian(value: Any) -> bool:
    """None, a number, or a tensor with at most one value per sample."""
    return not isinstance(value, (tuple, list, Mapping)) and (
        not isinstance(value, Tensor) or value.dim() <= 1)


def split_log_jacobian(value: Any) -> tuple[Any, Any]:
    """``(outputs, log_jac)`` of an invertible module's output; log_jac None if there is none."""
    if isinstance(value, tuple) and len(value) == 2 and _is_log_jacobian(value[1]):
        return value[0], value[1]  # FrEIA: (outputs, log_jac)
    return value, None


def per_sample_log_jacobian(log_jac: Any, n: int) -> Tensor | None:
    """``log_jac`` as an ``(n,)`` float64 tensor (a constant is broadcast), or None."""
    if isinstance(log_jac, (int, float)) and not isinstance(log_jac, bool):
        return torch.full((n,), float(log_jac), dtype=torch.float64)
    if not isinstance(log_jac, Tensor) or not (log_jac.numel() == 1 or tuple(log_jac.shape) == (n,)):
        return None
    return log_jac.detach().to(torch.float64).reshape(-1).expand(n)


def tensor_parts(value: Any) -> list[tuple[str | None, Tensor]]:
    """The tensors of a module's output (or input), each with its part name (None if alone)."""
    parts: list[tuple[str, Tensor]] = []
    _collect(value, "", parts)
    if len(parts) == 1:
        return [(None, parts[0][1])]
    return list(parts)
