"""``model.training``: train inside the pipeline's MLflow run, record everything, register the model.

The operator refuses to train on data whose integrity gate did not pass in this DAG run, and the gate
blocks when hyperparameters, data digests, code version, seed or library versions cannot be recorded,
when the policy demands DP-SGD the run does not use, or when DP-SGD would overspend the data's budget.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from mlgate.core.callables import import_path_of, module_file
from mlgate.core.digests import code_digest
from mlgate.core.errors import GateInputError, ToolError
from mlgate.core.results import Finding, GateResult, Severity, Subject, utcnow
from mlgate.gates.model.training import TrainingRecord, check_training, dp_requirement, library_versions
from mlgate.operators.base import BaseGateOperator, pipeline_key, task_actor, verified_data_digest
from mlgate.operators.privacy import default_ledger_url
from mlgate.trust.registry import (
    TAG_CODE_DIGEST,
    TAG_DATA_DIGEST,
    TAG_MODEL_DIGEST,
    mlflow_errors,
    model_digest,
    pipeline_run,
    register_model_dir,
)

if TYPE_CHECKING:
    from airflow.sdk import Context


class ModelTrainingGateOperator(BaseGateOperator):
    """Runs ``training_callable(data_path=, params=<hyperparameters>, seed=)`` and logs, registers and
    records what it produced as ``model_name`` (default: the policy's); pushes ``model_version`` to XCom.

    The callable returns a fitted scikit-learn model (or ``(model, metrics)``), or a
    ``mlgate.gates.model.fitting.TrainingSet`` that the gate fits itself, plainly or with the loop options:

    * ``dp_sgd={"target_epsilon": …, "target_delta": …, "max_grad_norm": …}``: Opacus DP-SGD (torch). The
      target (ε, δ) is charged to the training data's privacy ledger (the ``data.privacy`` budgets) before
      training; a run the budget cannot cover is blocked untrained. The ε spent is a metric and a version tag.
    * ``adversarial_training={"eps": …, "steps": …}``: Madry PGD (torch) or FGSM/PGD augmentation
      (differentiable scikit-learn models).
    * ``defensive_distillation={"temperature": T, "teacher_epochs": …}``: a teacher at T labels the rows
      softly, the student (served at T=1) trains on them (torch). It masks gradients rather than adds
      robustness: ``model.robustness``'s ``masking_checks`` are what judge it.

    ``input_defence={"name": "feature_squeezing", …}`` (``mlgate.gates.model.input_defences``) declares an
    input transformation as part of the version (saved in its files, so under its digest, ADR 0031); the
    validation gates evaluate the model behind it.

    Torch modules are logged in MLflow's ``pt2`` format (a traced graph: loading imports no model code);
    ``torch_serialization="pickle"`` keeps the module classes, which ``model.artifact`` must then allow.

    The callable is attacker A2's code: it is named by import path (a lambda or closure is refused) and runs,
    with the fit and the saving of the model, in an isolated child that holds no key, connection or
    credential (ADR 0020); this process only uploads the saved files and never loads them.
    """

    gate_id = "model.training"
    template_fields: Sequence[str] = (*BaseGateOperator.template_fields, "data_path", "model_name",
                                      "hyperparameters", "seed", "data_gate_task_id", "dp_sgd",
                                      "adversarial_training", "ledger_url", "defensive_distillation",
                                      "input_defence")

    def __init__(self, *, training_callable: str | Callable[..., Any], data_path: str,
                 model_name: str | None = None, hyperparameters: dict[str, Any] | None = None, seed: int = 0,
                 data_gate_task_id: str = "data_integrity",
                 code_path: str | None = None, pip_requirements: list[str] | None = None,
                 dp_sgd: dict[str, Any] | None = None, adversarial_training: dict[str, Any] | None = None,
                 ledger_url: str | None = None, torch_serialization: Literal["pt2", "pickle"] = "pt2",
                 defensive_distillation: dict[str, Any] | None = None, input_defence: dict[str, Any] | None = None,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.training_callable = training_callable
        self.data_path = data_path
        self.model_name = model_name
        self.hyperparameters = hyperparameters or {}
        self.seed = seed
        self.data_gate_task_id = data_gate_task_id
        self.code_path = code_path
        self.pip_requirements = pip_requirements
        self.dp_sgd = dp_sgd
        self.adversarial_training = adversarial_training
        self.ledger_url = ledger_url
        self.torch_serialization = torch_serialization
        self.defensive_distillation = defensive_distillation
        self.input_defence = input_defence

    def subject(self) -> Subject:
        return Subject("model", f"models:/{self.model_name or '(policy model_name)'}", "unknown")

    def check(self, context: Context, workdir: Path) -> GateResult:
        import mlflow

        from mlgate.gates.model.fitting import AdversarialOptions, DistillationOptions, DpSgdOptions
        from mlgate.gates.model.input_defences import InputDefence
        from mlgate.gates.model.isolated_training import code_version_isolated, train_isolated

        started = utcnow()
        name = self.model_name or self.policy.promotion.model_name
        dp_sgd = DpSgdOptions.parse("dp_sgd", self.dp_sgd)
        AdversarialOptions.parse("adversarial_training", self.adversarial_training)  # bad options: refused here
        DistillationOptions.parse("defensive_distillation", self.defensive_distillation)
        if self.input_defence is not None:
            InputDefence.parse(self.input_defence)
        if self.torch_serialization not in ("pt2", "pickle"):
            raise GateInputError(f"torch_serialization must be 'pt2' or 'pickle', got {self.torch_serialization!r}")
        if dp_sgd:
            self.policy.section("data.privacy")  # the budgets DP-SGD is charged to: a missing section fails here
        data_digest = verified_data_digest(context, self.data_gate_task_id, "train")
        target = import_path_of(self.training_callable, "training_callable")  # the child imports it, never we
        code_dir = Path(self.code_path or module_file(target, "training_callable").parent)
        code, code_tree = code_version_isolated(code_dir, self.policy.sandbox), code_digest(code_dir)
        libraries = library_versions()
        seed = int(self.seed)
        record = TrainingRecord(params=dict(self.hyperparameters), data_digests={"data.integrity": data_digest},
                                code_version=code, seed=seed, library_versions=libraries, code_digest=code_tree,
                                model_uri=f"models:/{name}")
        refused = dp_requirement(self.policy, dp_sgd.target_epsilon if dp_sgd else None)
        if refused:
            return check_training(record, self.policy, started, refused)
        client = self.mlflow_hook.get_conn()
        run_id = pipeline_run(client, self.mlflow_experiment, pipeline_key(context))
        with mlflow_errors("recording the training inputs", client.tracking_uri), mlflow.start_run(run_id=run_id):
            mlflow.log_params({**self.hyperparameters, "seed": seed})
            mlflow.set_tags({"mlgate.code_version": code, TAG_DATA_DIGEST: data_digest,
                             "mlgate.library_versions": json.dumps(libraries, sort_keys=True)})
        training = partial(train_isolated, target, data_path=self.data_path, params=dict(self.hyperparameters),
                           seed=seed, dp_sgd=self.dp_sgd, adversarial=self.adversarial_training,
                           torch_serialization=self.torch_serialization, pip_requirements=self.pip_requirements,
                           libraries=libraries, limits=self.policy.sandbox,
                           distillation=self.defensive_distillation, input_defence=self.input_defence)
        spends = (str(workdir / "ledger.jsonl"),) if dp_sgd else ()  # the ledger's mirror in MLflow (ADR 0008)
        if dp_sgd:  # the budget is charged here, where the ledger's credentials are, never in the child
            training()  # the code runs once to refuse what cannot be fitted before anything is spent
            refused = self.charge_ledger(context, workdir, data_digest, dp_sgd, name)
            if refused:
                return replace(check_training(record, self.policy, started, refused), artifacts=spends)
        trained = training(out_dir=workdir / "model")
        if dp_sgd and "dp_epsilon" not in trained.metrics:
            raise ToolError("model.training: the DP-SGD training child reported no dp_epsilon")
        how = {f"training.{k}": v for k, v in trained.params.items()}
        with mlflow_errors("logging the training results", client.tracking_uri), mlflow.start_run(run_id=run_id):
            mlflow.log_params(how)
            mlflow.log_metrics(trained.metrics)
        version = register_model_dir(client, run_id, trained.model_dir, name, params=how,
                                     tags={"mlgate.sandbox": trained.sandbox})
        model_uri = f"models:/{name}/{version}"
        with mlflow_errors("tagging the model version", client.tracking_uri):
            digest = model_digest(client, model_uri)
            tags = {TAG_MODEL_DIGEST: digest, TAG_DATA_DIGEST: data_digest, TAG_CODE_DIGEST: code_tree,
                    "mlgate.code_version": code, "mlgate.seed": str(seed), "mlgate.pipeline": pipeline_key(context),
                    "mlgate.training.method": trained.params.get("method", "callable"),
                    **({"mlgate.dp_epsilon": f"{trained.metrics['dp_epsilon']:.6g}"} if dp_sgd else {})}
            for key, value in tags.items():
                client.set_model_version_tag(name, version, key, value)
        context["ti"].xcom_push(key="model_name", value=name)
        context["ti"].xcom_push(key="model_version", value=version)
        record = replace(record, params={**record.params, **how}, model_uri=model_uri, model_digest=digest,
                         metrics=trained.metrics)
        result = check_training(record, self.policy, started)
        findings = result.findings
        if trained.note:
            findings += (Finding(f"{self.gate_id}.sandbox", Severity.INFO, f"trained in a spawned child with "
                                 f"{trained.note}"),)
        return replace(result, metrics={**result.metrics, "sandbox": trained.sandbox}, findings=findings,
                       artifacts=spends)

    def charge_ledger(self, context: Context, workdir: Path, data_digest: str, options: Any,
                      name: str) -> Finding | None:
        """Charge the target (ε, δ) to the training data's budget before training (a finding if it cannot)
        and write the data's spend history to ``ledger.jsonl``."""
        from mlgate.gates.data.privacy_ledger import BudgetExceededError, SqlLedger

        budget = self.policy.section("data.privacy").budgets.for_dataset(data_digest)
        ledger = SqlLedger(self.ledger_url or default_ledger_url())
        refused = None
        try:
            ledger.spend(data_digest, options.target_epsilon, options.target_delta, f"DP-SGD training of {name}",
                         task_actor(context), budget=budget)
        except BudgetExceededError as exc:
            refused = Finding(f"{self.gate_id}.privacy_budget_exceeded", Severity.HIGH, f"not trained: {exc}")
        try:
            (workdir / "ledger.jsonl").write_text("".join(s.to_json_line() for s in ledger.history(data_digest)))
        finally:
            ledger.close()
        return refused
