"""Red team 8: the crowd test (ADR 0062), scores beyond the range (ADR 0063) and a profile's OOD calibration
(ADR 0066). Plain tests are fixed findings; strict xfails say what still evades and why it is left."""

import numpy as np
import pandas as pd
import pytest

from mlgate.core.errors import GateInputError
from mlgate.gates.monitor.drift import profile_from_sample
from mlgate.gates.monitor.extraction import (
    ExtractionState,
    OodCalibration,
    extraction_evidence,
    ood_edges,
    space_from_profile,
)
from mlgate.gates.monitor.policies import QueriesPolicy

pytestmark = pytest.mark.unit

POLICY = QueriesPolicy()


def flagged(clients: dict[str, tuple[int, int]]) -> set[str]:
    state = ExtractionState(["w0"], {c: {"queries": q, "ood": o, "first": "w0"} for c, (q, o) in clients.items()})
    out = extraction_evidence(state, 1 - POLICY.ood_quantile, POLICY.ood_alpha, POLICY.sybil_min_ood,
                              POLICY.ood_margin, POLICY.crowd_min_share)
    return {c for c, e in out.items() if e["flagged_alone"] or e.get("flagged_in_group") or e.get("flagged_in_crowd")}


NATURALS = {f"user-{i}": (100, 1) for i in range(24)}


def test_a_value_far_below_a_column_mostly_at_its_minimum_scores_farther_than_the_minimum():
    """A profile's CDF at its lowest cut is the share at the minimum; above one half, the score went on from a
    positive value *down* and crossed 0: digits' 25 non-constant pixels mostly at 0, set 5 range widths below
    their range in held-out rows, were 0.4 % OOD (10 widths: 5.3 %); scored outward, 73 % (99.4 %)."""
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(2000, 4)), columns=list("abcd"))
    frame["a"] = np.where(rng.random(2000) < 0.9, 0.0, rng.uniform(0, 10, 2000))
    space = space_from_profile(profile_from_sample(frame, bins=50), list(frame.columns), 0.99)
    query = np.zeros((40, 4))
    query[:, 0] = -np.geomspace(1e-3, 1e4, 40)  # from a hair below the minimum to 1,000 widths below
    for z2, at_minimum in zip(space.statistics(query), space.statistics(np.zeros((1, 4))), strict=True):
        assert (np.diff(z2) >= 0).all() and (z2 >= at_minimum[0]).all()
    assert space.ood(query[-1:]).all()


def test_an_exact_calibration_of_too_few_rows_cannot_bound_the_share():
    """No rows put the threshold at the first edge (every query far from the centre OOD); profiles of 5 / 20 rows
    let up to 7.1 % / 8.6 % of breast cancer's natural rows out (10 draws, 1 % nominal). A reference sample
    needs 100 rows; so does an exact calibration at the 99 % quantile (200 at the profile path's 99.5 %)."""
    columns = ("a", "b")
    cells = len(ood_edges(2)) + 1
    for counts in ([0.0] * cells, [5.0] + [0.0] * (cells - 1), [99.0] + [0.0] * (cells - 1)):
        with pytest.raises(GateInputError, match="cannot bound a 0.01 share"):
            OodCalibration(columns, tuple(counts)).threshold(0.99)
    assert OodCalibration(columns, (100.0,) + (0.0,) * (cells - 1)).threshold(0.99) == ood_edges(2)[0]


@pytest.mark.parametrize(("top", "noise_sd", "match"), [(-1000.0, 0.0, "cannot be negative"),
                                                        (1e308, 1.0, "a finite total")])
def test_an_exact_calibration_with_a_negative_count_or_an_overflowing_total_is_refused(top, noise_sd, match):
    """A negative count in the top cell of an exact calibration, or two counts of 1e308 (an unverified profile's
    JSON), pulled the threshold to the first edge: every query away from the centre OOD."""
    counts = [1e308 if top > 0 else 1000.0] + [0.0] * (len(ood_edges(2)) - 1) + [top]
    with pytest.raises(GateInputError, match=match):
        OodCalibration.from_dict({"columns": ["a", "b"], "counts": counts, "noise_sd": noise_sd,
                                  "statistic": "spread_z2"})


