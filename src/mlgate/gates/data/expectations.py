"""``data.expectations``: validate CSV or Parquet data against a Great Expectations 1.x suite.

GX's own result JSON is kept as evidence, minus the unexpected *values* it lists: those can be PII or
secrets, and evidence never holds them (counts, percentages and row indexes stay). A suite that cannot
apply to the data (a missing column, an expectation GX cannot build) is a configuration error quoting GX's
reason, not a data violation; GX's own log (hundreds of INFO lines, tracebacks of what mlgate reports
itself) stays out of the task log.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlgate.core.digests import file_digest
from mlgate.core.errors import GateInputError, ToolError
from mlgate.core.policy import Policy
from mlgate.core.results import Finding, GateResult, Severity, Status, Subject, ToolInfo, utcnow
from mlgate.gates.data.integrity import build_manifest, table_manifest

if TYPE_CHECKING:
    import pandas as pd

GATE = "data.expectations"
_VALUE_KEYS = ("partial_unexpected_list", "partial_unexpected_counts", "unexpected_list",
               "details", "observed_value")


class _GxLog(logging.Handler):
    """Keeps GX's error messages (to quote them); its warnings pass on as one line, without traceback."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.errors: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.ERROR:
            self.errors.append(record.getMessage())
        else:
            logging.getLogger(__name__).warning("great_expectations: %s", record.getMessage()[:300])


@contextmanager
def gx_log() -> Iterator[_GxLog]:
    """Route GX's logger through ``_GxLog`` for the duration (its INFO chatter is dropped)."""
    logger = logging.getLogger("great_expectations")
    handler, saved = _GxLog(), (logger.level, logger.propagate)
    logger.setLevel(logging.WARNING)
    logger.propagate = False
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(saved[0])
        logger.propagate = saved[1]


def read_table(path: Path) -> pd.DataFrame:
    """CSV or Parquet, or a directory of them (concatenated in name order): the files Arrow reads as the
    dataset (``dataset_files``), not the ``_``/``.`` files it skips nor fewer than its sub-directories."""
    import pandas as pd

    from mlgate.gates.data.sources import dataset_files

    files = dataset_files(path) if path.is_dir() else [path]
    readers = {".csv": pd.read_csv, ".parquet": pd.read_parquet, ".pq": pd.read_parquet}
    unsupported = [f.name for f in files if f.suffix.lower() not in readers]
    if not files or unsupported:
        raise GateInputError(f"{path}: expected CSV or Parquet files, found {unsupported or 'none'}")
    try:
        frames = [readers[f.suffix.lower()](f) for f in files]
    except Exception as exc:  # pandas raises many types for a malformed file
        raise GateInputError(f"{path}: cannot read the data: {type(exc).__name__}: {exc}") from None
    for file in (f for f in files if f.suffix.lower() == ".csv"):
        _require_unique_header(file)
    return frames[0] if len(frames) == 1 else pd.concat(frames, ignore_index=True)


def _require_unique_header(path: Path) -> None:
    """pandas renames a CSV header's repeated name (``x``, ``x.1``), so the gates would judge the first ``x``
    and never see the other, where Arrow refuses the file: refused here as well (redteam7)."""
    import csv

    with path.open(newline="", encoding="utf-8-sig") as handle:  # pandas read it as UTF-8 just before
        header = next(csv.reader(handle), [])
    if repeated := sorted({name for name in header if header.count(name) > 1}):
        raise GateInputError(f"{path}: column name(s) {repeated} appear more than once in the CSV header")


def load_suite(path: Path) -> Any:
    """The suite, refusing any expectation GX could not build: GX logs and *drops* those (fails open)."""
    try:
        data = json.loads(path.read_text())
    except OSError as exc:
        raise GateInputError(f"{path}: cannot read the expectation suite: {exc.strerror}") from None
    except ValueError as exc:
        raise GateInputError(f"{path}: not a valid GX expectation suite: {type(exc).__name__}: {exc}") from None
    with gx_log() as log:
        from great_expectations.core import ExpectationSuite

        try:
            suite = ExpectationSuite(**data)
        except Exception as exc:
            raise GateInputError(f"{path}: not a valid GX expectation suite: {type(exc).__name__}: {exc}") from None
    declared = [e.get("type") for e in data.get("expectations", [])]
    loaded = [e.expectation_type for e in suite.expectations]
    if len(loaded) != len(declared):
        dropped = sorted(set(declared) - set(loaded)) or declared
        reason = f"; GX says: {' | '.join(m[:300] for m in log.errors)}" if log.errors else ""
        raise GateInputError(f"{path}: not a valid GX expectation suite: {len(declared) - len(loaded)} "
                             f"expectation(s) could not be built ({dropped}); unknown type or invalid arguments"
                             + reason)
    return suite


