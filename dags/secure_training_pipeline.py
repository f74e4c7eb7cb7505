"""The secure training pipeline: data and code gates → the training code run on contract-generated inputs
(code.dynamic) → training → model file scan → model validation → promotion.

Every gate records its evidence in the DAG run's MLflow run; promotion moves the ``champion`` alias
only when every gate the policy requires passed for exactly this data, code and model. Paths come from
params (override them with the run's conf); defaults point at the demo data under ``MLGATE_HOME``.
Besides manual runs, an incident response that demoted the model requests a run (Asset event).
"""

from __future__ import annotations

from importlib.util import find_spec
from pathlib import Path

from airflow.sdk import DAG, Param

from mlgate.operators import (
    CodeDependenciesGateOperator,
    CodeDynamicGateOperator,
    CodeStaticGateOperator,
    DataExpectationsGateOperator,
    DataIntegrityGateOperator,
    DataPiiGateOperator,
    DataPrivacyGateOperator,
    DeployConfigGateOperator,
    ModelArtifactGateOperator,
    ModelDosGateOperator,
    ModelExplainabilityGateOperator,
    ModelFairnessGateOperator,
    ModelPoisoningGateOperator,
    ModelPrivacyGateOperator,
    ModelRobustnessGateOperator,
    ModelTrainingGateOperator,
    RegistryPromoteGateOperator,
)
from mlgate.operators.incident import RETRAINING_REQUESTED
from mlgate.trust.registry import mlgate_home

HOME = mlgate_home()
ROOT = Path(__file__).resolve().parent.parent  # the checkout, or /opt/mlgate in the compose stack
POLICY = ROOT / "policies" / "default.yaml"
TRAINING_CODE = str(Path(find_spec("mlgate.demo").origin).parent)  # the code gates scan what training runs
gate_args = {"policy_path": "{{ params.policy_path }}"}
data = "{{ params.data_path }}"

with DAG(
    dag_id="secure_training_pipeline",
    description="Train the loan-default model behind mlgate's data, code, model and promotion gates",
    schedule=RETRAINING_REQUESTED,
    catchup=False,
    tags=["mlgate", "security"],
    params={
        "data_path": Param(str(HOME / "data" / "loans.csv"), type="string", description="dataset to train on"),
        "manifest_path": Param(str(HOME / "data" / "loans.manifest.json"), type="string",
                               description="pinned manifest of the dataset (mlgate pin)"),
        "policy_path": Param(str(POLICY), type="string", description="mlgate policy YAML"),
        "profile_path": Param(str(HOME / "profiles" / "loans.dp.json"), type="string",
                              description="where the DP reference profile for monitoring goes"),
    },
) as dag:
    integrity = DataIntegrityGateOperator(task_id="data_integrity", data_path=data,
                                          manifest_path="{{ params.manifest_path }}", **gate_args)
    pii = DataPiiGateOperator(task_id="data_pii", data_path=data, **gate_args)
    expectations = DataExpectationsGateOperator(task_id="data_expectations", data_path=data, **gate_args)
    privacy = DataPrivacyGateOperator(task_id="data_privacy", data_path=data, profile_path="{{ params.profile_path }}",
                                      **gate_args)
    static = CodeStaticGateOperator(task_id="code_static", source_path=TRAINING_CODE, **gate_args)
    dependencies = CodeDependenciesGateOperator(task_id="code_dependencies", target=TRAINING_CODE, **gate_args)
    deploy_config = DeployConfigGateOperator(task_id="deploy_config",
                                             target=[str(ROOT / "Dockerfile"), str(ROOT / "docker-compose.yml")],
                                             **gate_args)
    training_args = {"training_callable": "mlgate.demo.train:train_loan_model", "code_path": TRAINING_CODE,
                     "data_path": data, "hyperparameters": {"C": 1.0, "max_iter": 500}, "seed": 7, **gate_args}
    # The training code's model, fitted as training fits it, meets inputs generated from the policy's
    # expectation suite before the real training runs: a crash, NaN/inf or leak on them stops the pipeline.
    dynamic = CodeDynamicGateOperator(task_id="code_dynamic", **training_args)
    train = ModelTrainingGateOperator(task_id="train_model", **training_args)
    artifact = ModelArtifactGateOperator(task_id="model_artifact", **gate_args)
    validation_args = {"data_callable": "mlgate.demo.train:validation_data", "data_path": data, "seed": 7, **gate_args}
    validations = [
        ModelRobustnessGateOperator(task_id="model_robustness", **validation_args),
        ModelPrivacyGateOperator(task_id="model_privacy", **validation_args),
        ModelFairnessGateOperator(task_id="model_fairness", **validation_args),
        ModelExplainabilityGateOperator(task_id="model_explainability", **validation_args),
        ModelDosGateOperator(task_id="model_dos", **validation_args),
        ModelPoisoningGateOperator(task_id="model_poisoning", **validation_args),
    ]
    promote = RegistryPromoteGateOperator(task_id="promote_model", **gate_args)

    integrity >> [pii, expectations, privacy] >> dynamic >> train  # the code runs on data the data gates passed
    [static, dependencies, deploy_config] >> train
    train >> artifact >> validations >> promote
