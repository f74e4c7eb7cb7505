"""Operators for the monitoring gates: ``monitor.drift``, ``monitor.confidence`` and ``monitor.queries``.

Each reads one window of the inference log: ``[window_start, window_end)`` when given (templated,
ISO-8601 with a time zone), else the ``window_hours`` ending at the DAG run's ``data_interval_end``, or
now when the run has none (an API-triggered run has no logical date, so nothing here uses ``ds``).
An alert is a blocked gate, i.e. a failed task; ``IncidentRespondOperator`` downstream responds to it.
The training reference of drift and queries is, by default, only the DP profile the served version's verified
attestation vouches for (ADR 0060).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlgate.core.errors import GateInputError
from mlgate.core.results import GateResult, Subject
from mlgate.operators.base import BaseGateOperator

if TYPE_CHECKING:
    from airflow.sdk import Context

    from mlgate.gates.monitor.monitoring import AttestedReference


class MonitorGateOperator(BaseGateOperator):
    """A gate over a window of the inference log at ``inference_log_path`` (a file or a directory)."""

    template_fields: Sequence[str] = (*BaseGateOperator.template_fields, "inference_log_path", "window_start",
                                      "window_end")

    def __init__(self, *, inference_log_path: str | None = None, window_start: str | None = None,
                 window_end: str | None = None, window_hours: float = 1.0, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.inference_log_path = inference_log_path
        self.window_start = window_start
        self.window_end = window_end
        self.window_hours = window_hours

    def subject(self) -> Subject:
        return Subject("dataset", str(self.inference_log_path), "unknown")

    def window(self, context: Context) -> tuple[datetime, datetime]:
        from mlgate.gates.monitor.monitoring import window_bounds

        default_end = context.get("data_interval_end") or datetime.now(UTC)
        return window_bounds(self.window_start or None, self.window_end or None, default_end=default_end,
                             hours=float(self.window_hours))

    def log_path(self) -> Path:
        if not self.inference_log_path:
            raise GateInputError(f"{self.gate_id}: inference_log_path is required")
        return Path(self.inference_log_path)

    def attested_reference(self) -> AttestedReference | None:
        """The digest the training reference must have: the one the verified attestation of the version the
        policy's alias serves records (ADR 0060). ``None`` (any reference, recorded as unverified) only when
        the gate's policy section says ``reference: unverified`` and the signer trusts that policy: whoever
        triggers the DAG names its policy file, and must not switch verification off with it."""
        from mlgate.gates.monitor.served import served_reference
        from mlgate.trust.trusted_policy import trust_policy

        if self.policy.section(self.gate_id).reference == "unverified":
            trust_policy(self.policy, self.signing_keys)
            return None
        return served_reference(self.mlflow_hook.get_conn(), self.policy, self.signing_keys)


class MonitorDriftGateOperator(MonitorGateOperator):
    """Data and concept drift of the window against ``reference_path``: the ``data.privacy`` gate's DP
    profile attested for the served version (``attested_reference``; a reference profile JSON, a sketch or a
    CSV/Parquet sample only under ``reference: unverified``). ``current_path`` (a CSV/Parquet table
    taken whole) replaces the inference-log window when given. Each window's outcome is appended to
    ``history_path`` (default ``$MLGATE_HOME/monitor/drift_history.jsonl``): drift blocks, and so demotes,
    only once it persists over windows or is severe (policy ``demote_after`` of ``of_last``). With ``engine``
    ``arrow`` or ``spark`` the ``current_path`` table (and a table reference) is sketched instead of read
    into memory: in record batches, or per partition of a Spark job on ``spark_master`` (ADR 0049)."""

    gate_id = "monitor.drift"
    template_fields: Sequence[str] = (*MonitorGateOperator.template_fields, "current_path", "reference_path",
                                      "history_path")

    def __init__(self, *, reference_path: str, current_path: str | None = None, history_path: str | None = None,
                 engine: str = "pandas", spark_master: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.reference_path = reference_path
        self.current_path = current_path
        self.history_path = history_path
        self.engine = engine
        self.spark_master = spark_master

    def subject(self) -> Subject:
        return Subject("dataset", str(self.current_path or self.inference_log_path), "unknown")

    def check(self, context: Context, workdir: Path) -> GateResult:
        from mlgate.gates.monitor.monitoring import check_drift_files

        if bool(self.current_path) == bool(self.inference_log_path):
            raise GateInputError("monitor.drift: give exactly one of current_path and inference_log_path")
        from mlgate.trust.registry import mlgate_home

        history = self.history_path or mlgate_home() / "monitor" / "drift_history.jsonl"
        if self.engine != "pandas":
            from mlgate.gates.monitor.monitoring import check_drift_sketched

            if not self.current_path:
                raise GateInputError(f"monitor.drift: engine {self.engine!r} sketches a table: give current_path")
            return check_drift_sketched(self.current_path, self.reference_path, self.policy, self.engine,
                                        self.spark_master, history=history, attested=self.attested_reference())
        current, start, end = (self.current_path, None, None) if self.current_path else (
            self.log_path(), *self.window(context))
        return check_drift_files(current, self.reference_path, self.policy, start, end, history=history,
                                 attested=self.attested_reference())


class MonitorConfidenceGateOperator(MonitorGateOperator):
    """A spike in the share of low-confidence predictions in the window (one-sided binomial test) against
    the baseline measured on the model's held-out predictions in validation: read from the verified
    attestation of ``model_uri`` (default: the version the policy's alias serves), or from ``baseline_path``
    (``ConfidenceBaseline.to_dict()`` JSON). No baseline, or an attestation that does not verify: error."""

    gate_id = "monitor.confidence"
    template_fields: Sequence[str] = (*MonitorGateOperator.template_fields, "baseline_path", "model_uri")

    def __init__(self, *, baseline_path: str | None = None, model_uri: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.baseline_path = baseline_path
        self.model_uri = model_uri

    def check(self, context: Context, workdir: Path) -> GateResult:
        from mlgate.gates.monitor.monitoring import check_confidence_files, load_confidence_baseline
        from mlgate.gates.monitor.served import served_baseline
        from mlgate.hooks.signing import SigningKeyHook

        baseline = load_confidence_baseline(self.baseline_path) if self.baseline_path else served_baseline(
            self.mlflow_hook.get_conn(), self.policy, SigningKeyHook().get_conn(), self.model_uri or None)
        return check_confidence_files(self.log_path(), self.policy, *self.window(context), baseline=baseline)


class MonitorQueriesGateOperator(MonitorGateOperator):
    """Clients with anomalous query volume (``baseline``: client id -> expected queries per window),
    extraction-like query sequences (PRADA, distances scaled against the training ``reference_path``,
    required and checked as for ``monitor.drift``), and out-of-distribution queries counted per client across
    windows in ``state_path`` (default ``$MLGATE_HOME/monitor/extraction_state.json``) and pooled across keys.
    ``per_window=False`` keeps only that cumulative evidence (the 5-minute ``model_query_watch``: per-window
    tests multiply their false alarms over short windows)."""

    gate_id = "monitor.queries"
    template_fields: Sequence[str] = (*MonitorGateOperator.template_fields, "reference_path", "state_path")

    def __init__(self, *, reference_path: str, baseline: dict[str, float] | None = None,
                 state_path: str | None = None, per_window: bool = True, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.baseline = baseline
        self.per_window = per_window
        self.reference_path = reference_path
        self.state_path = state_path

    def check(self, context: Context, workdir: Path) -> GateResult:
        from mlgate.gates.monitor.monitoring import check_queries_files
        from mlgate.trust.registry import mlgate_home

        state = self.state_path or mlgate_home() / "monitor" / "extraction_state.json"
        return check_queries_files(self.log_path(), self.policy, *self.window(context), baseline=self.baseline,
                                   reference=self.reference_path or None, state=state,
                                   per_window=self.per_window, attested=self.attested_reference())
