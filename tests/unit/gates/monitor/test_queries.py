import numpy as np
import pandas as pd
import pytest

from mlgate.core.errors import GateInputError
from mlgate.core.results import Status
from mlgate.gates.monitor.queries import QueriesPolicy, check_queries, prada_statistic, volume_z

pytestmark = pytest.mark.unit

DIM = 8


def natural(rng, n):
    """Queries from the natural data distribution: a correlated Gaussian in DIM dimensions."""
    mixing = np.random.default_rng(0).standard_normal((DIM, DIM)) / np.sqrt(DIM) + np.eye(DIM)
    return rng.standard_normal((n, DIM)) @ mixing


def jacobian_augmentation(rng, seeds=3, rounds=5, step=0.1):
    """Papernot-style synthetic queries: each round adds x + step * sign(gradient) for every point so far."""
    points = natural(rng, seeds)
    queries = list(points)
    for _ in range(rounds):
        new = points + step * np.sign(rng.standard_normal(points.shape))
        queries.extend(new)
        points = np.vstack([points, new])
    return np.array(queries)


def line_searches(rng, searches=3, steps=30):
    """Tramèr-style boundary search: bisection along the line between two natural points."""
    queries = []
    for a, b in zip(natural(rng, searches), natural(rng, searches), strict=True):
        low, high = 0.0, 1.0
        queries += [a, b]
        for _ in range(steps):
            middle = (low + high) / 2
            queries.append(a + (b - a) * middle)
            low, high = (middle, high) if rng.random() < 0.5 else (low, middle)
    return np.array(queries)


def window(clients):
    frames = []
    start = pd.Timestamp("2026-01-01", tz="UTC")
    for client, x in clients.items():
        frame = pd.DataFrame(x, columns=[f"f{i}" for i in range(DIM)])
        frame.insert(0, "client_id", client)
        frame.insert(0, "timestamp", start + pd.to_timedelta(np.arange(len(x)), unit="s"))
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


@pytest.mark.parametrize("attack", [jacobian_augmentation, line_searches], ids=["jacobian", "line-search"])
def test_extraction_client_flagged_and_natural_clients_not(attack):
    rng = np.random.default_rng(11)
    clients = {f"user-{i}": natural(rng, int(rng.integers(100, 200))) for i in range(20)}
    clients["attacker"] = attack(rng)
    result = check_queries(window(clients), QueriesPolicy(max_volume_z=50), "sha256:p")
    assert result.status is Status.BLOCKED
    assert result.metrics["flagged_clients"] == ["attacker"]
    assert [f.id for f in result.findings] == ["monitor.queries.extraction"]
    assert result.metrics["flagged"]["attacker"]["prada_w"] < 0.9


@pytest.mark.parametrize("attack", [jacobian_augmentation, line_searches], ids=["jacobian", "line-search"])
def test_prada_separates_synthetic_from_natural_streams(attack):
    rng = np.random.default_rng(12)
    assert max(prada_statistic(attack(rng)) for _ in range(20)) < 0.9
    # natural streams of 150 queries fall below delta = 0.9 in ~0.5% of cases (1 in 400 measured): allow 3%
    assert sum(prada_statistic(rng.standard_normal((150, DIM))) < 0.9 for _ in range(100)) <= 3


def test_volume_spike_flagged_and_findings_hold_no_values():
    rng = np.random.default_rng(13)
    clients = {f"user-{i}": natural(rng, 100 + int(rng.integers(-10, 10))) for i in range(15)}
    clients["scraper"] = natural(rng, 600)
    result = check_queries(window(clients), QueriesPolicy(), "p")
    assert result.metrics["flagged_clients"] == ["scraper"]
    assert [f.id for f in result.findings] == ["monitor.queries.volume"]
    text = " ".join(f.message + f.location for f in result.findings)
    assert not any(f"{v:.3f}" in text for v in clients["scraper"][:20].ravel())


def test_normal_window_passes():
    rng = np.random.default_rng(14)
    clients = {f"user-{i}": natural(rng, 100 + int(rng.integers(-10, 10))) for i in range(15)}
    result = check_queries(window(clients), QueriesPolicy(), "p")
    assert result.status is Status.PASSED and result.metrics["prada_tested"] == 15


@pytest.mark.parametrize(("count", "baseline", "flagged"), [
    (130, 100.0, True), (105, 100.0, False), (130, 125.0, False),
], ids=["above-own-baseline", "near-baseline", "baseline-is-high"])
def test_volume_against_a_per_client_baseline(count, baseline, flagged):
    counts = pd.Series({"a": count, "b": 100, "c": 100, "d": 100})
    assert bool(volume_z(counts, {"a": baseline})["a"] > 2.5) is flagged


@pytest.mark.parametrize(("mutate", "match"), [
    (lambda w: w.drop(columns="client_id"), "client_id"),
    (lambda w: w.iloc[0:0], "empty"),
    (lambda w: w.assign(f0=np.nan), "missing or infinite"),
    (lambda w: w[["timestamp", "client_id"]], "numeric feature columns"),
], ids=["no-client-id", "empty", "nan-feature", "no-features"])
def test_bad_input_fails_closed(mutate, match):
    base = window({"a": natural(np.random.default_rng(15), 40)})
    with pytest.raises(GateInputError, match=match):
        check_queries(mutate(base), QueriesPolicy(), "p")
