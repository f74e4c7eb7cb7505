"""The secure training pipeline: integrity → expectations → training → promotion.

Every gate records its evidence in the DAG run's MLflow run; promotion moves the ``champion`` alias
only when every gate the policy requires passed for exactly this data and model. Paths come from
params (override them with the run's conf); defaults point at the demo data under ``MLGATE_HOME``.
"""

from __future__ import annotations

import os
from pathlib import Path

from airflow.sdk import DAG, Param

from mlgate.operators import (
    DataExpectationsGateOperator,
    DataIntegrityGateOperator,
    ModelTrainingGateOperator,
    RegistryPromoteGateOperator,
)

HOME = Path(os.environ.get("MLGATE_HOME", ".mlgate")).absolute()
POLICY = Path(__file__).resolve().parent.parent / "policies" / "default.yaml"
gate_args = {"policy_path": "{{ params.policy_path }}"}

with DAG(
    dag_id="secure_training_pipeline",
    description="Train the loan-default model behind mlgate's data, training and promotion gates",
    schedule=None,
    catchup=False,
    tags=["mlgate", "security"],
    params={
        "data_path": Param(str(HOME / "data" / "loans.csv"), type="string", description="dataset to train on"),
        "manifest_path": Param(str(HOME / "data" / "loans.manifest.json"), type="string",
                               description="pinned manifest of the dataset (mlgate pin)"),
        "policy_path": Param(str(POLICY), type="string", description="mlgate policy YAML"),
    },
) as dag:
    integrity = DataIntegrityGateOperator(task_id="data_integrity", data_path="{{ params.data_path }}",
                                          manifest_path="{{ params.manifest_path }}", **gate_args)
    expectations = DataExpectationsGateOperator(task_id="data_expectations", data_path="{{ params.data_path }}",
                                                **gate_args)
    train = ModelTrainingGateOperator(
        task_id="train_model",
        training_callable="mlgate.demo.train:train_loan_model",
        data_path="{{ params.data_path }}",
        hyperparameters={"C": 1.0, "max_iter": 500},
        seed=7,
        **gate_args,
    )
    promote = RegistryPromoteGateOperator(task_id="promote_model", **gate_args)

    integrity >> expectations >> train >> promote
