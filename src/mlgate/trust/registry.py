"""MLflow as the evidence store: log GateResults, read them back, digest models, read aliases.

MLflow is imported inside functions (ADR 0004); every MLflow failure becomes a ``ToolError`` that names
the tracking URI, so an unreachable server fails the task retryably and never promotes.
"""

from __future__ import annotations

import math
import os
import re
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from mlgate.core.digests import file_digests, json_digest
from mlgate.core.errors import EvidenceError, GateInputError, ToolError
from mlgate.core.evidence import read_evidence, write_evidence
from mlgate.core.redaction import redact_uri
from mlgate.core.results import GateResult

if TYPE_CHECKING:
    from mlflow import MlflowClient

T = TypeVar("T")
PIPELINE_TAG = "mlgate.pipeline"
TAG_DATA_DIGEST = "mlgate.data_digest"
TAG_MODEL_DIGEST = "mlgate.model_digest"
TAG_CODE_DIGEST = "mlgate.code_digest"
SIGNED_SUFFIX = ".dsse.json"  # gates/<gate>.dsse.json: the result's signed envelope (trust.gate_evidence)
TAG_LIMIT = 4900  # MLflow caps tag values at 5000 characters
RUN_SETTLE_S = 1.0  # how long after a keyed run starts its racing twins may still be committing (keyed_run)
_METRIC_UNSAFE = re.compile(r"[^\w.\- ]")


def mlgate_home() -> Path:
    """``MLGATE_HOME``, else ``~/.mlgate``: one store wherever the command runs (ADR 0027), never ``./.mlgate``."""
    return Path(os.environ.get("MLGATE_HOME") or Path.home() / ".mlgate").absolute()


def default_tracking_uri() -> str:
    """``MLFLOW_TRACKING_URI`` when set, else an embedded SQLite store under ``MLGATE_HOME``."""
    if uri := os.environ.get("MLFLOW_TRACKING_URI"):
        return uri
    home = mlgate_home()
    home.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{home / 'mlflow.db'}"


@contextmanager
def mlflow_errors(action: str, uri: str) -> Iterator[None]:
    """Turn any MLflow or network failure into a ToolError naming the action and the server."""
    try:
        yield
    except (ToolError, EvidenceError):
        raise
    except Exception as exc:
        raise ToolError(f"MLflow at {redact_uri(uri)} failed while {action}: {type(exc).__name__}: "
                        f"{str(exc)[:300]}") from exc


def call(client: MlflowClient, action: str, fn: Callable[[], T]) -> T:
    with mlflow_errors(action, client.tracking_uri):
        return fn()


def get_or_create_experiment(client: MlflowClient, name: str) -> str:
    experiment = call(client, "reading the experiment", lambda: client.get_experiment_by_name(name))
    if experiment is not None:
        return experiment.experiment_id
    location = None
    if client.tracking_uri.startswith("sqlite:"):
        location = (mlgate_home() / "mlartifacts").as_uri()
    from mlflow.exceptions import MlflowException

    try:
        return client.create_experiment(name, location)
    except MlflowException as exc:  # parallel gates of one DAG run race to create it: take the winner's
        if exc.error_code != "RESOURCE_ALREADY_EXISTS":
            raise ToolError(f"MLflow at {client.tracking_uri} failed while creating the experiment: {exc}") from exc
    except Exception as exc:
        raise ToolError(f"MLflow at {client.tracking_uri} failed while creating the experiment: "
                        f"{type(exc).__name__}: {str(exc)[:300]}") from exc
    return call(client, "reading the experiment", lambda: client.get_experiment_by_name(name).experiment_id)


def keyed_run(client: MlflowClient, experiment: str, tag: str, key: str, *, create: bool = True) -> str | None:
    """The one MLflow run of ``experiment`` tagged ``tag = key``; created on first use (``None`` when absent
    and ``create`` is false).

    Parallel gates of one DAG run race to create it, and MLflow has no compare-and-set: every writer that
    found none creates one. All converge on the oldest (start time, then run id) of the runs that exist
    ``RUN_SETTLE_S`` after the oldest one started: a writer that arrives earlier waits until then, so a
    racing writer's run committed a moment later is not missed (its clock must be within that of ours).
    """
    if not create:
        found = call(client, "reading the experiment", lambda: client.get_experiment_by_name(experiment))
        if found is None:
            return None
    experiment_id = get_or_create_experiment(client, experiment)
    query = f"tags.`{tag}` = '{key}'"

    def search() -> list[Any]:
        return client.search_runs([experiment_id], query, order_by=["attributes.start_time ASC"])

    runs = call(client, f"searching the run tagged {tag}", search)
    if not runs and create:
        call(client, f"creating the run tagged {tag}",
             lambda: client.create_run(experiment_id, tags={tag: key}, run_name=key.replace("/", "__")))
        runs = call(client, f"searching the run tagged {tag}", search)
    if not runs:
        return None
    settled_at = min(r.info.start_time for r in runs) / 1000 + RUN_SETTLE_S
    if time.time() < settled_at:
        time.sleep(settled_at - time.time())
        runs = call(client, f"searching the run tagged {tag}", search)
    return min(runs, key=lambda r: (r.info.start_time, r.info.run_id)).info.run_id


