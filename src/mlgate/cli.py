"""mlgate: the same gates as the operators, for any CI system and for people.

Exit codes of ``check``, ``promote``, ``verify`` and ``incident``: 0 passed, 1 blocked by policy, 2 error
(fail closed), also when an output asked for (``--json``, ``--sarif``) cannot be written. The human summary
goes to stderr and names the policy and the MLflow store used; ``--json FILE`` writes the GateResult.
"""

from __future__ import annotations

import argparse
import getpass
import json
import os
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from mlgate.core.errors import GateInputError, MlgateError
from mlgate.core.policy import Policy
from mlgate.core.redaction import redact, redact_uri
from mlgate.core.results import GateResult, Status, Subject
from mlgate.core.runner import GateOutcome, run_gate
from mlgate.core.shipped import POLICY_ENV, choose_policy, load_chosen_policy, shipped
from mlgate.core.summary import format_summary
from mlgate.scaffold import DEFAULT_GATES

if TYPE_CHECKING:
    from mlflow import MlflowClient

    from mlgate.gates.code.trivy import TrivyConnection

POLICY_HELP = (f"policy YAML (default: ${POLICY_ENV}, else ./policies/default.yaml, else the default shipped "
               "with mlgate)")
TIMEOUT_ENV = "MLGATE_MLFLOW_TIMEOUT"
EXIT_CODES = "exit codes: 0 passed, 1 blocked by policy, 2 error (bad input or policy, tool failure, unwritable output)"


class OutputError(MlgateError):
    """An output the user asked for cannot be written: exit 2, never a gate's verdict."""


