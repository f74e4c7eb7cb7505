"""data.pii and monitor.drift computed by a real Spark job (local[2]) over hive-partitioned Parquet datasets,
against the Arrow path on the same data; what crosses Spark's wire; how the engine fails (ADR 0049).

One SparkSession for the module: Spark's start is the slow part. Its partitions are made small so a dataset
spreads over several partitions, files are split between them and partitions hold several files."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys

import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from mlgate.core.errors import GateInputError
from mlgate.core.policy import parse_policy
from mlgate.exceptions import GatePolicyViolation
from mlgate.gates.data import pii_spark
from mlgate.gates.data.pii import PiiPolicy
from mlgate.gates.data.pii_spark import check_pii_spark
from mlgate.gates.data.pii_stream import check_pii_source
from mlgate.gates.data.sources import open_source
from mlgate.gates.data.spark_source import _job, layout, spark_session
from mlgate.gates.monitor.monitoring import check_drift_sketched
from mlgate.gates.monitor.sketches import WindowSketch, _category_counts, rank_error, sketch_batches
from mlgate.gates.monitor.sketches_spark import sketch_spark
from mlgate.operators import DataPiiGateOperator
from tests.conftest import ROOT
from tests.fixtures.pii_table import pii_table
from tests.helpers import context, default_policy, new_run
from tests.unit.operators.test_data_and_model_operators import (  # noqa: F401 - task_log is a fixture
    CANARIES,
    assert_no_canary_leaks,
    task_log,
)

pytestmark = pytest.mark.integration

DIGEST = "sha256:" + "0" * 64
POLICY = PiiPolicy(types=("email", "phone", "us_ssn", "ip_address", "national_id", "credit_card"),
                   allowed={"contact": ("email",)})
CANARY = "zq7canary.vl4@example.org"


@pytest.fixture(scope="module")
def spark():
    with spark_session() as session:
        session.conf.set("spark.sql.files.maxPartitionBytes", "40000")  # several partitions per dataset
        session.conf.set("spark.sql.files.openCostInBytes", "1")
        yield session


def lake(path, table: pa.Table, days: int, group_rows: int):
    with_day = table.append_column("day", pa.array([i % days for i in range(table.num_rows)], pa.int64()))
    ds.write_dataset(with_day, path, format="parquet", partitioning=["day"], partitioning_flavor="hive",
                     min_rows_per_group=group_rows, max_rows_per_group=group_rows)
    return path


@pytest.fixture(scope="module")
def pii_lake(tmp_path_factory):
    table = pii_table()
    notes = table.column("notes").to_pylist()
    notes[1234] = f"write to {CANARY} please"
    table = table.set_column(0, "notes", pa.array(notes, pa.string()))
    return lake(tmp_path_factory.mktemp("pii") / "lake", table, 3, 250)


def comparable(result) -> dict:
    """Everything but the salted example prefixes (new per scan) and the engine's own counters."""
    return {"status": result.status, "rows": result.metrics["rows"], "cells": result.metrics["cells_by_type"],
            "low": result.metrics["low_confidence_cells_by_type"],
            "scanned": result.metrics["columns_scanned"], "skipped": result.metrics["columns_skipped"],
            "findings": [(f.id, f.severity.value, f.location, re.sub(r"#[0-9a-f]{8}", "#", f.message))
                         for f in result.findings], "subject": result.subject.digest}


def test_pii_by_spark_equals_the_streamed_scan(spark, pii_lake):
    source = open_source(pii_lake, 300)
    by_spark = check_pii_spark(source, POLICY, DIGEST, session=spark)
    streamed = check_pii_source(source, POLICY, DIGEST)
    assert comparable(by_spark) == comparable(streamed)
    assert by_spark.metrics["partitions"] > 3 and by_spark.metrics["engine"] == "spark"
    # the vote's sample was taken in the Arrow path's row order: the ID column (junk bunched early) is elected
    assert by_spark.metrics["cells_by_type"]["national_id"]["reference"] > 0.9 * by_spark.metrics["rows"]
    assert "order_no" not in by_spark.metrics["cells_by_type"]["national_id"]
    assert by_spark.status.value == "blocked"


def test_nothing_spark_returns_holds_a_value(spark, pii_lake, monkeypatch):
    """The partitions' results (what crosses the wire to the driver) hold counts, traits and salted prefixes:
    neither the planted canary nor any other scanned cell."""
    returned = []

    def recording(*args, **kwargs):
        parts = map_partitions(*args, **kwargs)
        returned.append(json.dumps(parts))
        return parts

    map_partitions = pii_spark.map_partitions
    monkeypatch.setattr(pii_spark, "map_partitions", recording)
    result = check_pii_spark(open_source(pii_lake, 300), POLICY, DIGEST, session=spark)
    assert len(returned) == 3  # counts, the vote's sample, the scan
    cells = set(pq.read_table(pii_lake, columns=["notes", "reference", "contact"]).to_pandas().stack().astype(str))
    wire = "\n".join(returned)
    assert CANARY not in wire and CANARY not in json.dumps(result.to_dict(), default=str)
    words = set(re.findall(r"[\w.@+-]{6,}", wire))
    assert not words & cells


