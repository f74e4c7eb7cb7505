"""monitor.drift tests each column's missing share (ADR 0059): in memory against a sample, a profile and a DP
profile; references without null counts are refused."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from mlgate.core.errors import GateInputError
from mlgate.core.results import Status
from mlgate.gates.data.dp_release import (
    CategoricalColumn,
    NumericColumn,
    Query,
    ReleaseSpec,
    _calibrate,
    _histogram,
    plan_release,
    release,
)
from mlgate.gates.monitor.drift import DriftPolicy, ReferenceProfile, adjust_pvalues, check_drift, profile_from_sample
from mlgate.gates.monitor.monitoring import reference_from_release

pytestmark = pytest.mark.unit

ALONE = DriftPolicy(demote_after=1, of_last=1)
COLOURS = np.array(["red", "green", "blue", "black"])


def table(rng, rows: int, null_share: float = 0.0, columns=("x", "colour")) -> pd.DataFrame:
    data = pd.DataFrame({"x": rng.standard_normal(rows), "y": rng.standard_normal(rows),
                         "colour": rng.choice(COLOURS, rows, p=(0.4, 0.3, 0.2, 0.1))}).astype({"colour": object})
    for column in columns:
        data.loc[rng.random(rows) < null_share, column] = None
    return data


def as_reference(sample: pd.DataFrame, kind: str):
    if kind == "sample":
        return sample
    return ReferenceProfile.from_dict(json.loads(json.dumps(profile_from_sample(sample).to_dict())))


@pytest.mark.parametrize("kind", ["sample", "profile"])
@pytest.mark.parametrize("column", ["x", "colour"])
@pytest.mark.parametrize("share", [0.5, 1.0], ids=["half", "all"])
def test_a_column_turning_null_blocks_at_once(kind, column, share):
    """Half of a column turning null was a pass (red team 6b); all of it was an error, which demotes nothing.
    Both are now severe drift of the column's missing share, whatever its remaining values look like."""
    rng = np.random.default_rng(1)
    reference = as_reference(table(rng, 20_000, 0.05), kind)
    current = table(rng, 2000, 0.05)
    current.loc[current.index[: int(len(current) * share)], column] = None
    result = check_drift(current, reference, ALONE, "p")
    assert result.status is Status.BLOCKED and result.metrics["drifted_columns"] == [column]
    missing = result.metrics["columns"][column]["missing"]
    assert missing["drifted"] and missing["severe"] and missing["share"] >= share
    assert [f.location for f in result.findings if f.id == "monitor.drift.data"] == [f"column {column}, missing values"]


@pytest.mark.parametrize("kind", ["sample", "profile"])
def test_a_column_no_longer_missing_is_drift_too(kind):
    """Missing values filled upstream (a default, an imputation) are a change of the pipeline: 30 % -> 0 %."""
    rng = np.random.default_rng(2)
    result = check_drift(table(rng, 3000, 0.0, ("colour",)), as_reference(table(rng, 20_000, 0.3, ("colour",)), kind),
                         ALONE, "p")
    assert result.metrics["drifted_columns"] == ["colour"]
    assert result.metrics["columns"]["colour"]["missing"]["reference_share"] == pytest.approx(0.3, abs=0.01)


def test_a_significant_but_small_change_of_the_missing_share_is_not_drift():
    """5 % -> 6.5 % on 200,000 rows: Fisher's p is tiny, the share moved under min_total_variation (2 points)."""
    rng = np.random.default_rng(3)
    result = check_drift(table(rng, 200_000, 0.065, ("x",)), table(rng, 200_000, 0.05, ("x",)), ALONE, "p")
    missing = result.metrics["columns"]["x"]["missing"]
    assert missing["significant"] and not missing["large"] and not missing["drifted"]
    assert result.status is Status.PASSED


def test_healthy_missing_values_join_the_family_and_columns_without_any_do_not():
    """Only a column with a missing value on one side adds a test to the Holm family (a test whose margins hold
    no missing value has p = 1 whatever the window holds): y's adjusted p-value is Holm's over 4 tests."""
    rng = np.random.default_rng(4)
    result = check_drift(table(rng, 3000, 0.05), table(rng, 20_000, 0.05), ALONE, "p")
    columns = result.metrics["columns"]
    assert result.status is Status.PASSED and result.metrics["drifted_columns"] == []
    assert columns["x"]["missing"]["in_family"] and columns["colour"]["missing"]["in_family"]
    assert not columns["y"]["missing"]["in_family"] and columns["y"]["missing"]["p_value_adjusted"] == 1.0
    family = [columns[c]["p_value"] for c in ("colour", "x", "y")] + [columns[c]["missing"]["p_value"]
                                                                      for c in ("colour", "x")]
    assert columns["y"]["p_value_adjusted"] == pytest.approx(adjust_pvalues(np.array(family), "holm")[2])


