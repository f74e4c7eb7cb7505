"""The private training pipeline: a loan-default MLP trained with DP-SGD, charged to its data's privacy
budget, then scanned, attacked (evasion and membership inference) and promoted under its own policy.

The policy demands DP-SGD at ε ≤ 3 (``max_dp_epsilon``) and gives each dataset a lifetime budget of
ε = 5: a run on data already trained on privately is blocked before it trains. Paths come from params;
defaults point at the demo data under ``MLGATE_HOME``.
"""

from __future__ import annotations

from pathlib import Path

from airflow.sdk import DAG, Param

from mlgate.operators import (
    DataIntegrityGateOperator,
    DataPiiGateOperator,
    ModelArtifactGateOperator,
    ModelPrivacyGateOperator,
    ModelRobustnessGateOperator,
    ModelTrainingGateOperator,
    RegistryPromoteGateOperator,
)
from mlgate.trust.registry import mlgate_home

HOME = mlgate_home()
POLICY = Path(__file__).resolve().parent.parent / "policies" / "private-training.yaml"
gate_args = {"policy_path": "{{ params.policy_path }}"}
data = "{{ params.data_path }}"

with DAG(
    dag_id="private_training_pipeline",
    description="Train the loan-default MLP with DP-SGD within its data's privacy budget, behind mlgate's gates",
    schedule=None,
    catchup=False,
    tags=["mlgate", "security", "privacy"],
    params={
        "data_path": Param(str(HOME / "data" / "loans.csv"), type="string", description="dataset to train on"),
        "manifest_path": Param(str(HOME / "data" / "loans.manifest.json"), type="string",
                               description="pinned manifest of the dataset (mlgate pin)"),
        "policy_path": Param(str(POLICY), type="string", description="mlgate policy YAML"),
        "target_epsilon": Param(3.0, type="number", exclusiveMinimum=0, description="DP-SGD target ε"),
    },
) as dag:
    integrity = DataIntegrityGateOperator(task_id="data_integrity", data_path=data,
                                          manifest_path="{{ params.manifest_path }}", **gate_args)
    pii = DataPiiGateOperator(task_id="data_pii", data_path=data, **gate_args)
    train = ModelTrainingGateOperator(
        task_id="train_model",
        training_callable="mlgate.demo.private_train:train_loan_mlp",
        data_path=data,
        hyperparameters={"hidden": 32, "epochs": 10, "batch_size": 128, "lr": 0.01},
        dp_sgd={"target_epsilon": "{{ params.target_epsilon }}", "target_delta": 1e-5, "max_grad_norm": 1.0},
        seed=7,
        **gate_args,
    )
    artifact = ModelArtifactGateOperator(task_id="model_artifact", **gate_args)
    validation_args = {"data_callable": "mlgate.demo.private_train:validation_data", "data_path": data, "seed": 7,
                       **gate_args}
    validations = [
        ModelRobustnessGateOperator(task_id="model_robustness", **validation_args),
        ModelPrivacyGateOperator(task_id="model_privacy", **validation_args),
    ]
    promote = RegistryPromoteGateOperator(task_id="promote_model", **gate_args)

    integrity >> pii >> train >> artifact >> validations >> promote
