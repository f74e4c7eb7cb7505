"""Every 6 hours, re-sign the served model's signed alias state, so its 24 h expiry never lapses in normal
operation and a store frozen in the past (or a re-signer that stopped) is noticed by every loader (ADR 0014).

Re-signing refuses, and the task fails, when the audit trail does not verify or does not explain the
alias (a direct move), or when the state is expired or older than the newest audited decision.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from airflow.sdk import DAG, Param, task

POLICY = Path(__file__).resolve().parent.parent / "policies" / "default.yaml"

with DAG(
    dag_id="alias_resign",
    description="Re-sign the served model's alias state before it expires; fail on a tampered audit trail",
    schedule=timedelta(hours=6),
    start_date=datetime(2026, 1, 1, tzinfo=UTC),
    catchup=False,
    max_active_runs=1,
    tags=["mlgate", "security"],
    params={"policy_path": Param(str(POLICY), type="string", description="mlgate policy YAML")},
) as dag:

    @task(retries=0)
    def resign(params: dict | None = None) -> dict:
        from mlgate.core.policy import load_policy
        from mlgate.hooks.mlflow import MlflowHook
        from mlgate.hooks.signing import SigningKeyHook
        from mlgate.trust.audit_verify import resign_alias

        policy = load_policy(params["policy_path"])
        state = resign_alias(MlflowHook().get_conn(), SigningKeyHook().get_conn(), policy.promotion.model_name,
                             policy.promotion.alias)
        return {"version": state.version, "sequence": state.sequence, "expires": state.expires.isoformat()}

    resign()