def run_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "mlgate.cli", *args], capture_output=True, text=True,
                          cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT / "src"), **(env or {})},
                          timeout=600)


def test_the_cli_scan_keeps_the_canary_out_of_logs_and_evidence(pii_lake, tmp_path):
    """A second Spark (the CLI's own, on local[2]): its driver's and executors' logs and the signed evidence."""
    out = tmp_path / "pii.json"
    run = run_cli("check", "data.pii", str(pii_lake), "--engine", "spark", "--json", str(out))
    assert run.returncode == 1, run.stderr[-2000:]  # blocked: the notes column holds PII
    evidence = out.read_text()
    assert json.loads(evidence)["metrics"]["engine"] == "spark"
    assert CANARY not in run.stdout + run.stderr + evidence
    assert "zq7canary" not in run.stdout + run.stderr + evidence


def test_the_operator_scans_by_spark_and_leaks_no_value(spark, tmp_path, task_log):  # noqa: F811
    """``engine="spark"`` on the operator (it joins the process's active session): the SSN/card/key canaries
    are found, and reach no task log, XCom, MLflow param/tag/metric/artifact or exception."""
    notes = [f"customer ssn {CANARIES['ssn']} on file", f"card {CANARIES['card']} expires soon",
             f"deploy key {CANARIES['aws_key']} in config"]
    data = lake(tmp_path / "lake", pa.table({"id": [1, 2, 3], "notes": notes}), 2, 2)
    (tmp_path / "run").mkdir()
    run = new_run(tmp_path / "run")
    op = DataPiiGateOperator(task_id="data_pii", data_path=str(data), policy_path=str(run["policy"]),
                             engine="spark")
    ctx = context(run, "data_pii")
    with pytest.raises(GatePolicyViolation) as caught:
        op.execute(ctx)
    pushed = ctx["ti"].pushed["data.pii"]
    assert pushed["metrics"]["engine"] == "spark" and {"us_ssn", "credit_card", "secret"} <= set(
        pushed["metrics"]["cells_by_type"])
    assert "which column 'notes' may not hold" in task_log(), "no task log captured"
    assert_no_canary_leaks(task_log(), caught.value, ctx, run, tmp_path)


def drift_table(rows: int, seed: int, shift: float = 0.0, weights=(0.4, 0.3, 0.2, 0.1)) -> pa.Table:
    rng = np.random.default_rng(seed)
    return pa.table({"age": rng.normal(40 + shift * 10, 10, rows),
                     "score": rng.integers(300, 850, rows),
                     "plan": rng.choice(["basic", "plus", "pro", "team"], rows, p=list(weights))})


@pytest.fixture(scope="module")
def drift_lakes(tmp_path_factory):
    root = tmp_path_factory.mktemp("drift")
    return {name: lake(root / name, drift_table(*spec[:2], **spec[2]), 4, 2000) for name, spec in {
        "reference": (30_000, 1, {}), "healthy": (20_000, 2, {}), "shifted": (20_000, 3, {"shift": 0.3}),
        "flat-plan": (20_000, 4, {"weights": (0.25, 0.25, 0.25, 0.25)})}.items()}


def test_sketches_by_spark_equal_the_arrow_sketches(spark, drift_lakes):
    source = open_source(drift_lakes["shifted"], 1000)
    by_spark, by_arrow = sketch_spark(spark, source), sketch_batches(source.batches())
    assert by_spark.rows == by_arrow.rows == 20_000
    assert sorted(by_spark.numeric) == sorted(by_arrow.numeric) == ["age", "day", "score"]
    cuts = np.linspace(20, 60, 41).tolist()
    for name in ("age", "score"):
        assert by_spark.numeric[name].n == by_arrow.numeric[name].n
        gap = np.abs(np.subtract(by_spark.numeric[name].get_cdf(cuts), by_arrow.numeric[name].get_cdf(cuts)))
        assert gap.max() <= 3 * rank_error()  # two randomised sketches, each within rank_error at 99 %
    assert _category_counts(by_spark.categorical["plan"]) == _category_counts(by_arrow.categorical["plan"])
    assert by_spark.nulls == by_arrow.nulls  # missing values are counted exactly on both paths (ADR 0059)
    assert WindowSketch.from_dict(by_spark.to_dict()).rows == by_spark.rows


