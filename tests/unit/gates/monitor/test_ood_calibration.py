"""A profile reference (marginals only, the DAGs' default DP profile) bounds its natural OOD share by the
calibration it carries: how its own rows score (ADR 0066). Data generated here: correlated Gaussians, and the
loans data released as data.privacy releases it."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest
from scipy.stats import chi2

from mlgate.core.errors import GateInputError
from mlgate.demo.dataset import generate_loans
from mlgate.gates.data.dp_release import DPProfile, ReleaseSpec, plan_release, release
from mlgate.gates.monitor.drift import ReferenceProfile, profile_from_sample
from mlgate.gates.monitor.extraction import (
    OOD_STATISTIC,
    ood_edges,
    profile_space,
    space_from_profile,
)
from mlgate.gates.monitor.monitoring import reference_from_release
from tests.monitoring_data import LOANS_RELEASE

pytestmark = pytest.mark.unit

COLUMNS = [f"x{i}" for i in range(20)]


def correlated(rows: int, seed: int, rho: float = 0.8) -> pd.DataFrame:
    """Equicorrelated Gaussians: the features move together, as measurements of one thing do."""
    rng = np.random.default_rng(seed)
    common = rng.normal(size=(rows, 1))
    return pd.DataFrame(np.sqrt(rho) * common + np.sqrt(1 - rho) * rng.normal(size=(rows, len(COLUMNS))),
                        columns=COLUMNS)


def test_correlated_features_keep_the_natural_share_near_nominal_where_the_chi2_quantile_did_not():
    profile = profile_from_sample(correlated(5000, 0))
    space = space_from_profile(profile, COLUMNS, 0.99)
    held_out = correlated(5000, 1).to_numpy()
    assert space.ood(held_out).mean() <= 0.02
    old = replace(space, threshold=float(chi2.ppf(0.99, len(COLUMNS))))  # the threshold before ADR 0066
    assert old.ood(held_out).mean() > 0.05
    far = np.random.default_rng(2).normal(6, 0.5, (500, len(COLUMNS)))  # beyond the reference's range
    assert space.ood(far).mean() > 0.9
    noise = np.random.default_rng(3).normal(0, 2, (500, len(COLUMNS)))  # a Knockoff pool: features independent
    assert space.ood(noise).mean() > 0.9 and old.ood(noise).mean() > 0.9


def test_the_sum_bound_holds_whatever_the_correlation():
    """Σ z² alone, at its Bonferroni bound, lets through at most half the natural share even when every feature
    is the same one (the worst case for a sum), where the χ²_d quantile let through a sixth of the rows."""
    rng = np.random.default_rng(4)
    one = rng.normal(size=(20000, 1))
    same = pd.DataFrame(np.repeat(one, len(COLUMNS), axis=1) + 1e-9 * rng.normal(size=(20000, len(COLUMNS))),
                        columns=COLUMNS)
    space = space_from_profile(profile_from_sample(same[:10000]), COLUMNS, 0.99)
    sums = space.statistics(same[10000:].to_numpy())[0]
    assert (sums > space.threshold).mean() <= 0.005
    assert (sums > chi2.ppf(0.99, len(COLUMNS))).mean() > 0.15


def test_a_profile_without_a_calibration_is_no_query_reference():
    profile = replace(profile_from_sample(correlated(1000, 0)), ood=None)
    with pytest.raises(GateInputError, match="carries no calibration .* `release.ood`"):
        space_from_profile(profile, COLUMNS, 0.99)


def test_fewer_columns_than_calibrated_keep_the_bound_more_are_refused():
    profile = profile_from_sample(correlated(3000, 0))
    subset = space_from_profile(profile, COLUMNS[:5], 0.99)
    assert subset.ood(correlated(3000, 1)[COLUMNS[:5]].to_numpy()).mean() <= 0.01
    narrow = replace(profile, ood=replace(profile.ood, columns=tuple(COLUMNS[:5]),
                                          counts=profile.ood.counts[:len(ood_edges(5)) + 1]))
    with pytest.raises(GateInputError, match=r"does not cover columns \['x10', 'x11'"):
        space_from_profile(narrow, COLUMNS[:12], 0.99)


def test_a_calibration_of_another_statistic_is_refused():
    profile = profile_from_sample(correlated(1000, 0))
    with pytest.raises(GateInputError, match="counts 'spe'"):
        space_from_profile(replace(profile, ood=replace(profile.ood, statistic="spe")), COLUMNS, 0.99)
    assert profile.ood.statistic == OOD_STATISTIC


def test_noise_moves_the_threshold_up_and_too_much_of_it_is_refused():
    exact = profile_from_sample(correlated(5000, 0)).ood
    noisy = replace(exact, noise_sd=3.0)
    assert noisy.threshold(0.99) >= exact.threshold(0.99)
    with pytest.raises(GateInputError, match="cannot bound a 0.01 share"):
        replace(profile_from_sample(correlated(200, 0)).ood, noise_sd=5.0).threshold(0.99)


@pytest.mark.parametrize("edit, match", [
    (lambda d: d.update(counts=d["counts"][:-1]), "one finite count per cell"),
    (lambda d: d.update(noise_sd=-1.0), "non-negative noise_sd"),
    (lambda d: d.update(counts=[float("nan")] * len(d["counts"])), "one finite count per cell"),
    (lambda d: d.pop("statistic"), "not a valid out-of-distribution calibration"),
    (lambda d: d.update(columns=["nowhere", *d["columns"][1:]]), r"counts columns \['nowhere'\] it does not"),
], ids=["a cell short", "negative noise", "NaN counts", "no statistic", "a column it does not profile"])
def test_a_malformed_calibration_is_refused(edit, match):
    data = profile_from_sample(correlated(500, 0)).to_dict()
    edit(data["ood"])
    with pytest.raises(GateInputError, match=match):
        ReferenceProfile.from_dict(json.loads(json.dumps(data)))


def test_a_profile_round_trips_with_its_calibration():
    profile = profile_from_sample(correlated(500, 0))
    assert ReferenceProfile.from_dict(json.loads(json.dumps(profile.to_dict()))).ood == profile.ood


def test_the_dp_release_counts_how_its_rows_score_against_what_it_released():
    frame = generate_loans(5000, 7)
    profile = release(frame, plan_release(LOANS_RELEASE), "sha256:test")
    numeric = LOANS_RELEASE.numeric_columns
    assert profile.ood["columns"] == numeric and abs(sum(profile.ood["counts"]) - 5000) < 200
    reference = reference_from_release(json.loads(json.dumps(profile.to_dict())))
    assert reference.ood.noise_sd == pytest.approx(profile.queries["ood.histogram"]["scale"] * np.sqrt(2))
    space = space_from_profile(reference, numeric, 0.99)
    cells = np.searchsorted(ood_edges(len(numeric)), profile_space(reference, numeric).statistics(
        frame[numeric].to_numpy(float))[1], side="right")
    exact = np.bincount(cells, minlength=len(ood_edges(len(numeric))) + 1)
    assert np.abs(np.asarray(profile.ood["counts"]) - exact).max() < 25  # Laplace noise at epsilon 1, no more
    assert space.ood(generate_loans(5000, 8)[numeric].to_numpy(float)).mean() <= 0.01


def test_a_release_without_ood_is_no_query_reference_and_says_what_to_release():
    spec = LOANS_RELEASE.model_copy(update={"ood": None})
    profile = release(generate_loans(2000, 7), plan_release(spec), "sha256:test")
    assert profile.ood is None
    with pytest.raises(GateInputError, match="`release.ood`"):
        space_from_profile(reference_from_release(profile.to_dict()), spec.numeric_columns, 0.99)


def test_a_forged_ood_entry_in_a_release_is_an_input_error():
    data = release(generate_loans(2000, 7), plan_release(LOANS_RELEASE), "sha256:test").to_dict()
    data["ood"] = {"columns": ["age"]}
    with pytest.raises(GateInputError):
        reference_from_release(data)


def test_an_ood_query_needs_a_numeric_column():
    with pytest.raises(ValueError, match="needs at least one numeric column"):
        ReleaseSpec.model_validate({"rows": {"epsilon": 1.0}, "ood": {"epsilon": 1.0}})


def test_version_2_profiles_still_load_without_a_calibration():
    data = release(generate_loans(2000, 7), plan_release(LOANS_RELEASE), "sha256:test").to_dict()
    data.pop("ood")
    data["version"] = 2
    assert DPProfile.from_dict(data).ood is None


def test_a_release_records_the_statistic_it_counted_and_another_is_refused():
    data = release(generate_loans(2000, 7), plan_release(LOANS_RELEASE), "sha256:test").to_dict()
    assert data["ood"]["statistic"] == OOD_STATISTIC
    data["ood"]["statistic"] = "sum_z2"  # a release counted under an earlier rule
    with pytest.raises(GateInputError, match="counts 'sum_z2'"):
        space_from_profile(reference_from_release(data), LOANS_RELEASE.numeric_columns, 0.99)
