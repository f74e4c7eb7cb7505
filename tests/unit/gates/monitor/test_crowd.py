"""The crowd test of ``monitor.queries`` (keys with one or two queries each, ADR 0062) and normal scores beyond
the reference's range."""

import numpy as np
import pandas as pd
import pytest
from pydantic import ValidationError

from mlgate.core.results import Status, Subject
from mlgate.gates.monitor.drift import profile_from_sample
from mlgate.gates.monitor.extraction import (
    ExtractionState,
    crowd_null_tail,
    extraction_evidence,
    space_from_profile,
    space_from_sample,
)
from mlgate.gates.monitor.queries import QueriesPolicy, check_queries

pytestmark = pytest.mark.unit

POLICY = QueriesPolicy()
SHARE = 1 - POLICY.ood_quantile
TESTED = POLICY.ood_margin * SHARE


def evidence(clients, min_share=POLICY.crowd_min_share):
    state = ExtractionState(["w0"], {c: {"queries": q, "ood": o, "first": "w0"} for c, (q, o) in clients.items()})
    return extraction_evidence(state, SHARE, POLICY.ood_alpha, POLICY.sybil_min_ood, POLICY.ood_margin, min_share)


def flagged(out):
    return {c for c, e in out.items() if e["flagged_alone"] or e.get("flagged_in_group") or e.get("flagged_in_crowd")}


@pytest.mark.parametrize("min_share", [0.5, 1.0])
def test_the_crowd_null_tail_matches_a_monte_carlo_of_the_same_model(min_share):
    rng = np.random.default_rng(1)
    queries = np.concatenate([np.ones(40, int), np.full(10, 2), np.full(10, 3), rng.integers(4, 200, 50)])
    draws = rng.binomial(queries, TESTED, (200_000, len(queries)))
    least = np.maximum(1, np.ceil(min_share * queries - 1e-9))
    total = (draws * (draws >= least)).sum(axis=1)
    for observed in range(1, 7):
        simulated = (total >= observed).mean()
        exact = crowd_null_tail(queries, observed, TESTED, min_share, 0.0)
        assert exact == pytest.approx(simulated, abs=4 * np.sqrt(simulated * (1 - simulated) / len(total)) + 1e-5)


def test_leaving_negligible_keys_out_keeps_the_tail_an_upper_bound():
    queries = np.array([1] * 5 + [2] * 3 + [30] * 200)
    exact = crowd_null_tail(queries, 4, TESTED, 0.5, 0.0)
    bounded = crowd_null_tail(queries, 4, TESTED, 0.5, 1e-6)
    assert exact <= bounded <= exact + 200 * 1e-6
    assert crowd_null_tail(queries, 0, TESTED, 0.5, 0.0) == 1.0


def test_a_crowd_of_one_query_keys_all_ood_is_flagged_beside_natural_clients():
    clients = {f"user-{i}": (100, 1) for i in range(24)} | {f"key-{k}": (1, 1) for k in range(5)}
    out = evidence(clients)
    assert flagged(out) == {f"key-{k}" for k in range(5)}
    key = out["key-0"]
    assert not key["flagged_alone"] and key["crowd_keys"] == 5 and key["crowd_ood"] == 5
    assert key["crowd_p_value"] == pytest.approx(TESTED ** 5, rel=0.05)  # the naturals cannot join


def test_a_natural_new_key_whose_only_query_is_ood_is_not_flagged():
    clients = {f"user-{i}": (100, 2) for i in range(24)} | {"new": (1, 1)}
    out = evidence(clients)
    assert not flagged(out)
    assert out["new"]["crowd_p_value"] == pytest.approx(TESTED, rel=0.01)