def write_output(flag: str, path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path``, creating its folder; ``OutputError`` saying why not."""
    target = Path(path)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text)
    except OSError as exc:
        raise OutputError(f"cannot write {flag} {path}: {exc.strerror or exc}") from None
    return target


def _progress(done: int, total: int) -> None:
    if sys.stderr.isatty() or done == total or done % max(1, total // 10) == 0:
        print(f"\rhashed {done}/{total} files", end="\n" if done == total else "", file=sys.stderr, flush=True)


def signed_path(json_out: str) -> Path:
    """Where ``check --json FILE`` writes the result's signed envelope: ``FILE`` with ``.dsse.json``."""
    path = Path(json_out)
    return path.with_name(path.name.removesuffix(".json") + ".dsse.json")


def _sign(result: GateResult, json_out: str, run_id: str | None) -> str:
    """Sign the result where it is produced when a key is configured (ADR 0013); returns what was done."""
    from mlgate.trust.gate_evidence import sign_result
    from mlgate.trust.keys import keyring_from_env

    keys = keyring_from_env()
    if not keys.has_signing_key:
        return "unsigned (no signing key configured): promotion counts it as missing"
    path = signed_path(json_out)
    write_output("--json (its signed envelope)", path, sign_result(result, keys.signer(), run_id) + "\n")
    return f"signed: {path}" + ("" if run_id else " for no MLflow run (set MLFLOW_RUN_ID): promotion counts "
                                                   "it as missing")


def _finish(outcome: GateOutcome, args: argparse.Namespace) -> int:
    """Print the summary, then write the outputs asked for: one that cannot be written is exit 2 (main)."""
    print(format_summary(outcome.result), file=sys.stderr)
    if getattr(args, "sarif", None):
        _copy_sarif(outcome.result, args.sarif)
    client, run_id = _record_target(args)
    run_id = run_id or os.environ.get("MLFLOW_RUN_ID") or None  # the run the result will be logged in
    if args.json:
        write_output("--json", args.json, outcome.result.to_json() + "\n")
        print(_sign(outcome.result, args.json, run_id), file=sys.stderr)  # a key that cannot sign: exit 2 (main)
    if client is not None:
        print(_record(client, run_id, outcome.result), file=sys.stderr)
    return outcome.exit_code


def _record_target(args: argparse.Namespace) -> tuple[MlflowClient | None, str | None]:
    """``--record models:/NAME/VERSION`` (the version's run) or ``--run-id``: where the result is logged. An
    alias is refused: it is not signed, so the evidence would land on whichever version A1 pointed it at."""
    if not (getattr(args, "record", None) or getattr(args, "run_id", None)):
        return None, None
    from mlgate.trust.keys import keyring_from_env
    from mlgate.trust.registry import call, resolve_version

    if not keyring_from_env().has_signing_key:
        raise OutputError("cannot record the result: no signing key (MLGATE_SIGNING_KEY or MLGATE_SIGNING_KEY_FILE); "
                          "promotion counts an unsigned result as missing")
    client = _client()
    if args.run_id:
        return client, args.run_id
    if "@" in args.record:  # the signed result binds to the version's run: an alias would let A1 choose it
        name = args.record.removeprefix("models:/").split("@")[0]
        raise OutputError(f"cannot record the result on {args.record}: name the version (models:/{name}/<version>); "
                          "an MLflow alias is an unsigned pointer that whoever can write the registry moves")
    name, version = resolve_version(client, args.record)
    run_id = call(client, f"reading model version {name}/{version}",
                  lambda: client.get_model_version(name, version)).run_id
    if not run_id:
        raise OutputError(f"cannot record the result on {args.record}: the version has no MLflow run")
    return client, run_id


def _record(client: MlflowClient, run_id: str, result: GateResult) -> str:
    """Log the signed result as a gate task would (ADR 0013), so a CI check counts for promotion."""
    from mlgate.trust.gate_evidence import sign_result
    from mlgate.trust.keys import keyring_from_env
    from mlgate.trust.registry import log_result

    log_result(client, run_id, result, sign_result(result, keyring_from_env().signer(), run_id))
    return f"recorded {result.gate} ({result.status}), signed, on MLflow run {run_id}"


def _run(args: argparse.Namespace, subject: Subject, check: Callable[[Policy], GateResult]) -> int:
    policy: list[Policy] = []

    def loaded() -> Policy:
        if not policy:
            found, choice = load_chosen_policy(args.policy)
            print(f"policy  {choice.path} ({choice.origin})", file=sys.stderr)
            policy.append(found)
        return policy[0]

    return _finish(run_gate(args.gate, subject, lambda: check(loaded()), lambda: loaded().digest), args)


def cmd_pin(args: argparse.Namespace) -> int:
    from mlgate.gates.data.integrity import build_manifest

    manifest = build_manifest(args.path, args.algorithm, _progress)
    write_output("--out", args.out, json.dumps(manifest.to_dict(), indent=2) + "\n")
    print(f"pinned {len(manifest.files)} file(s), {manifest.total_bytes} bytes: {manifest.digest}", file=sys.stderr)
    return 0


def cmd_check_integrity(args: argparse.Namespace) -> int:
    from mlgate.gates.data.integrity import check_integrity

    return _run(args, _data_subject(args.path),
                lambda policy: check_integrity(args.path, Path(args.manifest), policy, _progress))


def cmd_check_expectations(args: argparse.Namespace) -> int:
    from mlgate.gates.data.expectations import check_expectations

    report_dir = Path(args.report_dir) if args.report_dir else None
    suite = Path(args.suite) if args.suite else None
    return _run(args, _data_subject(args.path),
                lambda policy: check_expectations(args.path, policy, suite, report_dir, args.push_down))


def _workdir(args: argparse.Namespace) -> Path:
    """Where a gate writes its reports (SARIF, SBOM, masked copy): ``--out-dir``, else the current directory."""
    path = Path(args.out_dir or ".")
    path.mkdir(parents=True, exist_ok=True)
    return path


def _data_subject(path: str) -> Subject:
    from mlgate.gates.data.sources import redacted

    return Subject("dataset", redacted(path), "unknown")


def cmd_check_pii(args: argparse.Namespace) -> int:
    from mlgate.gates.data.sources import is_table

    def check(policy: Policy) -> GateResult:
        algorithm = policy.section("data.integrity").algorithm
        if args.engine == "spark":
            from mlgate.gates.data.pii_spark import check_pii_spark
            from mlgate.gates.data.sources import open_source

            return check_pii_spark(open_source(args.path, args.batch_rows), policy.section(args.gate),
                                   policy.digest, algorithm, args.spark_master)
        if args.stream or is_table(args.path):
            from mlgate.gates.data.pii_stream import check_pii_source
            from mlgate.gates.data.sources import open_source

            return check_pii_source(open_source(args.path, args.batch_rows), policy.section(args.gate),
                                    policy.digest, algorithm)
        from mlgate.gates.data.pii import check_pii

        return check_pii(Path(args.path), policy.section(args.gate), policy.digest, _workdir(args), algorithm,
                         args.encoding)

    return _run(args, _data_subject(args.path), check)


def cmd_check_static(args: argparse.Namespace) -> int:
    from mlgate.gates.code.bandit_scan import check_static

    return _run(args, Subject("code", args.path, "unknown"), lambda policy: check_static(
        args.path, policy.section(args.gate), policy.digest, _workdir(args)))


def cmd_check_dynamic(args: argparse.Namespace) -> int:
    import json

    from mlgate.gates.code.dynamic import check_dynamic

    try:
        params = json.loads(args.params)
    except ValueError as exc:
        raise GateInputError(f"--params: not JSON: {exc}") from None
    return _run(args, Subject("code", args.code_path or args.training_callable or ",".join(args.callable), "unknown"),
                lambda policy: check_dynamic(policy, callables=args.callable, training_callable=args.training_callable,
                                             data_path=args.data, params=params, seed=args.seed, suite_path=args.suite,
                                             code_path=args.code_path))


def _copy_sarif(result: GateResult, destination: str) -> None:
    """``--sarif``: after the verdict, so a copy that fails is an output error (exit 2), never the gate's."""
    sarif = next((a for a in result.artifacts if a.endswith(".sarif")), None)
    if sarif is None:
        raise OutputError(f"cannot write --sarif {destination}: {result.gate} wrote no SARIF report "
                          f"(status {result.status})")
    try:
        write_output("--sarif", destination, Path(sarif).read_text())
    except OSError as exc:
        raise OutputError(f"cannot write --sarif {destination}: {sarif}: {exc.strerror or exc}") from None


def _trivy_connection(args: argparse.Namespace) -> TrivyConnection:
    from mlgate.gates.code.trivy import TrivyConnection

    return TrivyConnection(binary=args.trivy, cache_dir=Path(args.cache_dir) if args.cache_dir else None,
                           db_repository=args.db_repository, server=args.server,
                           token=os.environ.get("TRIVY_TOKEN"), offline=args.offline)


def cmd_check_dependencies(args: argparse.Namespace) -> int:
    from mlgate.gates.code.dependencies import check_dependencies

    return _run(args, Subject("code", args.path, "unknown"), lambda policy: check_dependencies(
        args.path, _trivy_connection(args), policy.section(args.gate), policy.exceptions, policy.digest,
        _workdir(args), command=args.scan))


def cmd_check_container(args: argparse.Namespace) -> int:
    from mlgate.gates.code.trivy import check_trivy

    return _run(args, Subject("image", args.image, "unknown"), lambda policy: check_trivy(
        "image", args.image, _trivy_connection(args), policy.section(args.gate), policy.digest,
        exceptions=policy.exceptions))


def cmd_check_deploy_config(args: argparse.Namespace) -> int:
    from mlgate.gates.deploy.deploy_config import check_deploy_config

    return _run(args, Subject("code", args.path, "unknown"), lambda policy: check_deploy_config(
        args.path, _trivy_connection(args), policy.section(args.gate), policy.digest,
        exceptions=policy.exceptions))


def cmd_check_artifact(args: argparse.Namespace) -> int:
    from mlgate.gates.model.artifacts import check_artifact

    return _run(args, Subject("model", args.path, "unknown"), lambda policy: check_artifact(
        Path(args.path), policy.section(args.gate), policy.digest))


def cmd_check_model(args: argparse.Namespace) -> int:
    """A validation gate on a model dir or ``models:/`` URI, loaded only once ``model.artifact`` passed on it,
    and only in an isolated child (ADR 0015)."""
    import tempfile

    from mlgate.gates.model.artifacts import check_artifact
    from mlgate.gates.model.isolated import validate_isolated

    def check(policy: Policy) -> GateResult:
        with tempfile.TemporaryDirectory() as tmp:
            local = _local_model(args.model, Path(tmp))
            scan = check_artifact(local, policy.section("model.artifact"), policy.digest)
            if not scan.passed:
                raise GateInputError(f"refusing to load {args.model}: model.artifact {scan.status}: "
                                     + "; ".join(scan.top_failures(3)))
            return validate_isolated(args.gate, local, policy, data_callable=args.data_callable, data_path=args.data,
                                     seed=args.seed, model_digest=scan.subject.digest, model_uri=args.model,
                                     out_dir=_workdir(args))

    return _run(args, Subject("model", args.model, "unknown"), check)


def _local_model(model: str, directory: Path) -> Path:
    if "://" not in model and ":/" not in model:
        return Path(model)
    from mlgate.trust.registry import download_model

    return download_model(_client(read_only=True), model, directory)


def _window(args: argparse.Namespace) -> tuple[datetime | None, datetime | None]:
    from mlgate.gates.monitor.monitoring import parse_moment

    return (parse_moment(args.since, "--since") if args.since else None,
            parse_moment(args.until, "--until") if args.until else None)


def cmd_check_drift(args: argparse.Namespace) -> int:
    from mlgate.gates.data.sources import redacted
    from mlgate.gates.monitor.monitoring import check_drift_files, check_drift_sketched

    def check(policy: Policy) -> GateResult:
        if args.engine == "pandas":
            return check_drift_files(args.path, args.reference, policy, *_window(args), history=args.history)
        if args.since or args.until:
            raise GateInputError(f"--engine {args.engine} sketches the whole file, dataset or table; --since/--until "
                                 "select rows of an inference log, which --engine pandas reads (partition by time "
                                 "instead)")
        return check_drift_sketched(args.path, args.reference, policy, args.engine, args.spark_master,
                                    history=args.history, batch_rows=args.batch_rows)

    return _run(args, Subject("dataset", redacted(args.path), "unknown"), check)


def cmd_sketch(args: argparse.Namespace) -> int:
    from mlgate.gates.monitor.sketches import sketch_inputs

    sketch = sketch_inputs(args.inputs, args.columns, args.batch_rows)
    write_output("--out", args.out, json.dumps(sketch.to_dict()) + "\n")
    print(f"sketched {sketch.rows} rows, {len(sketch.numeric)} numeric and {len(sketch.categorical)} categorical "
          f"column(s): {sketch.digest}", file=sys.stderr)
    return 0


def cmd_check_confidence(args: argparse.Namespace) -> int:
    from mlgate.gates.monitor.monitoring import check_confidence_files, load_confidence_baseline
    from mlgate.gates.monitor.served import served_baseline
    from mlgate.trust.keys import keyring_from_env

    def check(policy: Policy) -> GateResult:
        baseline = load_confidence_baseline(args.baseline) if args.baseline else served_baseline(
            _client(read_only=True), policy, keyring_from_env(), args.model)
        return check_confidence_files(args.path, policy, *_window(args), baseline=baseline)

    return _run(args, Subject("dataset", args.path, "unknown"), check)


def cmd_check_queries(args: argparse.Namespace) -> int:
    from mlgate.gates.monitor.monitoring import check_queries_files, load_baseline

    return _run(args, Subject("dataset", args.path, "unknown"), lambda policy: check_queries_files(
        args.path, policy, *_window(args), baseline=load_baseline(args.baseline) if args.baseline else None,
        reference=args.reference, state=args.state))


def cmd_incident(args: argparse.Namespace) -> int:
    from mlgate.gates.monitor.incident import respond
    from mlgate.trust.keys import keyring_from_env

    args.gate = "incident.respond"
    key = f"cli/{getpass.getuser()}/{datetime.now(UTC).isoformat(timespec='seconds')}"
    return _run(args, Subject("model", f"models:/{args.model}/{args.version or 'served'}", "unknown"),
                lambda policy: respond(_client(read_only=True), policy, args.model, args.version, (),
                                       reason=args.reason, key=key, keys=keyring_from_env()))


def bound_mlflow_calls() -> None:
    """Each MLflow call of the CLI gives up within ``MLGATE_MLFLOW_TIMEOUT`` seconds (default 30) instead of
    MLflow's own ~4 minutes of retries: 3 attempts, 1 s + 2 s of backoff, the rest split between them.
    Settings the user made (``MLFLOW_HTTP_REQUEST_*``) win."""
    raw = os.environ.get(TIMEOUT_ENV, "30")
    try:
        budget = float(raw)
    except ValueError:
        budget = 0.0
    if not budget > 0:
        raise GateInputError(f"{TIMEOUT_ENV} must be a positive number of seconds; found {raw!r}")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "2")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_JITTER", "0")
    os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", str(max(1, int((budget - 3) / 3))))