def pipeline_run(client: MlflowClient, experiment: str, key: str) -> str:
    """The one MLflow run that collects the evidence of one pipeline run (e.g. one DAG run)."""
    return str(keyed_run(client, experiment, PIPELINE_TAG, key))


def run_url(client: MlflowClient, run_id: str) -> str:
    base = client.tracking_uri
    if not base.startswith("http"):
        return f"{base}#runs/{run_id}"
    run = call(client, "reading the run", lambda: client.get_run(run_id))
    return f"{base.rstrip('/')}/#/experiments/{run.info.experiment_id}/runs/{run_id}"


def flat_metrics(prefix: str, metrics: Mapping[str, Any]) -> list[tuple[str, float]]:
    """The numbers (and booleans, as 0/1) of ``metrics``, nested mappings flattened into dotted names.

    Lists and text stay in the evidence JSON only. Characters MLflow refuses in a metric name (a column
    may be called anything) become ``_``.
    """
    flat = []
    for name, value in metrics.items():
        key = f"{prefix}.{_METRIC_UNSAFE.sub('_', str(name))}"
        if isinstance(value, Mapping):
            flat.extend(flat_metrics(key, value))
        elif isinstance(value, int | float) and math.isfinite(value):
            flat.append((key, float(value)))
    return flat


def log_result(client: MlflowClient, run_id: str, result: GateResult, envelope: str | None = None) -> None:
    """Artifact ``gates/<gate>.json`` (+ its reports, + ``gates/<gate>.dsse.json``, its signed envelope, when
    given), metrics ``mlgate.<gate>.<m>``, tag ``mlgate.gate.<gate>``."""
    from mlflow.entities import Metric, RunTag

    now_ms = int(datetime.now(UTC).timestamp() * 1000)
    metrics = [Metric(name, value, now_ms, 0) for name, value in flat_metrics(f"mlgate.{result.gate}", result.metrics)]
    with mlflow_errors(f"logging evidence of {result.gate}", client.tracking_uri):
        with tempfile.TemporaryDirectory() as tmp:
            write_evidence(result, Path(tmp))
            if envelope is not None:
                (Path(tmp) / f"{result.gate}{SIGNED_SUFFIX}").write_text(envelope + "\n")
            client.log_artifacts(run_id, tmp, artifact_path="gates")
        for artifact in result.artifacts:
            client.log_artifact(run_id, artifact, artifact_path=f"gates/{result.gate}")
        client.log_batch(run_id, metrics=metrics, tags=[RunTag(f"mlgate.gate.{result.gate}", str(result.status))])


def log_dataset_input(client: MlflowClient, run_id: str, uri: str, digest: str) -> None:
    """Record a verified dataset as an input of the run. MLflow keeps at most 36 characters of a
    dataset digest, so the full manifest digest also goes into the input's tags."""
    from mlflow.data.dataset_source_registry import resolve_dataset_source
    from mlflow.data.meta_dataset import MetaDataset
    from mlflow.entities import DatasetInput, InputTag

    with mlflow_errors("logging the dataset input", client.tracking_uri):
        dataset = MetaDataset(resolve_dataset_source(uri), name=Path(uri).name, digest=digest.split(":")[-1][:36])
        client.log_inputs(run_id, [DatasetInput(dataset._to_mlflow_entity(),
                                                [InputTag("mlgate.data_digest", digest)])])


def download_evidence(client: MlflowClient, run_id: str) -> dict[str, GateResult | EvidenceError]:
    """Every ``gates/*.json`` of a run; a file that cannot be read is kept as its EvidenceError."""
    evidence: dict[str, GateResult | EvidenceError] = {}
    with mlflow_errors("downloading evidence", client.tracking_uri), tempfile.TemporaryDirectory() as tmp:
        files = [f for f in client.list_artifacts(run_id, "gates") if not f.is_dir and f.path.endswith(".json")
                 and not f.path.endswith(SIGNED_SUFFIX)]
        for item in files:
            gate = Path(item.path).stem
            try:
                evidence[gate] = read_evidence(Path(client.download_artifacts(run_id, item.path, tmp)))
            except EvidenceError as exc:
                evidence[gate] = exc
    for gate, item in evidence.items():
        if isinstance(item, GateResult) and item.gate != gate:
            evidence[gate] = EvidenceError(f"gates/{gate}.json holds the result of {item.gate}")
    return evidence