@pytest.mark.parametrize(("window", "drifted"), [("healthy", []), ("shifted", ["age"]), ("flat-plan", ["plan"])])
def test_drift_by_spark_decides_as_the_arrow_path(spark, drift_lakes, window, drifted, tmp_path):
    data = default_policy()
    data["gates"]["monitor.drift"].update(columns=["age", "score", "plan"], demote_after=1, of_last=1)
    policy = parse_policy(data)
    args = (drift_lakes[window], drift_lakes["reference"], policy)
    by_spark = check_drift_sketched(*args, engine="spark", session=spark)
    by_arrow = check_drift_sketched(*args, engine="arrow")
    assert by_spark.metrics["drifted_columns"] == by_arrow.metrics["drifted_columns"] == drifted
    assert by_spark.status == by_arrow.status and by_spark.subject == by_arrow.subject
    for column in ("age", "score"):
        assert abs(by_spark.metrics["columns"][column]["statistic"]
                   - by_arrow.metrics["columns"][column]["statistic"]) <= 6 * rank_error()
    # category counts are exact on both paths; the Holm-adjusted p-value also ranks the numeric columns' p-values
    plan = [{k: v for k, v in result.metrics["columns"]["plan"].items() if k != "p_value_adjusted"}
            for result in (by_spark, by_arrow)]
    assert plan[0] == plan[1]


def test_a_failed_job_fails_closed_and_logs_no_value(tmp_path):
    """A data page corrupted behind an intact footer: the plan is made, the job fails inside Spark's reader (the
    CLI's own Spark, whose driver and executor logs are captured): exit 2, and no cell is quoted."""
    path = tmp_path / "lake" / "day=0" / "a.parquet"
    path.parent.mkdir(parents=True)
    pq.write_table(pa.table({"id": pa.array([f"{CANARY}-{i}" for i in range(1000)])}), path,
                   compression="none", use_dictionary=False)
    start = pq.ParquetFile(path).metadata.row_group(0).column(0).data_page_offset
    data = bytearray(path.read_bytes())
    data[start + 40:start + 60] = b"\xff" * 20  # value length prefixes, not the footer
    path.write_bytes(bytes(data))
    run = run_cli("check", "data.pii", str(tmp_path / "lake"), "--engine", "spark")
    assert run.returncode == 2, run.stdout[-2000:] + run.stderr[-2000:]
    assert "the Spark job failed" in run.stdout + run.stderr
    assert "zq7canary" not in run.stdout + run.stderr


def test_a_partitions_exception_reaches_spark_as_its_type_only(pii_lake):
    """What Spark would log of a partition that raised (a cast error quotes the cell): the type, no message.
    Run as the partition function, in this process: the failed job above fails in Spark's reader first."""
    plan = layout(open_source(pii_lake))

    def work(batches):
        raise ValueError(f"Failed to parse string: '{CANARY}'")

    job = _job(work, plan, plan.schema)
    with pytest.raises(RuntimeError, match="ValueError in a partition") as raised:
        next(job(iter([])))
    assert CANARY not in str(raised.value) and raised.value.__cause__ is None and raised.value.__suppress_context__


def test_the_spark_engine_refuses_what_is_not_parquet(spark, tmp_path):
    (tmp_path / "data.csv").write_text("a\n1\n")
    with pytest.raises(GateInputError, match="Parquet"):
        check_pii_spark(open_source(tmp_path / "data.csv"), POLICY, DIGEST, session=spark)


def test_no_java_fails_closed_before_spark_starts(pii_lake, tmp_path):
    run = run_cli("check", "data.pii", str(pii_lake), "--engine", "spark",
                  env={"JAVA_HOME": str(tmp_path / "no-such-jdk")})
    assert run.returncode == 2, run.stdout + run.stderr
    assert "Java 17" in run.stdout + run.stderr and "no-such-jdk" in run.stdout + run.stderr


def test_no_pyspark_fails_closed(pii_lake):
    """pyspark made unimportable in a fresh interpreter (a meta-path finder that refuses it)."""
    code = ("import sys\nclass Refuse:\n    def find_spec(self, name, *a):\n"
            "        if name.split('.')[0] == 'pyspark': raise ImportError(name)\n"
            "sys.meta_path.insert(0, Refuse())\n"
            "from mlgate.cli import main\nsys.exit(main())\n")
    run = subprocess.run([sys.executable, "-c", code, "check", "data.pii", str(pii_lake), "--engine", "spark"],
                         capture_output=True, text=True, cwd=ROOT, timeout=300,
                         env={**os.environ, "PYTHONPATH": str(ROOT / "src")})
    assert run.returncode == 2, run.stdout + run.stderr
    assert "pip install 'mlgate[spark]'" in run.stdout + run.stderr


def test_the_drift_cli_sketches_a_dataset(drift_lakes, tmp_path):
    """``--engine arrow`` (the path Spark must equal) from the CLI; a window bound is refused, not ignored."""
    out = tmp_path / "drift.json"
    run = run_cli("check", "monitor.drift", str(drift_lakes["shifted"]), "--reference",
                  str(drift_lakes["reference"]), "--engine", "arrow", "--json", str(out))
    result = json.loads(out.read_text())
    assert result["metrics"]["drifted_columns"] == ["age"] and result["metrics"]["reference"] == "sketch"
    assert run.returncode == {"passed": 0, "blocked": 1}[result["status"]], run.stderr
    refused = run_cli("check", "monitor.drift", str(drift_lakes["shifted"]), "--reference",
                      str(drift_lakes["reference"]), "--engine", "spark", "--since", "2026-01-01T00:00:00Z")
    assert refused.returncode == 2 and "--since/--until" in refused.stdout + refused.stderr