def store_uri(read_only: bool) -> str:
    """``MLFLOW_TRACKING_URI``, else the SQLite store under ``MLGATE_HOME`` (default ``~/.mlgate``, ADR 0027).
    A read-only command never creates a store: a missing one is an error, not an empty answer."""
    from mlgate.trust.registry import default_tracking_uri, mlgate_home

    if read_only and not os.environ.get("MLFLOW_TRACKING_URI"):
        database = mlgate_home() / "mlflow.db"
        if not database.is_file():
            raise GateInputError(f"no MLflow store: MLFLOW_TRACKING_URI is not set and {database} does not exist "
                                 "(set MLFLOW_TRACKING_URI, or MLGATE_HOME to the folder holding mlflow.db)")
    return default_tracking_uri()


def _client(read_only: bool = False) -> MlflowClient:
    import mlflow

    bound_mlflow_calls()
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # keep stderr for the verdict
    uri = store_uri(read_only)
    print(f"mlflow  {redact_uri(uri)}", file=sys.stderr)  # never a password in a log
    return mlflow.MlflowClient(uri, uri)  # the registry too: MLflow's process-wide registry URI may point elsewhere


def _registered(client: MlflowClient, model: str) -> None:
    """An empty answer from a store that does not hold ``model`` would read as "nothing happened": refuse it."""
    from mlgate.trust.registry import call

    if not call(client, f"searching registered model {model}",
                lambda: client.search_registered_models(f"name = '{model}'")):
        raise GateInputError(f"MLflow at {client.tracking_uri} holds no registered model {model!r}")


