"""OpenDP releases. OpenDP draws its noise from a CSPRNG and cannot be seeded, so the noisy outputs are
checked statistically: each noisy value must lie within OpenDP's own accuracy bound at α = 1e-9 (the
noise exceeds it with probability at most 1e-9 per value; the module checks well under 1,000 values, so
a false failure has probability below 1e-6 per run), and the spread of the noise is checked on 2,000
draws against a ±25 % window, about 10 standard errors wide."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from mlgate.core.errors import GateInputError
from mlgate.gates.data.dp_release import (
    CategoricalColumn,
    DPProfile,
    NumericColumn,
    Query,
    ReleaseSpec,
    plan_release,
    release,
    validate_frame,
)

pytestmark = pytest.mark.unit

ALPHA = 1e-9
DIGEST = "sha256:" + "ef" * 32


def accuracy(query: dict) -> float:
    """|noise| <= accuracy with probability 1 - ALPHA, for integer-valued (discrete) noise."""
    import opendp.accuracy as dp

    if query["mechanism"] == "laplace":
        return dp.discrete_laplacian_scale_to_accuracy(query["scale"], ALPHA)
    return dp.discrete_gaussian_scale_to_accuracy(query["scale"], ALPHA)


def continuous_accuracy(query: dict) -> float:
    import opendp.accuracy as dp

    return dp.laplacian_scale_to_accuracy(query["scale"], ALPHA)


SPEC = ReleaseSpec(
    rows=Query(epsilon=0.5),
    columns={
        "income": NumericColumn(edges=(0, 20_000, 40_000, 60_000, 80_000, 100_000), bounds=(0, 100_000),
                                histogram=Query(epsilon=1.0), mean=Query(epsilon=0.5)),
        "region": CategoricalColumn(categories=("north", "south", "east"),
                                    histogram=Query(epsilon=1.0, delta=1e-6, mechanism="gaussian")),
    },
)


@pytest.fixture(scope="module")
def plan():
    return plan_release(SPEC)


@pytest.fixture(scope="module")
def frame():
    rng = np.random.default_rng(7)
    n = 3000
    income = rng.gamma(4.0, 9000.0, n)
    income[:30] = np.nan
    income[30:40] = -1.0  # below the first edge
    return pd.DataFrame({"income": income,
                         "region": rng.choice(["north", "south", "east", "west", None], n, p=[.4, .3, .2, .05, .05])})


@pytest.mark.parametrize("column", [
    {"kind": "numeric", "edges": [0, 1, 1], "histogram": {"epsilon": 1}},
    {"kind": "numeric", "edges": [0, float("nan")], "histogram": {"epsilon": 1}},
    {"kind": "numeric", "edges": [0], "histogram": {"epsilon": 1}},
    {"kind": "numeric", "edges": [0, 1], "histogram": {"epsilon": 1}, "mean": {"epsilon": 1}},
    {"kind": "numeric", "edges": [0, 1], "bounds": [1, 0], "histogram": {"epsilon": 1}},
    {"kind": "numeric", "edges": [0, 1], "histogram": {"epsilon": 0}},
    {"kind": "numeric", "edges": [0, 1], "histogram": {"epsilon": 1, "mechanism": "gaussian"}},
    {"kind": "numeric", "edges": [0, 1], "histogram": {"epsilon": 1, "delta": 1e-6}},
    {"kind": "categorical", "categories": ["a", "a"], "histogram": {"epsilon": 1}},
    {"kind": "categorical", "categories": [], "histogram": {"epsilon": 1}},
    {"kind": "categorical", "categories": ["a"], "histogram": {"epsilon": 1}, "bins": 3},
    {"kind": "ordinal", "categories": ["a"], "histogram": {"epsilon": 1}},
], ids=["edges-not-increasing", "edges-nan", "one-edge", "mean-without-bounds", "bounds-reversed", "epsilon-zero",
        "gaussian-without-delta", "laplace-with-delta", "duplicate-categories", "no-categories", "unknown-key",
        "unknown-kind"])
def test_invalid_specs_are_refused(column):
    with pytest.raises(ValidationError):
        ReleaseSpec.model_validate({"rows": {"epsilon": 1}, "columns": {"c": column}})


def test_the_plan_costs_what_the_spec_declares(plan):
    declared = {"rows": (0.5, 0), "income.histogram": (1.0, 0), "income.mean": (0.5, 0),
                "region.histogram": (1.0, 1e-6)}
    assert set(plan.queries) == set(declared)
    for name, (epsilon, delta) in declared.items():
        query = plan.queries[name]
        assert epsilon * 0.99 <= query.epsilon <= epsilon * (1 + 1e-9), name
        assert query.delta == delta, name
    assert plan.queries["rows"].scale == pytest.approx(2.0)  # Laplace on a count: scale = 1/ε
    assert math.isclose(plan.epsilon, 3.0, rel_tol=1e-6) and plan.delta == 1e-6


def test_the_plan_digest_names_the_release(plan):
    assert plan_release(SPEC).digest == plan.digest
    louder = SPEC.model_copy(update={"rows": Query(epsilon=0.25)})
    assert plan_release(louder).digest != plan.digest


def test_noisy_outputs_lie_within_the_accuracy_bounds(plan, frame):
    income, region = frame["income"], frame["region"]
    cells = np.searchsorted([0, 20_000, 40_000, 60_000, 80_000, 100_000], income.dropna(), side="right")
    true_income = np.bincount(cells, minlength=7)
    true_region = [int((region == c).sum()) for c in ("north", "south", "east")]
    for _ in range(5):
        profile = release(frame, plan, DIGEST)
        q = profile.queries
        assert abs(profile.rows - len(frame)) <= accuracy(q["rows"])
        num, cat = profile.columns["income"], profile.columns["region"]
        hist = accuracy(q["income.histogram"])
        noisy = [num.below, *num.counts, num.above]
        assert all(abs(a - b) <= hist for a, b in zip(noisy, true_income, strict=True))
        assert abs(num.missing - 30) <= hist
        assert min(noisy + [num.missing]) >= 0  # post-processed
        gauss = accuracy(q["region.histogram"])
        assert all(abs(a - b) <= gauss for a, b in zip(cat.counts, true_region, strict=True))
        assert abs(cat.other - int((region == "west").sum())) <= gauss
        assert abs(cat.missing - int(region.isna().sum())) <= gauss
        # mean = noisy clipped sum / noisy non-missing count: bound the ratio by the worst case of both noises
        present, true_sum = income.notna().sum(), income.clip(0, 100_000).sum()
        a_sum, a_count = continuous_accuracy(q["income.mean"]), 7 * hist
        bound = (a_sum + 100_000 * a_count) / (present - a_count)
        assert abs(num.mean - true_sum / present) <= bound


def test_the_noise_is_real_and_has_the_calibrated_spread():
    """Mean |noise| of discrete Laplace with scale t is 2p/(1-p²), p = e^(-1/t); its standard error over
    N draws is at most t/√N (2.2 % of the mean here), so the ±25 % window is about 10 standard errors."""
    plan = plan_release(ReleaseSpec(rows=Query(epsilon=0.5)))
    frame = pd.DataFrame({"x": range(100)})
    draws = np.array([release(frame, plan, DIGEST).rows - 100 for _ in range(2000)])
    p = math.exp(-1 / plan.queries["rows"].scale)
    expected = 2 * p / (1 - p * p)
    assert len(set(draws)) > 5
    assert 0.75 * expected <= np.abs(draws).mean() <= 1.25 * expected
    assert abs(draws.mean()) <= 0.25 * expected  # unbiased (clipping at 0 is far away from 100)


def test_binning_and_categories_with_negligible_noise():
    """ε = 60 per histogram: discrete Laplace noise is non-zero with probability about 2e^-60 per cell."""
    spec = ReleaseSpec(rows=Query(epsilon=60), columns={
        "x": NumericColumn(edges=(0, 10, 20), histogram=Query(epsilon=60)),
        "c": CategoricalColumn(categories=("a", "b", "1"), histogram=Query(epsilon=60)),
    })
    frame = pd.DataFrame({
        "x": [-5, 0, 9.99, 10, 20, 25, np.nan, np.inf, -np.inf],
        "c": ["a", "b", "a", None, "zzz", 1, "b", "A", np.nan],
    })
    profile = release(frame, plan_release(spec), DIGEST)
    x, c = profile.columns["x"], profile.columns["c"]
    assert (x.below, x.counts, x.above, x.missing) == (2, [2, 1], 3, 1)  # bins are [e_i, e_i+1)
    assert (c.counts, c.other, c.missing) == ([2, 2, 1], 2, 2)  # 1 matches "1"; "zzz", "A" other; None, NaN
    assert profile.rows == 9


def test_the_profile_is_json_ready_and_holds_no_raw_value(plan, frame):
    secret = "ACCT-4411-SECRET"
    frame = frame.assign(region=frame["region"].where(frame.index != 5, secret))
    profile = release(frame, plan, DIGEST)
    text = json.dumps(profile.to_dict())
    assert secret not in text
    assert DPProfile.from_dict(json.loads(text)) == profile
    assert profile.plan_digest == plan.digest and profile.dataset_digest == DIGEST
    assert profile.digest.startswith("sha256:") and profile.tool.startswith("opendp ")
    assert list(profile.columns["income"].edges) == [0, 20_000, 40_000, 60_000, 80_000, 100_000]


@pytest.mark.parametrize("data", [{"version": 99}, {"version": 1, "columns": {}}],
                         ids=["future-version", "incomplete"])
def test_a_malformed_profile_is_an_input_error(data):
    with pytest.raises(GateInputError):
        DPProfile.from_dict(data)


@pytest.mark.parametrize(("frame", "message"), [
    (pd.DataFrame({"income": [1.0]}), "missing"),
    (pd.DataFrame({"income": ["12"], "region": ["north"]}), "declared numeric"),
], ids=["missing-column", "text-in-numeric"])
def test_frames_that_do_not_match_the_spec_are_refused(frame, message):
    with pytest.raises(GateInputError, match=message):
        validate_frame(frame, SPEC)
