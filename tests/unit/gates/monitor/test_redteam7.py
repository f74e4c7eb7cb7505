"""Red team 7 (session 7): ``monitor.queries``' joint Σz² / SPE OOD evidence (ADR 0058) and ``monitor.drift``'s
missing-share tests (ADR 0059). Fixed findings are plain tests; open ones are strict xfails whose reason says
what evades and why it is left (numbers: docs/notes/2026-12-04-s7/redteam7.md)."""

import numpy as np
import pandas as pd
import pytest

from mlgate.core.errors import GateInputError
from mlgate.core.policy import parse_policy
from mlgate.core.results import Status, Subject
from mlgate.gates.monitor.drift import check_drift, profile_from_sample
from mlgate.gates.monitor.extraction import ExtractionState, space_from_sample
from mlgate.gates.monitor.monitoring import check_drift_files, check_drift_sketched
from mlgate.gates.monitor.policies import DriftPolicy
from mlgate.gates.monitor.queries import QueriesPolicy, check_queries
from tests.helpers import default_policy

pytestmark = pytest.mark.unit

START = pd.Timestamp("2026-01-01", tz="UTC")


@pytest.fixture(scope="module")
def cancer():
    """The benchmark's breast-cancer split (seed 0): the training rows are the reference, the held-out rows
    natural traffic and the thief's few natural rows."""
    import sklearn.datasets
    from sklearn.model_selection import train_test_split

    x, _ = sklearn.datasets.load_breast_cancer(return_X_y=True)
    x_train, x_test = train_test_split(x, test_size=0.4, random_state=0)
    columns = [f"f{i:02d}" for i in range(x.shape[1])]
    space = space_from_sample(pd.DataFrame(x_train, columns=columns), columns, QueriesPolicy().ood_quantile)
    return x_train, x_test, columns, space


def frame(clients, columns, start=START, minutes=60):
    """One window: each client's queries spread evenly over it."""
    parts = []
    for client, x in clients.items():
        part = pd.DataFrame(x, columns=columns)
        part.insert(0, "client_id", client)
        part.insert(0, "timestamp", start + pd.to_timedelta(np.linspace(0, minutes * 60 - 1, len(x)), unit="s"))
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


def naturals(rng, x_test, count=24, volume=100):
    return {f"user-{i}": x_test[rng.integers(0, len(x_test), int(rng.lognormal(np.log(volume), 0.5)))]
            for i in range(count)}


def far_noise(rng, x_train, n):
    """The benchmark's Knockoff pool: independent noise at twice each feature's spread, clipped to its range
    (the attack model grants each feature's mean and spread)."""
    return np.clip(rng.normal(x_train.mean(0), 2 * x_train.std(0), (n, x_train.shape[1])),
                   x_train.min(0), x_train.max(0))


def watch(windows, columns, space, per_window=False):
    """Run the gate over consecutive hourly windows with one state; the clients it flagged, by finding id."""
    state, flagged = ExtractionState(), {}
    for w, clients in enumerate(windows):
        result = check_queries(frame(clients, columns, START + pd.Timedelta(hours=w)), QueriesPolicy(), "p",
                               subject=Subject("dataset", f"w{w}", "s"), space=space, state=state,
                               per_window=per_window)
        for finding in result.findings:
            flagged.setdefault(finding.location.removeprefix("client "), set()).add(finding.id)
    return flagged


# --- monitor.queries: open findings --------------------------------------------------------------------------

@pytest.mark.xfail(strict=True, reason=(
    "A thief holding a few natural rows and querying their convex combinations (mixup) is in distribution: "
    "0 of 300 such queries OOD (Σz² and SPE both typical), never flagged at either cadence; its surrogate agrees "
    "0.965 with the breast-cancer victim (one-query rule 0.895), 0.606 on digits. The 20 rows alone give 0.956 / "
    "0.614, and 114-300 held-out rows queried as they are 0.947 / 0.944, also never flagged: an OOD statistic "
    "cannot tell a thief with natural data from a natural client. Left: needs a signal other than OOD "
    "(per-key query budgets, or PRADA-like structure in a key's stream, which these streams do not show)."))
