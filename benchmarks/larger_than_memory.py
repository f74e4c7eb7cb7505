"""Data gates on data larger than memory: MB/s and peak RSS of ``data.pii``, ``data.expectations`` and
``monitor.drift`` streaming over a generated hive-partitioned Parquet dataset, beside the in-memory paths on
a dataset that fits (the same generator, one file).

Each measurement runs in its own child process; its peak RSS is the child's ``ru_maxrss`` (``os.wait4``).
MB/s is the dataset's size on disk (compressed Parquet) over the child's wall time. The acceptance is a peak
RSS of at most 2 GB per gate on the large dataset, whatever its size (``--gb 20`` for the issue's run;
check the free disk first; ``--gb 1 5 20`` measures its first 1 and 5 GB too). With ``--pg-rows`` a
PostgreSQL table of that many rows is generated in the database with ``generate_series`` and validated by
``data.expectations`` in place; rows that reached this process are counted from every statement's result. With
``--spark`` the same data.pii and monitor.drift run as Spark jobs (``--engine spark``, local[2]) on the same
datasets.

    OMP_NUM_THREADS=1 PYTHONPATH=src python benchmarks/larger_than_memory.py --gb 1 5 20 --pii-max-gb 1 --fit-mb 200
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from functools import cache
from pathlib import Path

GATES = ("data.pii", "data.expectations", "monitor.drift")
PII_TYPES = ("email", "phone", "us_ssn", "credit_card", "ip_address", "iban", "national_id")
SUITE = {"name": "ltm", "expectations": [
    {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "id"}},
    {"type": "expect_column_values_to_be_between", "kwargs": {"column": "age", "min_value": 0, "max_value": 120}},
    {"type": "expect_column_values_to_be_in_set", "kwargs": {"column": "plan",
                                                             "value_set": ["basic", "plus", "pro", "team"]}},
    {"type": "expect_column_mean_to_be_between", "kwargs": {"column": "income", "min_value": 1, "max_value": 1e9}},
    {"type": "expect_column_value_lengths_to_be_between", "kwargs": {"column": "email", "min_value": 5,
                                                                     "max_value": 80}},
]}
ROWS_PER_FILE = 250_000
ROW_GROUP_ROWS = 65_536
FEATURES = 48  # float32 model features beside the named columns: most of a training table's bytes
BYTES_PER_ROW = 230  # on disk, measured on this generator's files (snappy)


@cache
def _features(rows: int):
    """One draw of the numeric features; each file takes it rotated by its own offset (drawing 48 columns
    anew per file would make generation, not the gates, the benchmark's bottleneck on two cores)."""
    import numpy as np

    return np.random.default_rng(1).standard_normal((FEATURES, rows), dtype=np.float32)


def chunk(rows: int, seed: int, first_id: int):
    """One file's rows, vectorised: an id, ``FEATURES`` numeric features, age and income, a category, an
    e-mail column, free text of which some names a phone number, and 11-digit references."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.compute as pc

    rng = np.random.default_rng(seed)
    ids = pa.array(np.arange(first_id, first_id + rows, dtype=np.int64))
    users = pc.binary_join_element_wise("user", pc.cast(pc.bit_wise_and(ids, 0xFFFFF), pa.string()),
                                        "@example.org", "")
    words = np.array(["order", "shipped", "late", "refund", "thanks", "call", "me", "at", "box", "ok", "the", "a"])
    phrases = pa.array([" ".join(words[rng.integers(0, words.size, 8)]) for _ in range(1999)]
                       + ["call me at +1 415 555 0132 please"])
    picks = rng.integers(0, 1999, rows)
    picks[rng.random(rows) < 0.002] = 1999  # a few notes name a phone number
    features = np.roll(_features(rows), int(rng.integers(rows)), axis=1)
    plans = pa.array(["basic", "plus", "pro", "team"]).take(pa.array(rng.choice(4, rows, p=[0.4, 0.3, 0.2, 0.1])))
    return pa.table({
        "id": ids, "age": rng.normal(40, 12, rows).clip(0, 120), "income": rng.lognormal(10, 0.6, rows),
        **{f"f{i:02d}": features[i] for i in range(FEATURES)},
        "plan": plans, "email": users, "notes": phrases.take(pa.array(picks)),
        "reference": pc.cast(pa.array(rng.integers(10**10, 10**11, rows)), pa.string()),
    })


def _write(table, path: Path) -> None:
    import pyarrow.parquet as pq

    # dictionary pages only where values repeat: trying them on every float column doubles the write time
    pq.write_table(table, path, row_group_size=ROW_GROUP_ROWS, use_dictionary=["plan", "notes"])


def generate(root: Path, megabytes: float, partitioned: bool) -> Path:
    """Files of ``ROWS_PER_FILE`` rows in row groups of ``ROW_GROUP_ROWS`` until the dataset reaches
    ``megabytes`` on disk (one file when not partitioned: the dataset that fits)."""
    root.mkdir(parents=True, exist_ok=True)
    if not partitioned:
        rows = max(10_000, int(megabytes * 1e6 / BYTES_PER_ROW))
        _write(chunk(rows, 0, 0), root / "fits.parquet")
        return root / "fits.parquet"
    written, index = 0, 0
    while written < megabytes * 1e6:
        folder = root / f"day=2026-11-{index % 28 + 1:02d}"
        folder.mkdir(exist_ok=True)
        path = folder / f"part-{index:05d}.parquet"
        _write(chunk(ROWS_PER_FILE, index, index * ROWS_PER_FILE), path)
        written += path.stat().st_size
        index += 1
    return root


def prefix(root: Path, large: Path, megabytes: float) -> Path:
    """The first files of ``large`` up to ``megabytes``, hard-linked (no copy): the smaller datasets."""
    written = 0
    for path in sorted(large.rglob("*.parquet"), key=lambda p: p.name):
        if written >= megabytes * 1e6:
            break
        target = root / path.relative_to(large)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.link(path, target)
        written += path.stat().st_size
    return root


def size_mb(path: Path) -> float:
    files = [path] if path.is_file() else [p for p in path.rglob("*.parquet")]
    return sum(p.stat().st_size for p in files) / 1e6


# --- the children -----------------------------------------------------------------------------------


def _policy():
    import yaml

    from mlgate.core.policy import parse_policy
    from mlgate.core.shipped import shipped

    return parse_policy(yaml.safe_load(shipped("policies/default.yaml").read_text()))


def child(gate: str, mode: str, data: str, reference: str, workdir: Path) -> dict:
    policy = _policy()
    if gate == "data.pii":
        from mlgate.gates.data.pii import PiiPolicy

        config = PiiPolicy(types=PII_TYPES, action="report", allowed={"email": ("email",)})
        if mode == "spark":
            from mlgate.gates.data.pii_spark import check_pii_spark
            from mlgate.gates.data.sources import open_source

            result = check_pii_spark(open_source(data), config, policy.digest)
        elif mode == "stream":
            from mlgate.gates.data.pii_stream import check_pii_source
            from mlgate.gates.data.sources import open_source

            result = check_pii_source(open_source(data), config, policy.digest)
        else:
            from mlgate.gates.data.pii import check_pii

            result = check_pii(Path(data), config, policy.digest)
        return {"status": result.status.value, "rows": result.metrics["rows"],
                "cells_by_type": {t: c for t, c in result.metrics["cells_by_type"].items() if c}}
    if gate == "data.expectations":
        from sqlalchemy import event
        from sqlalchemy.engine import Engine

        from mlgate.gates.data.expectations import check_expectations

        suite = workdir / "suite.json"
        suite.write_text(json.dumps(SUITE))
        returned: list[int] = []  # rows each statement sent to this process (none for DDL: a temp table stays there)

        def count(conn, cursor, statement, parameters, context, executemany):
            returned.append(max(cursor.rowcount, 0) if cursor.description is not None else 0)

        event.listen(Engine, "after_cursor_execute", count)
        try:
            result = check_expectations(data, policy, suite, push_down=mode == "stream")
        finally:
            event.remove(Engine, "after_cursor_execute", count)
        return {"status": result.status.value, "evaluated": result.metrics["evaluated"],
                "engine": result.metrics["engine"], "failed": result.metrics["failed"],
                **({"statements": len(returned), "rows_to_client": sum(returned)} if returned else {})}
    from mlgate.gates.monitor.policies import DriftPolicy

    config = DriftPolicy(columns=("age", "income", "plan"))
    columns = ["age", "income", "plan"]
    if mode == "spark":
        from mlgate.gates.data.sources import open_source
        from mlgate.gates.data.spark_source import spark_session
        from mlgate.gates.monitor.sketches import check_drift_sketch
        from mlgate.gates.monitor.sketches_spark import sketch_spark

        with spark_session() as spark:
            current = sketch_spark(spark, open_source(data), columns)
            ref = sketch_spark(spark, open_source(reference), columns)
        result = check_drift_sketch(current, ref, config, policy.digest)
    elif mode == "stream":
        from mlgate.gates.data.sources import open_source
        from mlgate.gates.monitor.sketches import check_drift_sketch, sketch_batches

        current = sketch_batches(open_source(data).batches(columns), columns)
        ref = sketch_batches(open_source(reference).batches(columns), columns)
        result = check_drift_sketch(current, ref, config, policy.digest)
    else:
        import pandas as pd

        from mlgate.gates.monitor.drift import check_drift

        result = check_drift(pd.read_parquet(data, columns=columns), pd.read_parquet(reference, columns=columns),
                             config, policy.digest)
    return {"status": result.status.value, "rows": result.metrics["rows"],
            "drifted": result.metrics["drifted_columns"]}


def measure(gate: str, mode: str, data: Path, reference: Path, workdir: Path, timeout: float) -> dict:
    command = [sys.executable, __file__, "--child", gate, mode, str(data), str(reference), str(workdir)]
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        out, err = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        return {"gate": gate, "mode": mode, "error": f"timed out after {timeout:.0f} s"}
    seconds = time.perf_counter() - start
    # communicate() reaped the child; its rusage is in RUSAGE_CHILDREN as the max over children so far,
    # so each child reports its own peak too
    lines = out.strip().splitlines()
    if process.returncode != 0 or not lines:
        return {"gate": gate, "mode": mode, "error": err.strip().splitlines()[-1:] or "no output"}
    report = json.loads(lines[-1])
    megabytes = size_mb(data) if not str(data).startswith("postgres") else 0.0
    return {"gate": gate, "mode": mode, "MB": round(megabytes, 1), "seconds": round(seconds, 1),
            "MB/s": round(megabytes / seconds, 2) if megabytes else None,
            "peak_rss_MB": report.pop("peak_rss_MB"), **report}


def pg_table(rows: int, dsn: str, workdir: Path, gates: list[str], timeout: float) -> list[dict]:
    """A ``rows``-row table generated in PostgreSQL, each gate in a child (its peak RSS): validated in place
    (the rows each statement returned to the child, counted) and scanned by ``data.pii`` in record batches."""
    import psycopg


    database = "mlgate_ltm_bench"
    with psycopg.connect(f"{dsn}/postgres", autocommit=True) as admin:
        admin.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")
        admin.execute(f"CREATE DATABASE {database}")
    uri = f"{dsn}/{database}"
    try:
        start = time.perf_counter()
        with psycopg.connect(uri, autocommit=True) as conn:
            conn.execute(
                "CREATE TABLE big AS SELECT g::bigint AS id, 20 + (g % 60)::float8 AS age, "
                "(1000 + g % 100000)::float8 AS income, (ARRAY['basic','plus','pro','team'])[1 + g % 4] AS plan, "
                f"'user' || g || '@example.org' AS email FROM generate_series(1, {rows}) g")
            conn.execute("ANALYZE big")
        generated = time.perf_counter() - start
        measured = []
        if "data.pii" in gates:
            row = measure("data.pii", "stream", f"{uri}?table=big", "", workdir, timeout)
            measured.append({**row, "dataset": f"postgresql, {rows:,} rows", "generate_seconds": round(generated, 1)})
        if "data.expectations" in gates:
            row = measure("data.expectations", "stream", f"{uri}?table=big", "", workdir, timeout)
            measured.append({**row, "dataset": f"postgresql, {rows:,} rows", "generate_seconds": round(generated, 1)})
        return measured
    finally:
        with psycopg.connect(f"{dsn}/postgres", autocommit=True) as admin:
            admin.execute(f"DROP DATABASE IF EXISTS {database} WITH (FORCE)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--gb", type=float, nargs="+", default=[0.25],
                        help="sizes of the partitioned dataset on disk: the largest is generated, the smaller "
                        "ones are its first files (hard links)")
    parser.add_argument("--pii-max-gb", type=float, default=None, help="run data.pii only up to this size "
                        "(it is the slow gate)")
    parser.add_argument("--fit-mb", type=float, default=40, help="size of the dataset that fits (one file)")
    parser.add_argument("--root", default="/tmp/mlgate-larger-than-memory", help="where the datasets go")
    parser.add_argument("--reuse", action="store_true", help="measure the datasets already under --root")
    parser.add_argument("--pg-rows", type=int, default=0, help="also validate (data.expectations) and scan (data.pii) "
                        "a generated table of this many rows")
    parser.add_argument("--pg", default="postgresql://postgres@127.0.0.1:5432", help="PostgreSQL server")
    parser.add_argument("--timeout", type=float, default=3600, help="seconds per measurement")
    parser.add_argument("--keep", action="store_true", help="keep the generated datasets")
    parser.add_argument("--gates", nargs="+", default=list(GATES), choices=GATES)
    parser.add_argument("--spark", action="store_true", help="also data.pii and monitor.drift by a Spark job "
                        "(local[2]); peak RSS is the Python driver's, not the JVM's or the workers'")
    args = parser.parse_args()
    root = Path(args.root)
    sizes = sorted(args.gb)
    if not args.reuse:
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True)
        free = shutil.disk_usage(root).free / 1e9
        if sizes[-1] * 1.2 > free:
            sys.exit(f"{sizes[-1]} GB asked, {free:.0f} GB free under {root}")
        start = time.perf_counter()
        generate(root / "large", sizes[-1] * 1000, partitioned=True)
        generate(root / "fits", args.fit_mb, partitioned=False)
        print(f"generated {size_mb(root / 'large'):.0f} MB partitioned and {args.fit_mb:.0f} MB in one file in "
              f"{time.perf_counter() - start:.0f} s", file=sys.stderr)
    fits = root / "fits" / "fits.parquet"
    datasets = {}
    for gb in sizes[:-1]:
        shutil.rmtree(root / f"first-{gb:g}GB", ignore_errors=True)
        datasets[gb] = prefix(root / f"first-{gb:g}GB", root / "large", gb * 1000)
    datasets[sizes[-1]] = root / "large"
    rows = []
    try:
        for gate in args.gates:
            runs = [("in-memory", fits, "fits"), ("stream", fits, "fits")]
            large = [(f"{gb:g} GB", data) for gb, data in datasets.items()
                     if gate != "data.pii" or args.pii_max_gb is None or gb <= args.pii_max_gb]
            runs += [("stream", data, name) for name, data in large]
            if args.spark and gate != "data.expectations":
                runs += [("spark", fits, "fits"), *(("spark", data, name) for name, data in large)]
            for mode, data, name in runs:
                row = measure(gate, mode, data, fits, root, args.timeout)
                row["dataset"] = name
                print(json.dumps(row), flush=True)
                rows.append(row)
        if args.pg_rows:
            for row in pg_table(args.pg_rows, args.pg, root, args.gates, args.timeout):
                print(json.dumps(row), flush=True)
                rows.append(row)
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    large_rows = [r for r in rows if r.get("dataset") not in ("fits", None)]
    ok = all("error" not in r and r["peak_rss_MB"] <= 2048 for r in large_rows)
    print(f"acceptance (peak RSS <= 2 GB on the partitioned datasets measured): {'holds' if ok else 'FAILS'}")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        import resource

        gate, mode, data, reference, workdir = sys.argv[2:7]
        report = child(gate, mode, data, reference, Path(workdir))
        report["peak_rss_MB"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
        print(json.dumps(report))
    else:
        os.environ.setdefault("OMP_NUM_THREADS", "1")
        main()