def test_too_few_values_with_an_unchanged_missing_share_is_still_refused():
    """95 % missing on both sides: the share did not move, and 25 values cannot be tested (fail closed)."""
    rng = np.random.default_rng(5)
    with pytest.raises(GateInputError, match=r"column x: \d+ values in the current window \(\d+ of 500 rows "
                                             r"missing\), fewer than min_rows=100"):
        check_drift(table(rng, 500, 0.95, ("x",)), table(rng, 20_000, 0.95, ("x",)), ALONE, "p")


def test_a_reference_without_null_counts_is_refused():
    rng = np.random.default_rng(6)
    old = profile_from_sample(table(rng, 5000)).to_dict()
    del old["nulls"]  # as written before ADR 0059
    with pytest.raises(GateInputError, match=r"no null count for column\(s\) \['colour', 'x', 'y'\]"):
        check_drift(table(rng, 1000), ReferenceProfile.from_dict(old), ALONE, "p")


@pytest.mark.parametrize("nulls", [{"x": -1}, {"x": float("nan")}, {"nope": 3}], ids=["negative", "nan", "unknown"])
def test_a_profile_with_bad_null_counts_is_refused(nulls):
    data = profile_from_sample(table(np.random.default_rng(7), 1000)).to_dict()
    with pytest.raises(GateInputError, match="null count"):
        ReferenceProfile.from_dict({**data, "nulls": nulls})


SPEC = ReleaseSpec(rows=Query(epsilon=1.0), columns={
    "x": NumericColumn(edges=tuple(np.linspace(-3, 3, 13)), histogram=Query(epsilon=1.0)),
    "colour": CategoricalColumn(categories=("red", "green", "blue"), histogram=Query(epsilon=1.0))})


def test_the_missing_cell_costs_no_budget():
    """One row changes one cell by one however many cells there are: the noise scale (and so ε) of a histogram
    with the missing cell is that of one without it, and the plan costs what the spec declares."""
    with_cell, without = (_calibrate("h", Query(epsilon=1.0), _histogram(cells)) for cells in (5, 4))
    assert with_cell.scale == without.scale and with_cell.epsilon == without.epsilon
    assert plan_release(SPEC).epsilon == pytest.approx(3.0, rel=0.01)


@pytest.mark.parametrize(("share", "drifted"), [(0.05, []), (0.5, ["colour", "x"])], ids=["healthy", "half-null"])
def test_a_dp_profile_carries_noisy_null_counts_the_gate_tests(share, drifted):
    rng = np.random.default_rng(8)
    training = table(rng, 20_000, 0.05)
    data = json.loads(json.dumps(release(training, plan_release(SPEC), "sha256:d").to_dict()))
    assert data["version"] == 3
    assert abs(data["columns"]["colour"]["missing"] - training["colour"].isna().sum()) < 40  # Laplace scale 1
    reference = reference_from_release(data)
    assert reference.nulls["x"] / (reference.nulls["x"] + reference.numeric["x"][1].sum()) == pytest.approx(
        training["x"].isna().mean(), abs=0.002)
    result = check_drift(table(rng, 3000, share), reference, ALONE, "p")
    assert result.metrics["drifted_columns"] == drifted
    assert result.metrics["columns"]["x"]["missing"]["in_family"]


def test_a_version_1_dp_profile_refuses_only_its_categorical_columns():
    """Version 1 counted a categorical column's missing values in ``other``: no null count to test against."""
    rng = np.random.default_rng(9)
    data = json.loads(json.dumps(release(table(rng, 20_000), plan_release(SPEC), "sha256:d").to_dict()))
    data["version"] = 1
    for column in data["columns"].values():
        if column["kind"] == "categorical":
            column["other"] += column.pop("missing")
    reference = reference_from_release(data)
    with pytest.raises(GateInputError, match=r"no null count for column\(s\) \['colour'\]"):
        check_drift(table(rng, 3000), reference, ALONE, "p")
    assert check_drift(table(rng, 3000), reference, ALONE.model_copy(update={"columns": ("x",)}), "p").status \
        is Status.PASSED
    data["version"] = 2
    with pytest.raises(GateInputError, match="no missing count"):
        reference_from_release(data)