def test_a_thief_mixing_up_twenty_natural_rows_is_flagged(cancer):
    x_train, x_test, columns, space = cancer
    rng = np.random.default_rng(1)
    seeds = x_test[rng.choice(len(x_test), 20, replace=False)]
    lam = rng.uniform(0, 1, (320, 1))
    mixup = lam * seeds[rng.integers(0, 20, 320)] + (1 - lam) * seeds[rng.integers(0, 20, 320)]
    assert not space.ood(mixup).any()  # the reason it evades: every query is typical
    windows = [naturals(rng, x_test) | {f"key-{k}": mixup[(8 * (5 * w + k)):(8 * (5 * w + k + 1))]
                                        for k in range(5)} for w in range(8)]
    flagged = watch(windows, columns, space, per_window=True)
    assert any(c.startswith("key-") for c in flagged)


@pytest.mark.xfail(strict=True, reason=(
    "Data-free (the attack model's mean and spread only): the benchmark's far-noise queries, every one OOD, "
    "hidden at 2.9 % of one key's traffic among copies of the reference's mean row (not OOD) stay under the "
    "binomial test's 3 x 1 % forever; 300 far queries in 10,345 over 34 h at 300 an hour: never flagged at "
    "either cadence (0 / 24 naturals), surrogate agreement 0.965 breast cancer, 0.597 digits (5 keys unpadded: "
    "flagged at 13 queries then, 3-7 with the crowd test of ADR 0062). 20 keys at 5 % each (p ~0.04 each, "
    "over JOIN_P; a share below crowd_min_share) do it in one hour. Deduplicating "
    "exact repeats would not hold (jitter the pad, as here). Left: a share test against a natural share cannot "
    "see a fixed number of far queries diluted by anything typical; counting far queries per key regardless of "
    "volume (with a per-key budget) is a design change for the lead."))
def test_a_thief_padding_far_queries_with_the_mean_row_is_flagged(cancer):
    x_train, x_test, columns, space = cancer
    rng = np.random.default_rng(2)
    pad = x_train.mean(0) + rng.normal(0, 1e-6, (971, x_train.shape[1])) * x_train.std(0)
    assert not space.ood(pad).any() and space.ood(far_noise(rng, x_train, 100)).mean() > 0.9
    windows = [naturals(rng, x_test) | {"key-0": rng.permutation(np.vstack([far_noise(rng, x_train, 29), pad]))}
               for _ in range(10)]
    flagged = watch(windows, columns, space)
    assert "key-0" in flagged


@pytest.mark.xfail(strict=True, reason=(
    "Data-free (the attack model's marginals only): each query is the reference's median row with k random "
    "features redrawn from their own marginal (N(mean, spread), clipped). Σz² stays small (the query is near "
    "the centre) and the few changed features leave little residual off the principal subspace. Digits, k 30 "
    "of 64: 5.7 % OOD, 5 keys x 8 an hour x 8 h never flagged at either cadence (0 / 24 naturals), surrogate "
    "agreement 0.814 (majority 0.108; the benchmark's far-noise attack 0.650, flagged at 13 then, 3 with the crowd "
    "test); k 20: 0.7 % OOD, "
    "0.653. Breast cancer, k 5 of 30: 8.3 % OOD, never flagged, 0.921 (one-query rule 0.895). The statistic is "
    "one-sided: a query can be atypically *central*. Left: a lower-tail Σz² cut (the reference's out-of-fold "
    "0.5 % quantile) sees 69 % / 96 % of digits k 30 / k 20 and 29 % of breast-cancer k 5 queries, at 0.7-0.9 "
    "% of held-out naturals (10 splits): a change of ADR 0058's statistic and calibration, for the lead."))
