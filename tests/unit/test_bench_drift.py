"""``benchmarks/drift.py``'s comparison at equal false alarms: each tool's 1 % threshold, and mlgate against the best
peer on the same windows (McNemar on the windows only one caught, a bootstrap that redraws the thresholds)."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_drift", ROOT / "benchmarks" / "drift.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_threshold_lets_one_percent_of_the_healthy_windows_alarm(bench):
    healthy = np.random.default_rng(1).standard_normal(1000)
    assert np.sum(healthy > bench.fa_threshold(healthy)) == 10
    few = healthy[:50]
    assert bench.fa_threshold(few) == few.max()


def test_a_peer_that_catches_a_superset_of_the_windows_is_told_apart_by_mcnemar_not_by_the_bootstrap(bench):
    rng = np.random.default_rng(2)
    healthy, cell = rng.standard_normal(1000), rng.standard_normal(300) + 2.3
    # same healthy scores, so the same threshold; the peer's shifted scores are mlgate's plus 0.3: it catches every
    # window mlgate catches and some more
    found = bench.versus({"mlgate": {"h": healthy, "c": cell}, "peer": {"h": healthy, "c": cell + 0.3}}, "c", "h")
    threshold = bench.fa_threshold(healthy)
    extra = int(np.sum((cell <= threshold) & (cell + 0.3 > threshold)))
    assert extra > 10
    assert found["only"] == [0, extra]
    assert found["mcnemar_p"] == pytest.approx(2 * 0.5 ** extra)
    assert found["difference"] == pytest.approx(-extra / 300)
    low, high = found["difference95"]
    assert low < found["difference"] < high <= 0


def test_the_thresholds_noise_widens_the_interval_and_unanswered_windows_are_left_out(bench):
    rng = np.random.default_rng(3)
    healthy, cell = rng.standard_normal(1000), rng.standard_normal(300) + 2.3
    peer_healthy = rng.standard_normal(1000)  # another tool: its own threshold, redrawn with the same windows
    found = bench.versus({"mlgate": {"h": healthy, "c": cell}, "peer": {"h": peer_healthy, "c": cell[:200]}},
                         "c", "h")
    assert found["windows"] == 200
    low, high = found["difference95"]
    assert high - low > 0.05  # 1 % thresholds on 1,000 windows move the power of both by several points


def test_the_best_peer_is_the_most_powerful_one_with_a_one_percent_threshold(bench):
    rng = np.random.default_rng(4)

    def tool(healthy: int, shift: float) -> dict:
        return {"scores": {"healthy-500": rng.standard_normal(healthy).tolist(),
                           "mean-0.2-500": (rng.standard_normal(40) + shift).tolist()}}

    table = {"mlgate": tool(200, 3.0), "strong": tool(200, 2.5), "weak": tool(200, 1.0), "few": tool(50, 9.0)}
    plan = [("healthy-500", 500, "none", 0.0, 200), ("mean-0.2-500", 500, "mean", 0.2, 40)]
    best = bench.best_peer(table, plan, bench.calibrated(table, plan))
    assert list(best) == ["mean-0.2-500"]
    assert best["mean-0.2-500"][0] == "strong"  # "few" has 50 healthy windows: no 1 % threshold


def test_a_cell_is_lost_only_when_the_whole_interval_of_the_difference_is_below_zero(bench):
    assert bench.verdict({"difference": 0.0, "difference95": [-0.03, 0.02]}) == "yes"
    assert bench.verdict({"difference": -0.037, "difference95": [-0.107, 0.027]}).startswith("behind within noise")
    assert bench.verdict({"difference": -0.12, "difference95": [-0.2, -0.05]}).startswith("NO (by 12.0%")