def download_envelopes(client: MlflowClient, run_id: str, limit: int = 1_000_000) -> dict[str, str]:
    """Every ``gates/<gate>.dsse.json`` of a run (gate id -> envelope text); one over ``limit`` bytes is
    left out (it then counts as unsigned)."""
    envelopes: dict[str, str] = {}
    with mlflow_errors("downloading signed evidence", client.tracking_uri), tempfile.TemporaryDirectory() as tmp:
        for item in client.list_artifacts(run_id, "gates"):
            if item.is_dir or not item.path.endswith(SIGNED_SUFFIX) or (item.file_size or 0) > limit:
                continue
            raw = Path(client.download_artifacts(run_id, item.path, tmp)).read_bytes()[:limit]
            envelopes[Path(item.path).name.removesuffix(SIGNED_SUFFIX)] = raw.decode(errors="replace")
    return envelopes


def download_model(client: MlflowClient, model_uri: str, directory: Path) -> Path:
    """The model's stored artifact files, as they are in the store now, under ``directory``."""
    import mlflow

    with mlflow_errors(f"downloading {model_uri}", client.tracking_uri):
        mlflow.set_tracking_uri(client.tracking_uri)
        mlflow.set_registry_uri(client._registry_uri)
        return Path(mlflow.artifacts.download_artifacts(artifact_uri=model_uri, dst_path=str(directory)))


def register_model_dir(client: MlflowClient, run_id: str, model_dir: Path, name: str, *,
                       params: Mapping[str, str], tags: Mapping[str, str]) -> str:
    """Log a saved MLflow model directory as a LoggedModel of ``run_id`` and register it as a version of
    ``name``; the version's number. The files are uploaded as bytes: nothing here loads the model."""
    import mlflow
    from mlflow.entities import LoggedModelOutput

    with mlflow_errors("logging and registering the model", client.tracking_uri):
        experiment = client.get_run(run_id).info.experiment_id
        logged = client.create_logged_model(experiment, name="model", source_run_id=run_id, params=dict(params),
                                            tags=dict(tags))
        client.log_model_artifacts(logged.model_id, str(model_dir))
        client.finalize_logged_model(logged.model_id, "READY")
        client.log_outputs(run_id, [LoggedModelOutput(logged.model_id, step=0)])
        return str(mlflow.register_model(f"models:/{logged.model_id}", name).version)


def model_file_digests(client: MlflowClient, model_uri: str) -> dict[str, str]:
    """Relative path -> sha256 of each of the model's stored artifact files, as downloaded from the store now
    (the subjects of its attestation)."""
    with tempfile.TemporaryDirectory() as tmp:
        return file_digests(download_model(client, model_uri, Path(tmp)))


def model_digest(client: MlflowClient, model_uri: str) -> str:
    """Digest of the model's stored artifact files, as downloaded from the store now."""
    return json_digest(model_file_digests(client, model_uri))


def resolve_version(client: MlflowClient, model_uri: str) -> tuple[str, str]:
    """``models:/name/version`` or ``models:/name@alias`` -> (name, version); anything else is refused,
    because only a registered version can carry an attestation."""
    match = re.fullmatch(r"models:/([^/@]+)(?:/(\d+)|@([A-Za-z_][A-Za-z0-9_-]*))", model_uri)
    if not match:
        raise GateInputError(f"{model_uri!r}: expected models:/<name>/<version> or models:/<name>@<alias>")
    name, version, alias = match.groups()
    if alias:
        version = current_alias_version(client, name, alias)
        if version is None:
            raise GateInputError(f"{model_uri!r}: alias {alias!r} of {name!r} points at no version")
    return name, str(version)


def current_alias_version(client: MlflowClient, name: str, alias: str) -> str | None:
    from mlflow.exceptions import MlflowException

    try:
        return str(client.get_model_version_by_alias(name, alias).version)
    except MlflowException as exc:
        if "RESOURCE_DOES_NOT_EXIST" in str(exc.error_code) or "not found" in str(exc).lower():
            return None
        raise ToolError(f"MLflow at {client.tracking_uri} failed reading alias {alias!r}: {exc}") from exc