def _withhold_quoted(text: str, names: set[str]) -> str:
    """``text`` with the span from its first to its last quote withheld, unless everything quoted in it is a
    name from the suite: an engine's error quotes the cell it could not convert (DuckDB: ``Could not convert
    string '…' to INT32``), and a cell may hold quotes and line breaks itself."""
    quoted = re.findall(r"'([^']*)'|\"([^\"]*)\"", text)
    if all(q in names for pair in quoted for q in pair if q) and (text.count("'") + text.count('"')) % 2 == 0:
        return text
    first = min(i for i in (text.find("'"), text.find('"')) if i >= 0)
    return text[:first] + "[values withheld]" + text[max(text.rfind("'"), text.rfind('"')) + 1:]


def redact(result_json: dict[str, Any]) -> dict[str, Any]:
    """GX's validation result without any observed or unexpected values, in its results or its errors."""
    clean = json.loads(json.dumps(result_json, default=str))
    for item in clean.get("results", []):
        for key in _VALUE_KEYS:
            item.get("result", {}).pop(key, None)
        kwargs = item.get("expectation_config", {}).get("kwargs", {})
        names = {v for v in kwargs.values() if isinstance(v, str)} | {
            v for vs in kwargs.values() if isinstance(vs, list) for v in vs if isinstance(v, str)}
        info = item.get("exception_info") or {}
        for raised in [info, *(i for i in info.values() if isinstance(i, dict))]:
            for key in ("exception_message", "exception_traceback"):
                if isinstance(raised.get(key), str):
                    raised[key] = _withhold_quoted(raised[key], names)
    clean.get("meta", {}).pop("batch_markers", None)
    return clean


def validate(frame: pd.DataFrame, suite: Any) -> dict[str, Any]:
    """Run the suite on an ephemeral GX context; returns GX's result as JSON."""
    with gx_log():
        import great_expectations as gx
        from great_expectations.data_context.types.base import ProgressBarsConfig

        context = gx.get_context(mode="ephemeral")
        context.variables.progress_bars = ProgressBarsConfig(globally=False)
        asset = context.data_sources.add_pandas("mlgate").add_dataframe_asset("data")
        batch = asset.add_batch_definition_whole_dataframe("all").get_batch(batch_parameters={"dataframe": frame})
        return batch.validate(suite, result_format="SUMMARY").to_json_dict()


def inapplicable(result_json: dict[str, Any]) -> list[str]:
    """The expectations GX could not evaluate on this data (a missing column, a wrong type), with GX's
    reason: the suite does not fit the data, which is a configuration error, not a violation."""
    reasons = []
    for item in result_json.get("results", []):
        info = item.get("exception_info") or {}
        raised = [info] if "raised_exception" in info else [i for i in info.values() if isinstance(i, dict)]
        messages = sorted({str(i.get("exception_message"))[:200] for i in raised if i.get("raised_exception")})
        if messages:
            config = item.get("expectation_config", {})
            column = config.get("kwargs", {}).get("column")
            reasons.append(f"{config.get('type', 'unknown')}{f' (column {column!r})' if column else ''}: "
                           + " | ".join(messages))
    return reasons


def check_shape(result_json: Any, expectations: int) -> None:
    """GX's result must hold one result per expectation of the suite: a result without them would read
    as "nothing failed" and pass data nothing was checked against (fail closed)."""
    results = result_json.get("results") if isinstance(result_json, dict) else None
    readable = isinstance(results, list) and all(
        isinstance(item, dict) and isinstance(item.get("success"), bool) for item in results)
    if not readable or len(results) != expectations:
        raise ToolError(f"great_expectations returned malformed output: "
                        f"{len(results) if readable else 'no readable'} expectation results for a suite of "
                        f"{expectations}")