def cmd_promote(args: argparse.Namespace) -> int:
    from mlgate.trust.keys import keyring_from_env
    from mlgate.trust.promote import promote
    from mlgate.trust.registry import log_result
    from mlgate.trust.version_report import publish_scorecard

    def check(policy: Policy) -> GateResult:
        client = _client()
        result = promote(client, policy, args.model, args.version, f"cli:{getpass.getuser()}", keyring_from_env())
        if result.status is not Status.PASSED and result.thresholds.get("alias_before") == str(args.version):
            print(f"mlgate: the refused attempt is in the audit trail; {args.model}/{args.version} still serves and "
                  "its evidence and scorecard are unchanged", file=sys.stderr)
            return result
        run_id = client.get_model_version(args.model, args.version).run_id
        if run_id:
            log_result(client, run_id, result)
            try:  # a report that cannot be built never changes the decision
                publish_scorecard(client, policy, args.model, args.version)
            except MlgateError as exc:
                print(f"mlgate: warning: the scorecard could not be logged: {exc}", file=sys.stderr)
        return result

    args.gate = "registry.promote"
    return _run(args, Subject("model", f"models:/{args.model}/{args.version}", "unknown"), check)


def cmd_init(args: argparse.Namespace) -> int:
    from mlgate.scaffold import init_project, next_steps

    gates = tuple(g.strip() for g in args.gates.split(",") if g.strip())
    scaffold = init_project(Path(args.directory), Path(args.data), args.target, model=args.model_name, gates=gates,
                            sample_rows=args.sample_rows)
    print(next_steps(scaffold))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from mlgate.demo.run import run_demo

    return run_demo(rows=args.rows)


def cmd_verify(args: argparse.Namespace) -> int:

    from mlgate.trust.attestation import AttestationError
    from mlgate.trust.attestation_store import verify_version
    from mlgate.trust.keys import keyring_from_env

    policy, _ = load_chosen_policy(args.policy)
    trusted = keyring_from_env(args.public_key or ()).trusted_keys()
    report: dict = {"model": args.model, "version": args.version}
    try:
        verified = verify_version(_client(read_only=True), policy, args.model, args.version, trusted, datetime.now(UTC))
    except AttestationError as exc:
        report.update(verified=False, reasons=list(exc.reasons))
        print(f"NOT VERIFIED: {args.model}/{args.version}\n  " + "\n  ".join(exc.reasons))
    else:
        report.update(verified=True, keyid=verified.keyid, created_at=verified.created_at.isoformat(),
                      policy_digest=verified.policy_digest, artifacts=verified.artifact_digests,
                      gates={r.gate: str(r.status) for r in verified.results})
        print(f"VERIFIED: {args.model}/{args.version} signed by key {verified.keyid[:16]} at "
              f"{verified.created_at.isoformat()}\n  {len(verified.artifact_digests)} artifact file(s) match; "
              f"gates: {', '.join(sorted(report['gates']))}")
    if args.json:
        write_output("--json", args.json, json.dumps(report, indent=2, sort_keys=True) + "\n")
    return 0 if report["verified"] else 1


def cmd_keygen(args: argparse.Namespace) -> int:
    from mlgate.trust.attestation import generate_key, signer_from_file

    private, public = generate_key(args.path)
    print(f"private key {private} (mode 0600; keep it in a secrets backend)\npublic key  {public}\n"
          f"key id      {signer_from_file(private).public_key.keyid}")
    return 0


def cmd_policy_digest(args: argparse.Namespace) -> int:
    """Print the digest to pin in ``MLGATE_TRUSTED_POLICY_DIGESTS`` or the signing connection."""
    print(load_chosen_policy(args.policy)[0].digest)
    return 0


def cmd_policy_sign(args: argparse.Namespace) -> int:
    """A policy owner signs a policy: ``<policy>.dsse.json`` beside it (ADR 0013)."""
    from mlgate.trust.attestation import signer_from_file
    from mlgate.trust.trusted_policy import sign_policy

    policy, _ = load_chosen_policy(args.policy)
    signer = signer_from_file(args.key)
    path = sign_policy(policy, signer)
    print(f"signed {policy.digest} with owner key {signer.public_key.keyid[:16]}: {path}")
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
    from mlgate.trust.audit import format_table, read_decisions
    from mlgate.trust.audit_verify import verify_audit

    client = _client(read_only=True)
    _registered(client, args.model)
    if args.verify:
        records, problems = verify_audit(client, args.model, args.public_key or ())
    else:
        records, problems = read_decisions(client, args.model), []
    if args.json:
        print(json.dumps([r.to_dict() for r in records], indent=2))
    else:
        print(format_table(records) if records else f"no decisions recorded for {args.model}")
    if args.verify:
        print(f"NOT VERIFIED: {args.model}\n  " + "\n  ".join(problems) if problems else
              f"VERIFIED: the audit trail of {args.model} ({len(records)} records) is intact and explains "
              "every alias", file=sys.stderr)
    return 1 if problems else 0


def cmd_alias_resign(args: argparse.Namespace) -> int:
    from mlgate.trust.audit_verify import resign_alias
    from mlgate.trust.keys import keyring_from_env

    state = resign_alias(_client(), keyring_from_env(), args.model, args.alias)
    print(f"re-signed {args.model}@{args.alias}: version {state.version or '-'}, sequence {state.sequence}, "
          f"expires {state.expires.isoformat()}")
    return 0


