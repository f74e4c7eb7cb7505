"""Respond to an incident reported by a person or a system (trigger with conf or the UI form).

The same response as the monitoring DAG's: the named (default: served) version is demoted and tagged,
the alias moves back to the last version whose evidence still passes or is removed, the incident is
recorded in the ``mlgate-incidents`` MLflow experiment and retraining is requested.
"""

from __future__ import annotations

from pathlib import Path

from airflow.sdk import DAG, Param

from mlgate.operators import IncidentRespondOperator

POLICY = Path(__file__).resolve().parent.parent / "policies" / "default.yaml"

with DAG(
    dag_id="incident_response",
    description="Demote a model version reported as bad, restore the last good one, request retraining",
    schedule=None,
    catchup=False,
    tags=["mlgate", "security", "incident"],
    params={
        "reason": Param(type="string", minLength=1, description="what was observed (recorded with the incident)"),
        "model_name": Param("", type="string", description="registered model (default: the policy's)"),
        "version": Param("", type="string", description="the bad version (default: the one the alias serves)"),
        "policy_path": Param(str(POLICY), type="string", description="mlgate policy YAML"),
    },
) as dag:
    IncidentRespondOperator(task_id="respond", model_name="{{ params.model_name }}", version="{{ params.version }}",
                            reason="{{ params.reason }}", policy_path="{{ params.policy_path }}")
