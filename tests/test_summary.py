"""The headline's wording follows the estimator registry, not the column's spelling."""

from __future__ import annotations

import pytest

from infoprobe.estimators.registry import available
from infoprobe.summary import _is_lower_bound


@pytest.mark.parametrize("name", sorted(available("mutual_information")))
def test_a_column_is_a_lower_bound_exactly_when_its_method_is_registered_as_one(name: str) -> None:
    (method,) = available("mutual_information")[name]
    assert _is_lower_bound(name) is method.lower_bound
    assert _is_lower_bound(f"{name}(seed=3)") is method.lower_bound  # options do not change the method


def test_probe_is_the_registered_lower_bound_and_unknown_columns_read_as_estimates() -> None:
    assert _is_lower_bound("probe")
    assert not _is_lower_bound("probes")  # a prefix is not the method
    assert not _is_lower_bound("not_registered_here")