def companion(policy: Policy, explicit: str | None, name: str) -> Path:
    """``--threat-model``/``--compliance``, else the file beside the policy, else the one mlgate ships (said on
    stderr): a report never renders an empty section because a user's policy has no companion beside it."""
    if explicit:
        return Path(explicit)
    beside = policy.resolve(name)
    if beside.is_file():
        return beside
    print(f"{name}: none beside {policy.source}; using the one shipped with mlgate", file=sys.stderr)
    return shipped(f"policies/{name}")


def cmd_report(args: argparse.Namespace) -> int:
    from mlgate.trust.version_report import ARTIFACT, COMPLIANCE, THREAT_MODEL, log_scorecard, version_scorecard

    client = _client(read_only=True)
    policy, _ = load_chosen_policy(args.policy)
    html = version_scorecard(client, policy, args.model, args.version,
                             threat_model=companion(policy, args.threat_model, THREAT_MODEL),
                             compliance=companion(policy, args.compliance, COMPLIANCE))
    out = Path(args.out)
    write_output("--out", out / ARTIFACT, html)
    run_id = log_scorecard(client, args.model, args.version, html)
    print(f"wrote {out / ARTIFACT}; logged {ARTIFACT} on run {run_id}", file=sys.stderr)
    return 0


def cmd_threat_model(args: argparse.Namespace) -> int:
    from mlgate.trust.version_report import THREAT_MODEL, policy_coverage

    policy, _ = load_chosen_policy(args.policy)
    result = policy_coverage(policy, companion(policy, args.threat_model, THREAT_MODEL))
    width = max(len(c.category) for c in result.categories)
    for category in result.categories:
        print(f"{category.category:<{width}}  {category.status.upper()}")
        for threat in category.threats:
            print(f"  {threat.status:<22} {threat.threat.id}: {threat.note}")
    if not result.ok:
        print(f"uncovered: {', '.join(result.uncovered)}", file=sys.stderr)
    return 0 if result.ok else 1


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("mlgate")
    except PackageNotFoundError:
        return "unknown (not installed)"


def cmd_serve(args: argparse.Namespace) -> int:
    from mlgate.serving.config import ServeConfig
    from mlgate.serving.run import serve

    fields = {k: v for k, v in vars(args).items() if k in ServeConfig.model_fields and v is not None}
    fields["policy"] = str(choose_policy(args.policy).path)
    fields["trusted_keys"] = tuple(args.public_key or ())
    serve(ServeConfig(**fields), host=args.host, port=args.port, workers=args.workers,
          ssl_certfile=args.ssl_certfile, ssl_keyfile=args.ssl_keyfile)
    return 0