@pytest.mark.xfail(strict=True, reason="keys that each mix one in-distribution query (the features' means: free, "
                   "no natural row needed) with one OOD query have an OOD share of 0.5 < crowd_min_share 1.0, so the "
                   "crowd skips them; per key 1 of 2 has p 0.06 > JOIN_P, so the pool skips them too: 1,000 such keys "
                   "(1,000 OOD queries) flagged 0 (50, 200: 0). At crowd_min_share 0.5 they are caught, but 2 "
                   "in-distribution + 1 OOD per key then evades (0 of 1,000). Left: the share is the lead's policy "
                   "choice (ADR 0062: at 0.5 the first window's 3 attack queries are never flagged); a fix tests the "
                   "crowd at several shares or sums OOD over every low-count key")
def test_keys_mixing_one_in_distribution_query_with_one_ood_query_are_flagged():
    keys = {f"key-{k}": (2, 1) for k in range(1000)}
    assert set(keys) <= flagged(NATURALS | keys)


@pytest.mark.xfail(strict=True, reason="chaff keys: one in-distribution query each raises the crowd's null "
                   "(each may join at the tested 3 %) while adding nothing to the observed sum: 5 or 13 one-query "
                   "OOD keys are hidden by 100 chaff keys, 30 by 1,000, 100 by 3,000 (30 free queries per OOD query "
                   "hidden). Left: any test of a summed count is diluted so; a horizon (ADR 0062's follow-up) bounds "
                   "the null to recent keys but chaff can be recent too; a scan over key groups is a design change")
def test_chaff_keys_do_not_hide_a_crowd_of_ood_keys():
    attack = {f"key-{k}": (1, 1) for k in range(13)}
    chaff = {f"chaff-{k}": (1, 0) for k in range(100)}
    assert set(attack) <= flagged(NATURALS | attack | chaff)


@pytest.mark.xfail(strict=True, reason="the pooled (sybil) test sums the keys it *selected* for a high OOD count "
                   "(>= 3, own p < 0.01) and tests that sum as an unselected binomial, so a large population of "
                   "natural newcomers at or below the tested share is flagged: 10,000 lognormal newcomers (median "
                   "2 queries) at a 3 % share flagged in 5-6 of 20 runs (17 keys), at 2 % in 2 of 20 (0 of 20 "
                   "with another seed; level 0.001 / clients per run); the crowd test never fired. Left: an exact "
                   "null for the pool is the crowd's convolution with another joining rule (a design change, and "
                   "its cost on long histories unmeasured)")
def test_natural_newcomers_below_the_tested_share_are_not_pooled_into_a_flag():
    """3,000 keys of 10 queries, OOD counts at the binomial(10, 2.5 %) frequencies: 5 keys hold 3 OOD queries
    (expected 6 at 2.5 %), every share is below the tested 3 %."""
    counts = {0: 2330, 1: 600, 2: 65, 3: 5}
    clients = dict(NATURALS)
    for ood, keys in counts.items():
        clients |= {f"new-{ood}-{k}": (10, ood) for k in range(keys)}
    total = sum(o for _, o in clients.values()) / sum(q for q, _ in clients.values())
    assert total < POLICY.ood_margin * (1 - POLICY.ood_quantile)
    assert not flagged(clients)


def test_another_json_written_over_the_extraction_state_is_not_read_as_an_empty_state():
    """The training DAG's ``profile_path`` param (set by whoever triggers it) publishes a DP profile at any path;
    at the query watch's state file it read as an empty state, erasing every client's evidence."""
    written = profile_from_sample(pd.DataFrame({"a": np.arange(200.0)})).to_dict()
    for other in (written, {"windows": ["w0"]}, {"clients": {}}):
        with pytest.raises(GateInputError, match="not an extraction state"):
            ExtractionState.from_dict(other)
    assert ExtractionState.from_dict(ExtractionState().to_dict()) == ExtractionState()
