"""``make bench`` reproduces the peer ratios from a clean clone: it creates ``.venv-bench`` with every reference
tool pinned at the version the ratios were measured against, and points the benchmarks at it."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.unit

PEERS = ("presidio-analyzer", "evidently", "nannyml", "alibi-detect", "picklescan", "modelscan", "fickling")


def test_every_reference_tool_is_pinned_exactly():
    pins = dict(re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)$", (ROOT / "benchmarks" / "requirements-bench.txt").read_text(),
                           re.MULTILINE))
    assert set(PEERS) <= set(pins)


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_bench_creates_the_bench_venv_and_runs_the_benchmarks_in_it(tmp_path):
    venv = tmp_path / "bench"
    plan = subprocess.run(["make", "-n", "bench", f"BENCH_VENV={venv}", "STAMP=/dev/null"], cwd=ROOT,
                          capture_output=True, text=True, check=True).stdout
    assert f"python3 -m venv {venv}" in plan
    assert f"{venv}/bin/python -m pip install -q -r benchmarks/requirements-bench.txt" in plan
    assert f"MLGATE_BENCH_VENV={venv} MLGATE_BENCH_PYTHON={venv}/bin/python" in plan
