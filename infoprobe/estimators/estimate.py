"""`Estimate`: the one result type, from the estimator to the page.

An estimate says whether its number can be read. ``status`` is one of

- ``"ok"``: a plain number;
- ``"biased"``: n is too small for the dimension to trust the value;
- ``"degenerate"``: the true value is ±∞ (constant or rank-deficient data);
- ``"at_ceiling"``: within 5 % of the largest value the estimator can return on these data,
  so it describes the estimator, not the data;
- ``"invalid"``: impossible (a KL or MI below zero) or not computable.

The estimator that knows a failure mode raises a `Flag`; `judge` turns flags, the ceiling and
the sign into one status and a one-line ``reason``. Nothing downstream parses text.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from infoprobe.errors import InfoprobeError

__all__ = [
    "AT_CEILING",
    "NONNEGATIVE",
    "STATUSES",
    "STATUS_MARKS",
    "Estimate",
    "EstimationError",
    "Flag",
    "Note",
    "Notes",
    "Rank",
    "StandardError",
    "judge",
]

STATUSES = ("ok", "biased", "degenerate", "at_ceiling", "invalid")
# the headline status when several apply: the most severe first
_SEVERITY = ("invalid", "degenerate", "at_ceiling", "biased", "ok")
#: one-letter marks used wherever a non-ok value is shown in a table (legend in the report/CLI)
STATUS_MARKS = {"ok": "", "biased": "B", "degenerate": "D", "at_ceiling": "C", "invalid": "X"}
#: an estimate at >= this fraction of its ceiling is "at_ceiling"
AT_CEILING = 0.95
#: quantities that cannot be negative
NONNEGATIVE = ("kl_divergence", "mutual_information")


class EstimationError(InfoprobeError):
    """One estimate cannot be computed on these data (singular covariance, too few samples).

    The analysis records it on that estimate (status "invalid") and goes on; user errors
    (unknown methods, invalid options) are plain `InfoprobeError` and are never swallowed.
    """


@dataclass(frozen=True)
class Flag:
    """A reason, known to the estimator, why its value cannot be read as a plain number."""

    status: str
    reason: str

    def __post_init__(self) -> None:
        if self.status not in STATUSES[1:]:
            raise ValueError(f"Flag status must be one of {STATUSES[1:]}, got {self.status!r}")


@dataclass(frozen=True)
class Rank:
    """A note from an estimator: the numerical rank it measured on the data."""

    value: int


@dataclass(frozen=True)
class StandardError:
    """A note from an estimator whose value is a mean of independent terms: its standard error,
    from which a method with ``resampling="clt"`` takes a normal interval instead of refitting."""

    value: float


#: what an estimator function returns beside its value: plain remarks, flags, the rank it measured
#: and its own standard error
Note = str | Flag | Rank | StandardError
Notes = list[Note]


@dataclass(frozen=True)
class Estimate:
    """One estimated information quantity.

    ``value`` is in ``units`` ("nats" or "bits"): NaN when it could not be computed, −∞ when
    the true value is −∞ (a rank-deficient layer's differential entropy). ``ci`` is a
    (low, high) interval from ``interval`` ("bootstrap" or "subsampling") at ``level`` (e.g.
    0.95), or None. ``n`` samples, ``d`` features (summed over both arguments for MI);
    ``rank`` the numerical rank of the data where it was measured. ``status``/``reason`` say
    whether the number can be read (see the module docstring); ``ceiling`` is the largest value
    the estimator can return on these data, when it has one. ``warnings`` are further notes.
    ``float(est)`` gives ``value``.
    """

    value: float
    ci: tuple[float, float] | None
    method: str
    n: int
    d: int
    units: str = "nats"
    quantity: str = "entropy"
    status: str = "ok"
    reason: str = ""
    ceiling: float | None = None
    interval: str | None = None
    level: float | None = None
    rank: int | None = None
    warnings: tuple[str, ...] = field(default=())

    def __post_init__(self) -> None:
        if self.status not in STATUSES:
            raise ValueError(f"status must be one of {STATUSES}, got {self.status!r}")

    @property
    def ok(self) -> bool:
        """True when the value is a plain, readable number."""
        return self.status == "ok"

    def __float__(self) -> float:
        return float(self.value)

    def __format__(self, spec: str) -> str:
        return format(self.value, spec)

    def text(self, spec: str = ".4g", *, interval: bool = False) -> str:
        """The value as it may be shown: plain when ok, else marked (see `STATUS_MARKS`).

        An impossible value is never shown: a negative KL/MI reads "≈0" when its interval
        reaches 0 and "—" otherwise; a value that could not be computed reads "—".
        """
        mark = STATUS_MARKS[self.status]
        value = self.value
        if math.isnan(value):
            body = "—"
        elif math.isinf(value):
            body = "−∞" if value < 0 else "∞"
        elif self.quantity in NONNEGATIVE and value < 0:
            body = "≈0" if self.ci is not None and self.ci[1] >= 0 else "—"
        else:
            body = format(value, spec)
            if interval and self.ci is not None and all(map(math.isfinite, self.ci)):
                body += f" [{format(self.ci[0], spec)}, {format(self.ci[1], spec)}]"
        return f"{body} [{mark}]" if mark else body

    def __str__(self) -> str:
        text = f"{self.value:.6g} {self.units} ({self.method}, n={self.n}, d={self.d})"
        if self.ci is not None:
            text += f" {self.level:.0%} {self.interval} CI [{self.ci[0]:.6g}, {self.ci[1]:.6g}]"
        if not self.ok:
            text += f" — {self.status}: {self.reason}"
        for message in self.warnings:
            text += f"\n  note: {message}"
        return text

    def to_units(self, divisor: float, units: str) -> Estimate:
        """This estimate with value, interval and ceiling divided by ``divisor``."""
        if divisor == 1.0:
            return replace(self, units=units)
        ci = None if self.ci is None else (self.ci[0] / divisor, self.ci[1] / divisor)
        ceiling = None if self.ceiling is None else self.ceiling / divisor
        return replace(self, value=self.value / divisor, ci=ci, ceiling=ceiling, units=units)

    @classmethod
    def failed(cls, method: str, error: BaseException, *, quantity: str, n: int = 0, d: int = 0,
               units: str = "nats") -> Estimate:
        """An estimate that could not be computed: NaN, status "invalid", the error as reason."""
        first = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        return cls(math.nan, None, method, n, d, units, quantity=quantity, status="invalid",
                   reason=f"not computed: {first}")

    # ---- plain data (JSON): non-finite numbers are written as the strings "inf", "-inf", "nan"
    def to_dict(self) -> dict[str, Any]:
        return {
            "value": _number(self.value), "ci": None if self.ci is None else [_number(c) for c in self.ci],
            "method": self.method, "quantity": self.quantity, "n": self.n, "d": self.d,
            "units": self.units, "status": self.status, "reason": self.reason,
            "ceiling": None if self.ceiling is None else _number(self.ceiling),
            "interval": self.interval, "level": self.level, "rank": self.rank,
            "warnings": list(self.warnings),
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> Estimate:
        ci = d.get("ci")
        ceiling = d.get("ceiling")
        return cls(
            value=_float(d["value"]), ci=None if ci is None else (_float(ci[0]), _float(ci[1])),
            method=d["method"], n=int(d.get("n", 0)), d=int(d.get("d", 0)),
            units=d.get("units", "nats"), quantity=d.get("quantity", "entropy"),
            status=d.get("status", "ok"), reason=d.get("reason", ""),
            ceiling=None if ceiling is None else _float(ceiling), interval=d.get("interval"),
            level=d.get("level"), rank=d.get("rank"), warnings=tuple(d.get("warnings", ())),
        )


def _number(x: float) -> float | str:
    x = float(x)
    if math.isfinite(x):
        return x
    return "nan" if math.isnan(x) else ("inf" if x > 0 else "-inf")


def _float(x: Any) -> float:
    return math.nan if x is None else float(x)


def judge(
    value: float,
    *,
    quantity: str,
    notes: Iterable[Note] = (),
    ci: tuple[float, float] | None = None,
    ceiling: float | None = None,
) -> tuple[str, str, tuple[str, ...]]:
    """(status, reason, warnings) for ``value`` given the estimator's notes: the one rule.

    Flags raised by the estimator, a non-finite value, a negative value of a non-negative
    quantity and a value at >= `AT_CEILING` of ``ceiling`` each give a status; the most severe
    one is the headline with its reason, the others are kept as warnings.
    """
    flags: list[Flag] = []
    warnings: list[str] = []
    for note in notes:
        if isinstance(note, Flag):
            flags.append(note)
        elif isinstance(note, str):
            warnings.append(note)
    if math.isnan(value):
        flags.append(Flag("invalid", "the estimator returned NaN"))
    elif math.isinf(value) and not any(f.status == "degenerate" for f in flags):
        flags.append(Flag("degenerate", f"the estimate is {value}: the true value is unbounded"))
    if quantity in NONNEGATIVE and value < 0:
        if ci is not None and ci[1] >= 0:
            flags.append(Flag("biased", f"negative estimate ({value:.3g}) of a non-negative quantity, "
                                        "consistent with 0 within its interval: read it as ≈ 0"))
        else:
            flags.append(Flag("invalid", f"negative estimate ({value:.3g}) of a non-negative quantity: "
                                         "the estimator is biased at this sample size and dimension"))
    if ceiling is not None and math.isfinite(value) and ceiling > 0 and value >= AT_CEILING * ceiling:
        flags.append(Flag("at_ceiling", f"{value:.3g} is at its ceiling {ceiling:.3g} on these data: "
                                        "it describes the estimator, not the data"))
    if not flags:
        return "ok", "", tuple(dict.fromkeys(warnings))
    flags.sort(key=lambda f: _SEVERITY.index(f.status))
    head, rest = flags[0], flags[1:]
    warnings = [f"{f.status}: {f.reason}" for f in rest] + warnings
    return head.status, head.reason, tuple(dict.fromkeys(warnings))