def failed_expectations(result_json: dict[str, Any]) -> list[Finding]:
    findings = []
    for item in result_json.get("results", []):
        if item.get("success"):
            continue
        config = item.get("expectation_config", {})
        kwargs = {k: v for k, v in config.get("kwargs", {}).items() if k != "batch_id"}
        column = kwargs.pop("column", "")
        stats = item.get("result", {})
        if "unexpected_count" in stats:
            detail = (f"{stats['unexpected_count']} of {stats.get('element_count', '?')} values unexpected "
                      f"({stats.get('unexpected_percent', 0):.2f}%)")
        else:
            detail = "failed"
        findings.append(Finding(id=f"{GATE}.{config.get('type', 'unknown')}", severity=Severity.HIGH,
                                message=f"{detail}; {kwargs}" if kwargs else detail,
                                location=f"column {column}" if column else ""))
    return findings


def check_expectations(data: Path | str, policy: Policy, suite_path: Path | None = None,
                       report_dir: Path | None = None, push_down: bool = False) -> GateResult:
    """Validate ``data`` with the policy's suite (or ``suite_path``); writes GX's JSON to ``report_dir``.

    A table (``postgresql://…?table=``) is always validated in the database; with ``push_down`` a Parquet
    file or dataset is validated by DuckDB over its files (``gx_sql``): nothing is read into memory."""
    started, clock = utcnow(), time.perf_counter()
    config = policy.expectations() if suite_path is None else None
    suite_path = Path(suite_path) if suite_path else policy.resolve(config.suite)
    max_failed = config.max_failed_expectations if config else 0
    suite = load_suite(suite_path)
    if not suite.expectations:
        raise GateInputError(f"{suite_path}: the suite holds no expectations; an empty suite proves nothing")
    from mlgate.gates.data.sources import is_table, open_source

    kind = "table" if is_table(str(data)) else "dataset"
    if kind == "table" or push_down:
        from mlgate.gates.data.gx_sql import validate_source

        source, algorithm = open_source(data), policy.section("data.integrity").algorithm
        with source.pinned() as pinned:  # a table's digest and GX's queries in one snapshot
            data_version = (table_manifest(pinned, algorithm) if pinned.kind == "table"
                            else build_manifest(data, algorithm)).digest
            raw, data = validate_source(pinned, suite), source.label
    else:
        data = Path(data)
        data_version = build_manifest(data, policy.section("data.integrity").algorithm).digest
        raw = validate(read_table(data), suite)
    check_shape(raw, len(suite.expectations))
    result_json = redact(raw)
    findings = failed_expectations(result_json)
    artifacts = ()
    if report_dir is not None:
        report_dir.mkdir(parents=True, exist_ok=True)
        report = report_dir / "data.expectations.gx.json"
        report.write_text(json.dumps(result_json, indent=2))
        artifacts = (str(report),)
    if reasons := inapplicable(result_json):
        raise GateInputError(f"{suite_path} cannot apply to {data}: {len(reasons)} expectation(s) could not be "
                             "evaluated: " + "; ".join(reasons[:5]))
    stats = result_json.get("statistics", {})
    return GateResult(
        gate=GATE,
        status=Status.BLOCKED if len(findings) > max_failed else Status.PASSED,
        subject=Subject("dataset", str(data), data_version),
        policy_digest=policy.digest,
        tool=ToolInfo("great_expectations", _gx_version()),
        started_at=started,
        finished_at=utcnow(),
        metrics={"evaluated": stats.get("evaluated_expectations", 0), "failed": len(findings),
                 "success_percent": stats.get("success_percent") or 0.0,
                 "seconds": round(time.perf_counter() - clock, 3),
                 "engine": "postgresql" if kind == "table" else "duckdb" if push_down else "pandas"},
        thresholds={"max_failed_expectations": max_failed, "suite": suite.name,
                    "suite_digest": file_digest(suite_path)},
        findings=tuple(findings),
        artifacts=artifacts,
    )


def _gx_version() -> str:
    from importlib.metadata import version

    return version("great_expectations")