def test_a_thief_redrawing_a_few_features_of_the_median_row_is_flagged():
    import sklearn.datasets
    from sklearn.model_selection import train_test_split

    x, _ = sklearn.datasets.load_digits(return_X_y=True)
    x_train, x_test = train_test_split(x.astype(np.float64), test_size=0.4, random_state=0)
    columns = [f"f{i:02d}" for i in range(x.shape[1])]
    space = space_from_sample(pd.DataFrame(x_train, columns=columns), columns, QueriesPolicy().ood_quantile)
    rng = np.random.default_rng(4)
    queries = np.tile(np.median(x_train, axis=0), (320, 1))
    for row in queries:
        redrawn = rng.choice(x.shape[1], 30, replace=False)
        row[redrawn] = np.clip(rng.normal(x_train.mean(0)[redrawn], x_train.std(0)[redrawn]),
                               x_train.min(0)[redrawn], x_train.max(0)[redrawn])
    assert space.ood(queries).mean() < 0.1  # the reason it evades: few of them are OOD
    windows = [naturals(rng, x_test) | {f"key-{k}": queries[(8 * (5 * w + k)):(8 * (5 * w + k + 1))]
                                        for k in range(5)} for w in range(8)]
    flagged = watch(windows, columns, space)
    assert any(c.startswith("key-") for c in flagged)


def quiet_keys(cancer) -> tuple[list, list[str], object]:
    """One window: the natural clients beside 150 keys holding 2 far (all OOD) queries each."""
    x_train, x_test, columns, space = cancer
    rng = np.random.default_rng(3)
    far = far_noise(rng, x_train, 300)
    assert space.ood(far).all()
    return [naturals(rng, x_test) | {f"key-{k}": far[2 * k:2 * k + 2] for k in range(150)}], columns, space


def test_many_keys_each_with_two_far_queries_are_flagged(cancer):
    """Sybil under sybil_min_ood: 150 keys with 2 far queries each (all OOD) were never flagged (alone, p 9e-4
    is above alpha / clients; pooled, a key needs 3 OOD queries). The crowd test (ADR 0062) sums them against
    the exact null over every key: every key flagged, no natural client (fixed here)."""
    flagged = watch(*quiet_keys(cancer))
    assert {f"key-{k}" for k in range(150)} <= set(flagged)
    assert not [c for c in flagged if c.startswith("user-")]


def test_a_crowd_of_quiet_keys_does_not_make_natural_clients_volume_outliers(cancer):
    """The same 150 quiet keys pulled the median client volume down to 2, so every natural client at ~100 queries
    was a robust-z outlier (24 / 24 flagged by monitor.queries.volume). The baseline is the median weighted by
    queries now: quiet keys carry few (fixed here)."""
    flagged = watch(*quiet_keys(cancer), per_window=True)
    assert not [c for c in flagged if c.startswith("user-")]


# --- monitor.queries: fixed / holding ------------------------------------------------------------------------

def test_a_query_with_a_feature_far_beyond_the_references_range_is_out_of_distribution(cancer):
    """Normal scores saturated at the reference's extreme rows, so ``±1e308`` scored like its maximum (Σz² 8.8
    against a threshold of 116: in distribution). Beyond the range they go on growing now (fixed here)."""
    x_train, _, _, space = cancer
    query = np.tile(np.median(x_train, axis=0), (2, 1))
    query[0, 0], query[1, 0] = 1e308, -1e308
    assert space.ood(query).all()


@pytest.mark.parametrize("client", ["", " ", "\t", "  \n"], ids=["empty", "space", "tab", "blank"])
def test_queries_without_a_real_client_id_fail_closed(cancer, client):
    """An empty or blank client id is no client: counted as one, it pooled everyone without an id; refused like
    a missing one (fixed here)."""
    x_train, x_test, columns, space = cancer
    window = frame({"a": x_test[:40], client: x_test[40:50]}, columns)
    with pytest.raises(GateInputError, match="without a client_id"):
        check_queries(window, QueriesPolicy(), "p", space=space)