def cmd_serve_key(args: argparse.Namespace) -> int:
    import yaml

    from mlgate.serving.auth import new_key

    key, entry = new_key(args.client, args.models)
    print(yaml.safe_dump([entry], sort_keys=False), end="")  # an item of the key file's `keys:` list
    print(f"API key for {args.client} (shown once; store only the entry above on the server):\n{key}",
          file=sys.stderr)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mlgate", description=__doc__.splitlines()[0], epilog=EXIT_CODES)
    parser.add_argument("--version", action="version", version=f"mlgate {_version()}")
    commands = parser.add_subparsers(dest="command", required=True)

    pin = commands.add_parser("pin", help="write the manifest (per-file digests) of a file or directory")
    pin.add_argument("path", help="a data file or directory, or a PostgreSQL table "
                     "(postgresql://user@host:port/db?table=schema.name: digested by the database)")
    pin.add_argument("--out", required=True, help="manifest JSON to write (its folder is created)")
    pin.add_argument("--algorithm", choices=("sha256", "blake3"), default="sha256", help="digest (default sha256)")
    pin.set_defaults(func=cmd_pin)

    sketch = commands.add_parser("sketch", help="write the mergeable drift sketch (KLL quantiles, frequent "
                                 "items) of data too large for memory, or merge sketches")
    sketch.add_argument("inputs", nargs="+", metavar="INPUT", help="a data file, a partitioned dataset directory, "
                        "a PostgreSQL table (postgresql://user@host:port/db?table=schema.name), or a sketch "
                        "JSON (a partition's or a worker's); several are merged into one sketch")
    sketch.add_argument("--out", required=True, help="sketch JSON to write (its folder is created); the "
                        "reference or window of `mlgate check monitor.drift --engine arrow`")
    sketch.add_argument("--columns", nargs="+", help="the columns to sketch (default: every column)")
    sketch.add_argument("--batch-rows", type=int, default=65_536, help="rows per record batch (default 65536)")
    sketch.set_defaults(func=cmd_sketch)

    check = commands.add_parser("check", help="run one gate; exit 0 passed, 1 blocked, 2 error",
                                description="Run one gate, as its operator would. " + EXIT_CODES, epilog=EXIT_CODES)
    gates = check.add_subparsers(dest="gate", required=True)

    recording = argparse.ArgumentParser(add_help=False)
    target = recording.add_mutually_exclusive_group()
    target.add_argument("--record", metavar="MODEL_URI", help="log the signed result to this model version's run "
                        "(models:/NAME/VERSION; not an alias, which anyone who writes the registry can "
                        "move), so it counts for promotion")
    target.add_argument("--run-id", help="log the signed result to this MLflow run")

    def add_gate(name: str, *, parents: list[argparse.ArgumentParser], help: str) -> argparse.ArgumentParser:
        """A gate's sub-command: its --help says what it checks and what each exit code means."""
        return gates.add_parser(name, parents=[*parents, recording], help=help, description=f"{name}: {help}.",
                                epilog=EXIT_CODES)

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--policy", help=POLICY_HELP)
    common.add_argument("--json", help="write the GateResult to this file (its folder is created), and its signed "
                        "envelope beside it when a signing key is configured")

    integrity = add_gate("data.integrity", parents=[common], help="compare data with its pinned manifest")
    integrity.add_argument("path", help="the data file or directory that was pinned, or a PostgreSQL table "
                           "(postgresql://user@host:port/db?table=schema.name)")
    integrity.add_argument("--manifest", required=True, help="the manifest `mlgate pin` wrote")
    integrity.set_defaults(func=cmd_check_integrity)

    expectations = add_gate("data.expectations", parents=[common], help="validate with a GX suite")
    expectations.add_argument("path", help="a CSV/Parquet file, or a directory of them, or a PostgreSQL table "
                              "(postgresql://user@host:port/db?table=schema.name: validated in the database)")
    expectations.add_argument("--push-down", action="store_true", help="validate a Parquet file or "
                              "partitioned dataset with DuckDB over its files instead of reading it into memory")
    expectations.add_argument("--suite", help="GX suite JSON (default: the policy's)")
    expectations.add_argument("--report-dir", help="where to write GX's result JSON")
    expectations.set_defaults(func=cmd_check_expectations)

    reports = argparse.ArgumentParser(add_help=False)
    reports.add_argument("--out-dir", help="where the gate writes its reports (default: the current directory)")
    trivy = argparse.ArgumentParser(add_help=False)
    trivy.add_argument("--trivy", help="trivy binary (default: $TRIVY_PATH, the packaged one, then PATH)")
    trivy.add_argument("--cache-dir", help="trivy cache holding db/trivy.db")
    trivy.add_argument("--db-repository", help="a mirror of trivy's vulnerability DB")
    trivy.add_argument("--server", help="trivy server URL (client/server mode; token from $TRIVY_TOKEN)")
    trivy.add_argument("--offline", action="store_true", help="never download the DB or checks")

    pii = add_gate("data.pii", parents=[common, reports], help="PII and secrets in CSV/Parquet/JSONL/text")
    pii.add_argument("path", help="a data file, or a directory of them (a partitioned dataset), or a PostgreSQL "
                     "table (postgresql://user@host:port/db?table=schema.name: always read in batches)")
    pii.add_argument("--stream", action="store_true", help="read the file or dataset as one table in record "
                     "batches (bounded memory; not with action mask)")
    pii.add_argument("--batch-rows", type=int, default=65_536, help="rows per record batch when streaming "
                     "(default 65536)")
    pii.add_argument("--encoding", default="utf-8", help="text encoding of CSV/JSONL/text files (default utf-8)")
    pii.add_argument("--engine", choices=("arrow", "spark"), default="arrow",
                     help="arrow: read here; spark: the streamed scan as a Spark job over a Parquet file or "
                     "dataset, same verdict (needs mlgate[spark] and Java 17)")
    pii.add_argument("--spark-master", help="Spark master URL for --engine spark (default local[2])")
    pii.set_defaults(func=cmd_check_pii)

    static = add_gate("code.static", parents=[common, reports], help="bandit over a source tree")
    static.add_argument("path", help="a source file or directory")
    static.add_argument("--sarif", help="also copy the SARIF report here (for code-scanning UIs)")
    static.set_defaults(func=cmd_check_static)

    dynamic = add_gate("code.dynamic", parents=[common],
                       help="preprocessing and predict on inputs generated from the data contract")
    dynamic.add_argument("--callable", action="append", default=[], metavar="MODULE:FUNCTION",
                         help="a function from a raw-data DataFrame to features (repeatable)")
    dynamic.add_argument("--training-callable", metavar="MODULE:FUNCTION",
                         help="fits the model whose predict is exercised: (data_path=, params=, seed=)")
    dynamic.add_argument("--data", help="the data the training callable fits on (its dtypes type the contract)")
    dynamic.add_argument("--params", default="{}", help="hyperparameters of the training callable, as JSON")
    dynamic.add_argument("--seed", type=int, default=0, help="the training seed")
    dynamic.add_argument("--suite", help="GX suite JSON (default: the policy's data.expectations suite)")
    dynamic.add_argument("--code-path", help="the code the evidence names (default: the first callable's package)")
    dynamic.set_defaults(func=cmd_check_dynamic)

    deps = add_gate("code.dependencies", parents=[common, reports, trivy],
                            help="dependency CVEs and a CycloneDX SBOM with trivy")
    deps.add_argument("path", help="a project directory (lock files) or, with --scan rootfs, a site-packages root")
    deps.add_argument("--scan", choices=("fs", "rootfs"), default="fs",
                      help="fs: lock files and manifests; rootfs: installed site-packages (with licenses)")
    deps.set_defaults(func=cmd_check_dependencies)

    container = add_gate("deploy.container", parents=[common, trivy],
                                 help="an image: registry reference, docker-archive tarball or OCI layout")
    container.add_argument("image", help="registry reference, docker-archive tarball or OCI layout directory")
    container.set_defaults(func=cmd_check_container)

    deploy = add_gate("deploy.config", parents=[common, trivy],
                              help="least privilege in Dockerfiles, Kubernetes manifests and compose files")
    deploy.add_argument("path", help="a Dockerfile, manifest, compose file, or a directory of them")
    deploy.set_defaults(func=cmd_check_deploy_config)

    artifact = add_gate("model.artifact", parents=[common], help="static scan of model files")
    artifact.add_argument("path", help="a model file or directory (an MLflow model, a pickle, a torch file, ...)")
    artifact.set_defaults(func=cmd_check_artifact)

    for gate, purpose in (("model.robustness", "accuracy under evasion attacks (FGSM, PGD, HopSkipJump)"),
                          ("model.privacy", "membership inference: ART pre-check, then LiRA TPR at low FPR"),
                          ("model.fairness", "parity and equalized odds across sensitive groups"),
                          ("model.explainability", "permutation importance; a dominant feature blocks"),
                          ("model.poisoning", "poisoned training rows (backdoors, flipped labels) vs trusted rows"),
                          ("model.dos", "worst-case latency and memory of one input (sponge search)"),
                          ("model.certification", "certified robust accuracy: randomized smoothing (L2), "
                                                  "interval bounds (L∞)")):
        validation = add_gate(gate, parents=[common, reports], help=purpose)
        validation.add_argument("model", help="a model directory or models:/NAME/VERSION (scanned before loading)")
        validation.add_argument("--data", required=True, help="the data the data callable reads")
        validation.add_argument("--data-callable", required=True,
                                help="package.module:function(data_path=, seed=) returning ValidationData")
        validation.add_argument("--seed", type=int, default=0, help="seed of the attacks and samples (default 0)")
        validation.set_defaults(func=cmd_check_model)

    window = argparse.ArgumentParser(add_help=False)
    window.add_argument("--since", help="window start, ISO-8601 with a time zone (default: the log's start)")
    window.add_argument("--until", help="window end, exclusive (default: the log's end)")
    log_help = "an inference log (.jsonl/.parquet file or directory)"
    drift = add_gate("monitor.drift", parents=[common, window],
                             help="data and concept drift of current data against a reference")
    drift.add_argument("path", help=f"{log_help}, or a CSV/Parquet table")
    drift.add_argument("--reference", required=True, help="DP profile (data.privacy), reference profile or "
                       "window sketch JSON (`mlgate sketch`), or a CSV/Parquet sample; an ad-hoc check does not "
                       "verify it against an attestation and records reference_verified: false (the monitoring "
                       "DAGs do, ADR 0060)")
    drift.add_argument("--history", help="JSON-lines file of earlier windows' outcomes (appended to): drift "
                       "blocks once it persists; without it, a window blocks alone only on severe drift")
    drift.add_argument("--engine", choices=("pandas", "arrow", "spark"), default="pandas",
                       help="pandas: in memory; arrow: bounded memory, mergeable sketches over record batches (a "
                       "file, a partitioned dataset, postgresql://…?table=, or a window sketch JSON of `mlgate "
                       "sketch`); spark: the same sketches by a Spark job over Parquet (needs mlgate[spark] and "
                       "Java 17)")
    drift.add_argument("--spark-master", help="Spark master URL for --engine spark (default local[2])")
    drift.add_argument("--batch-rows", type=int, default=65_536, help="rows per record batch with --engine arrow "
                       "(default 65536)")
    drift.set_defaults(func=cmd_check_drift)

    confidence = add_gate("monitor.confidence", parents=[common, window],
                                  help="a spike of low-confidence predictions")
    confidence.add_argument("path", help=log_help)
    confidence.add_argument("--baseline", help="JSON confidence baseline (low_confidence, low, predictions) "
                            "measured on the model's held-out predictions; default: the one in --model's "
                            "verified attestation")
    confidence.add_argument("--model", help="models:/<name>@<alias> or models:/<name>/<version> whose attestation "
                            "carries the baseline (default: the policy's model at its alias)")
    confidence.set_defaults(func=cmd_check_confidence)

    queries = add_gate("monitor.queries", parents=[common, window],
                               help="per-client query volume and extraction-like query patterns")
    queries.add_argument("path", help=log_help)
    queries.add_argument("--baseline", help="JSON object: client id -> expected queries in the window")
    queries.add_argument("--reference", required=True, help="the training reference (as for monitor.drift, "
                         "unverified): query distances are scaled against it, and out-of-distribution queries "
                         "counted per client")
    queries.add_argument("--state", help="JSON file of the clients' evidence over earlier windows (updated)")
    queries.set_defaults(func=cmd_check_queries)

    promote = commands.add_parser("promote", parents=[common], help="move the policy's alias if every gate holds",
                                  epilog=EXIT_CODES)
    promote.add_argument("model", help="registered model name")
    promote.add_argument("version", help="model version to promote")
    promote.set_defaults(func=cmd_promote)

    incident = commands.add_parser("incident", parents=[common],
                                   help="demote a bad model version: restore the last good one or remove the alias")
    incident.add_argument("model", help="registered model name")
    incident.add_argument("--version", help="the bad version (default: the one the policy's alias serves)")
    incident.add_argument("--reason", required=True, help="what was observed (recorded with the incident)")
    incident.set_defaults(func=cmd_incident)

    init = commands.add_parser("init", help="scaffold a project for your own CSV: policy, GX suite, threat model, "
                               "training module, DAG and signing key", epilog="exit codes: 0 written, 2 error")
    init.add_argument("directory", nargs="?", default=".", help="where to write the project (default: here)")
    init.add_argument("--data", required=True, help="your data as CSV (pinned; a sample is profiled into the suite)")
    init.add_argument("--target", required=True, help="the label column the model learns")
    init.add_argument("--gates", default=",".join(DEFAULT_GATES),
                      help=f"comma-separated gates the policy requires (default {','.join(DEFAULT_GATES)}; "
                           "data.integrity, model.training and model.artifact are always required)")
    init.add_argument("--model-name", help="registered model name (default: the data file's name)")
    init.add_argument("--sample-rows", type=int, default=10_000, help="rows profiled into the suite (default 10000)")
    init.set_defaults(func=cmd_init)

    demo = commands.add_parser("demo", help="run the secure training pipeline through Airflow: clean, then tampered")
    demo.add_argument("--rows", type=int, default=5000,
                      help="loan applications to generate (default 5000; below about 3,000 the default policy's "
                           "model.poisoning blocks the clean run: too few held-out rows to vouch for 1 %% poison)")
    demo.set_defaults(func=cmd_demo)

    verify = commands.add_parser("verify", help="verify a model version's signed attestation; exit 0/1/2",
                                 epilog=EXIT_CODES)
    verify.add_argument("model", help="registered model name")
    verify.add_argument("version", help="model version")
    verify.add_argument("--policy", help=POLICY_HELP)
    verify.add_argument("--public-key", action="append", metavar="PEM",
                        help="a trusted public key file (repeatable; default $MLGATE_TRUSTED_KEYS)")
    verify.add_argument("--json", help="write the verification report to this file")
    verify.set_defaults(func=cmd_verify)

    keygen = commands.add_parser("keygen", help="write an ECDSA P-256 signing key (0600) and PATH.pub")
    keygen.add_argument("path", help="private key file to write (never overwritten); the public key goes to PATH.pub")
    keygen.set_defaults(func=cmd_keygen)

    policy = commands.add_parser("policy", help="the policies the signer trusts: digest to pin, owner signature")
    policy_commands = policy.add_subparsers(dest="policy_command", required=True)
    digest = policy_commands.add_parser("digest", help="print a policy's digest (to pin in "
                                        "MLGATE_TRUSTED_POLICY_DIGESTS or the signing connection)")
    digest.add_argument("policy", help="the policy YAML")
    digest.set_defaults(func=cmd_policy_digest)
    sign = policy_commands.add_parser("sign", help="sign a policy as its owner: writes POLICY.dsse.json")
    sign.add_argument("policy", help="the policy YAML (its signature goes beside it)")
    sign.add_argument("--key", required=True, help="the policy owner's private key file (PEM)")
    sign.set_defaults(func=cmd_policy_sign)

    audit = commands.add_parser("audit", help="print a registered model's promotion decisions")
    audit.add_argument("model", help="registered model name")
    audit.add_argument("--json", action="store_true", help="print the records as JSON")
    audit.add_argument("--verify", action="store_true",
                       help="check signatures and the hash chain, and that every alias is explained; exit 1 if not")
    audit.add_argument("--public-key", action="append", metavar="PEM",
                       help="a trusted public key file (repeatable; default $MLGATE_TRUSTED_KEYS)")
    audit.set_defaults(func=cmd_audit)

    alias = commands.add_parser("alias", help="signed alias state")
    alias_commands = alias.add_subparsers(dest="alias_command", required=True)
    resign = alias_commands.add_parser("resign", help="re-sign a model alias's unexpired signed state (schedule it)")
    resign.add_argument("model", help="registered model name")
    resign.add_argument("alias", nargs="?", default="champion", help="alias (default champion)")
    resign.set_defaults(func=cmd_alias_resign)

    report = commands.add_parser("report", help="render a model version's scorecard and log it to MLflow")
    report.add_argument("model", help="registered model name")
    report.add_argument("version", help="model version")
    report.add_argument("--out", required=True, help="directory to write scorecard.html into")
    report.add_argument("--policy", help=POLICY_HELP)
    report.add_argument("--threat-model", help="threat model YAML (default: threat-model.yaml beside the policy, "
                         "else the shipped one)")
    report.add_argument("--compliance", help="compliance mapping YAML (default: compliance.yaml beside the "
                        "policy, else the shipped one)")
    report.set_defaults(func=cmd_report)

    serve = commands.add_parser("serve", help="serve a trusted model version: auth, rate limits, validation, budgets")
    serve.add_argument("model_uri", help="models:/<name>@<alias> (re-checked) or models:/<name>/<version>")
    serve.add_argument("--policy", help=POLICY_HELP)
    serve.add_argument("--public-key", action="append", metavar="PEM",
                       help="a trusted public key file (repeatable; default $MLGATE_TRUSTED_KEYS)")
    serve.add_argument("--api-keys", help="YAML file of hashed API keys (mlgate serve-key)")
    serve.add_argument("--jwt-public-key", metavar="PEM", help="also accept bearer JWTs signed by this key")
    serve.add_argument("--jwt-audience", help="the audience a bearer JWT must name")
    serve.add_argument("--jwt-issuer", help="the issuer a bearer JWT must name")
    serve.add_argument("--profile", help="training data profile (reference or DP profile JSON, or a sample)")
    serve.add_argument("--inference-log", help="JSON lines file the monitoring gates read")
    serve.add_argument("--recheck-s", type=float, help="seconds between alias state checks (default 10)")
    serve.add_argument("--client-limit", help="per client, e.g. 600/minute")
    serve.add_argument("--global-limit", help="all clients, e.g. 6000/minute")
    serve.add_argument("--limits-storage", default=os.environ.get("MLGATE_LIMITS_STORAGE"),
                       help="default $MLGATE_LIMITS_STORAGE, else async+redis://127.0.0.1:6379/0 (a password in "
                            "the URI belongs in the variable, not in argv)")
    serve.add_argument("--limits-prefix", help="Redis key prefix of the rate-limit counters")
    serve.add_argument("--range-slack", type=float, help="allowed excess beyond the profile's span, as a "
                       "fraction of that span on each side (default 0.5)")
    serve.add_argument("--max-batch", type=int, help="rows per request (default 100)")
    serve.add_argument("--max-body-bytes", type=int, help="request body size, else 413 (default 256 KiB)")
    serve.add_argument("--timeout-s", type=float, help="per-request prediction budget in seconds (default 2)")
    serve.add_argument("--max-concurrency", type=int, help="predictions in flight per worker (default 8)")
    serve.add_argument("--memory-mb", type=int, help="address-space cap per worker, in MiB")
    serve.add_argument("--sanitizer", metavar="MODULE:FUNCTION", help="applied to each validated batch")
    serve.add_argument("--metrics-dir", help="Prometheus multiprocess directory")
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port to listen on (default 8000)")
    serve.add_argument("--workers", type=int, default=2, help="uvicorn worker processes (default 2)")
    serve.add_argument("--ssl-certfile", help="TLS certificate (PEM)")
    serve.add_argument("--ssl-keyfile", help="TLS private key (PEM)")
    serve.set_defaults(func=cmd_serve)

    serve_key = commands.add_parser("serve-key", help="make an API key for mlgate serve: its hashed entry to stdout")
    serve_key.add_argument("client", help="the client's id (logged with its predictions)")
    serve_key.add_argument("--models", nargs="+", required=True, help="model names it may use (* for all)")
    serve_key.set_defaults(func=cmd_serve_key)

    threats = commands.add_parser("threat-model", help="STRIDE coverage by the policy's gates; exit 1 if uncovered")
    threats.add_argument("--policy", help=POLICY_HELP)
    threats.add_argument("--threat-model", help="threat model YAML (default: threat-model.yaml beside the policy, "
                         "else the shipped one)")
    threats.set_defaults(func=cmd_threat_model)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except MlgateError as exc:  # its message is already redacted (MlgateError)
        print(f"mlgate: error: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:  # exit 1 means "blocked": an unexpected failure is an error, never a verdict
        print(f"mlgate: error: {type(exc).__name__}: {redact(str(exc))[:500]}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