def test_populations_of_natural_keys_with_one_or_two_queries_are_not_flagged():
    """300 natural keys of 1-2 queries each beside 24 long-lived ones, OOD at the natural share: 200 such
    populations, none flagged (the level is alpha / clients: 3e-6 a population)."""
    rng = np.random.default_rng(5)
    for _ in range(200):
        queries = rng.integers(1, 3, 300)
        clients = {f"new-{i}": (int(q), int(rng.binomial(q, SHARE))) for i, q in enumerate(queries)}
        clients |= {f"user-{i}": (100, int(rng.binomial(100, SHARE))) for i in range(24)}
        assert not flagged(evidence(clients))


def test_the_crowd_share_decides_who_joins():
    clients = {f"user-{i}": (100, 1) for i in range(24)} | {f"key-{k}": (2, 1) for k in range(8)}
    assert "crowd_p_value" not in evidence(clients, 1.0)["key-0"]
    half = evidence(clients, 0.5)
    assert half["key-0"]["crowd_keys"] == 8 and half["key-0"]["flagged_in_crowd"]


def test_keys_flagged_alone_do_not_drag_natural_new_keys_into_a_crowd():
    """One key flagged on its own (1,000 OOD queries) is left out of the crowd, or every natural key whose only
    query was OOD would be flagged with it."""
    clients = {"thief": (1000, 1000)} | {f"new-{i}": (1, 1) for i in range(2)}
    clients |= {f"new-quiet-{i}": (1, 0) for i in range(100)}
    out = evidence(clients)
    assert flagged(out) == {"thief"}


@pytest.mark.parametrize("value", [0.0, -0.5, 1.5])
def test_a_crowd_share_outside_0_1_is_refused(value):
    with pytest.raises(ValidationError):
        QueriesPolicy(crowd_min_share=value)


def test_the_gate_names_the_crowd_in_its_finding():
    rng = np.random.default_rng(3)
    reference = pd.DataFrame(rng.standard_normal((2000, 4)), columns=list("abcd"))
    space = space_from_sample(reference, list("abcd"), POLICY.ood_quantile)
    parts = [pd.DataFrame(rng.standard_normal((100, 4)), columns=list("abcd")).assign(client_id=f"user-{i}")
             for i in range(10)]
    parts += [pd.DataFrame(np.full((1, 4), 8.0), columns=list("abcd")).assign(client_id=f"key-{k}") for k in range(5)]
    result = check_queries(pd.concat(parts, ignore_index=True), POLICY, "p", space=space, per_window=False,
                           subject=Subject("dataset", "w0", "x"))
    assert result.status is Status.BLOCKED
    assert result.metrics["flagged_clients"] == [f"key-{k}" for k in range(5)]
    assert all("in a crowd of 5 keys with 5 OOD queries" in f.message for f in result.findings)


def test_values_beyond_the_references_range_keep_growing_on_both_paths():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((1000, 3))
    x[:, 2] = 1.0  # a constant feature: any other value is far
    frame = pd.DataFrame(x, columns=list("abc"))
    queries = np.array([[0.0, 0.0, 1.0], [1e308, -1e308, 1.0], [0.0, 0.0, 1.5], [50.0, 0.0, 1.0]])
    sample = space_from_sample(frame, list("abc"), 0.99)
    z = sample.scores(queries)
    assert np.isfinite(z).all() and np.isfinite(sample.statistics(queries)).all()
    assert z[1, 0] > 1e10 and z[1, 1] < -1e10 and z[2, 2] > 1e6 and z[3, 0] > z[0, 0] + 1
    assert sample.ood(queries).tolist() == [False, True, True, True]
    # a profile knows its CDF between its outer cuts only: scores grow beyond them widened by their distance apart
    profile = space_from_profile(profile_from_sample(frame[["a", "b"]], 50), ["a", "b"], 0.99)
    z = profile.scores(queries[:, :2])
    assert np.isfinite(z).all() and z[1, 0] > 1e10 and z[1, 1] < -1e10 and z[3, 0] > z[0, 0] + 1
    assert profile.scores(np.array([[4.0, 0.0]]))[0, 0] == profile.scores(np.array([[2.5, 0.0]]))[0, 0]
    assert profile.ood(queries[:, :2]).tolist() == [False, True, False, True]