def test_a_query_window_or_reference_with_a_column_named_twice_fails_closed(cancer):
    """Before the fix: a window with ``f00`` twice crashed in ``window_digest`` (AttributeError); a reference with
    ``f03`` twice gave a space of 31 CDFs for 30 columns, which scored each later feature against its left
    neighbour's CDF and crashed on the last (IndexError). Both refused by name now (fixed here)."""
    x_train, x_test, columns, space = cancer
    window = frame({"a": x_test[:40]}, columns)
    with pytest.raises(GateInputError, match=r"\['f00'\] appear more than once"):
        check_queries(pd.concat([window, window[["f00"]]], axis=1), QueriesPolicy(), "p", space=space)
    reference = pd.DataFrame(x_train, columns=columns)
    with pytest.raises(GateInputError, match="appear more than once"):
        space_from_sample(pd.concat([reference, reference[["f03"]]], axis=1), columns, 0.99)


@pytest.mark.parametrize("value", [np.inf, -np.inf, np.nan, "abc"], ids=["inf", "-inf", "nan", "text"])
def test_non_finite_or_text_query_features_fail_closed(cancer, value):
    x_train, x_test, columns, space = cancer
    window = frame({"a": x_test[:40]}, columns)
    window["f05"] = window["f05"].astype(object)
    window.loc[3, "f05"] = value
    with pytest.raises(GateInputError, match="f05|missing or infinite|numeric"):
        check_queries(window, QueriesPolicy(), "p", space=space)


def test_client_ids_differing_by_case_or_whitespace_are_distinct_keys(cancer):
    """Documented, not changed: ids are compared as logged ('a', 'A', 'a ' are three keys). The log's client id
    is the server's authenticated identity (``serving.auth``), so a client cannot mint variants for free; a
    deployment whose ids come from the request would hand out keys at no cost (see the sybil xfail)."""
    x_train, x_test, columns, space = cancer
    window = frame({"a": x_test[:10], "A": x_test[10:20], "a ": x_test[20:30]}, columns)
    result = check_queries(window, QueriesPolicy(), "p", space=space)
    assert result.metrics["clients"] == 3


# --- monitor.drift ------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def tables():
    rng = np.random.default_rng(7)
    reference = pd.DataFrame({"x": rng.normal(size=5000), "c": rng.choice(list("abc"), 5000)})
    current = pd.DataFrame({"x": rng.normal(size=2000), "c": rng.choice(list("abc"), 2000)})
    return reference, current, np.arange(2000) < 1000


def test_drift_with_a_column_named_twice_fails_closed(tables):
    """A join left ``x`` twice: ``current['x']`` is a table, and the gate crashed (AttributeError, ValueError
    'Grouper not 1-dimensional') or would test both copies as one column; now refused by name (fixed here)."""
    reference, current, half = tables
    broken = pd.concat([current.assign(x=np.where(half, np.nan, current.x)), current[["x"]]], axis=1)
    with pytest.raises(GateInputError, match=r"the current window: column name\(s\) \['x'\]"):
        check_drift(broken, reference, DriftPolicy(), "p")
    with pytest.raises(GateInputError, match=r"the reference sample: column name\(s\) \['x'\]"):
        check_drift(current, pd.concat([reference, reference[["x"]]], axis=1), DriftPolicy(), "p")
    with pytest.raises(GateInputError, match="appear more than once"):
        profile_from_sample(pd.concat([reference, reference[["c"]]], axis=1))


@pytest.mark.parametrize("sentinel", ["", "NA", "null", "nan", "None"])
def test_nulls_written_as_text_sentinels_in_a_categorical_column_block(tables, sentinel):
    """Half a categorical column's values turned into a null-like string are a new category: the value test
    sees them (total variation 0.5, severe), against a sample and a profile alike."""
    reference, current, half = tables
    window = current.assign(c=np.where(half, sentinel, current.c))
    for ref in (reference, profile_from_sample(reference)):
        result = check_drift(window, ref, DriftPolicy(), "p")
        assert result.status is Status.BLOCKED and result.metrics["drifted_columns"] == ["c"]


def test_half_a_numeric_column_imputed_with_its_mean_drifts_but_blocks_only_when_it_persists(tables):
    """Nulls filled with the mean (0 here) hide from the missing-share test but not from the value tests: the
    column drifts (Wasserstein ~0.4 sd), under severe (0.5), so one such window passes with findings at medium
    and the next one blocks (persistence): delayed by one window, not evaded. A sentinel outside the range
    (-999) is severe at once."""
    reference, current, half = tables
    imputed = current.assign(x=np.where(half, 0.0, current.x))
    first = check_drift(imputed, reference, DriftPolicy(), "p", subject=Subject("dataset", "w1", "s"))
    assert first.status is Status.PASSED and first.metrics["drifted_columns"] == ["x"]
    second = check_drift(imputed, reference, DriftPolicy(), "p", subject=Subject("dataset", "w2", "s"),
                         history=[{"window": "dataset:w1", "drifted": True}])
    assert second.status is Status.BLOCKED
    sentinel = check_drift(current.assign(x=np.where(half, -999.0, current.x)), reference, DriftPolicy(), "p")
    assert sentinel.status is Status.BLOCKED and sentinel.metrics["severe"]


def test_a_csv_window_with_a_column_named_twice_is_refused_on_both_paths(tmp_path, tables):
    """A CSV whose header names ``x`` twice, the second copy half empty: pandas renamed it ``x.1`` and the
    in-memory path judged the first copy alone — PASSED, no drift — while Arrow refused the file (the streamed
    path). Refused on both now (fixed in ``read_table``)."""
    reference, current, half = tables
    reference.to_csv(tmp_path / "reference.csv", index=False)
    broken = pd.concat([current[["x"]], current[["x"]].assign(x=np.where(half, np.nan, current.x)), current[["c"]]],
                       axis=1)
    broken.to_csv(tmp_path / "window.csv", index=False)
    assert (tmp_path / "window.csv").read_text().startswith("x,x,c\n")
    policy = parse_policy(default_policy())
    for check in (check_drift_files, check_drift_sketched):
        with pytest.raises(GateInputError, match=r"window.csv"):
            check(tmp_path / "window.csv", tmp_path / "reference.csv", policy)


def test_a_forged_partition_sketch_of_negative_rows_cannot_erase_missing_values(tmp_path):
    """A window whose ``x`` is half null blocks; merged with a forged partition sketch of -1,000 rows and no
    columns it added up (1,000 values + 0 missing = 1,000 rows) and PASSED: the merge counts a column a partition
    lacks as missing in all its rows, so -1,000 rows took 1,000 missing values off. Refused on loading now."""
    import json

    import pyarrow as pa

    from mlgate.gates.monitor.sketches import KLL_K, SKETCH_KIND, check_drift_sketch, sketch_batches, sketch_inputs

    rng = np.random.default_rng(8)
    reference = sketch_batches([pa.record_batch({"x": rng.normal(size=5000)})])
    x = rng.normal(size=2000)
    x[:1000] = np.nan
    window = sketch_batches([pa.record_batch({"x": pa.array(x, from_pandas=True)})])
    assert check_drift_sketch(window, reference, DriftPolicy(), "p").status is Status.BLOCKED
    (tmp_path / "window.json").write_text(json.dumps(window.to_dict()))
    (tmp_path / "forged.json").write_text(json.dumps({"kind": SKETCH_KIND, "rows": -1000, "kll_k": KLL_K,
                                                      "nulls": {}, "numeric": {}, "categorical": {}}))
    with pytest.raises(GateInputError, match="-1000 rows"):
        sketch_inputs([tmp_path / "window.json", tmp_path / "forged.json"])
