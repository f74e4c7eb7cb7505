"""Daily re-scan of the promoted model's SBOM and image: new CVEs are published after deployment.

A vulnerability over the policy tags the promoted version with an incident and fails the task (so the
failure reaches whoever watches this DAG); rolling back is incident response's call.
"""

from __future__ import annotations

import os
from pathlib import Path

from airflow.sdk import DAG, Param

from mlgate.operators.rescan import ChampionImageRescanOperator, ChampionSbomRescanOperator

POLICY = Path(__file__).resolve().parent.parent / "policies" / "default.yaml"

with DAG(
    dag_id="scheduled_rescan",
    description="Re-scan the promoted model's SBOM and serving image for vulnerabilities published since",
    schedule="@daily",
    catchup=False,
    tags=["mlgate", "security"],
    params={
        "policy_path": Param(str(POLICY), type="string", description="mlgate policy YAML"),
        "image": Param(os.environ.get("MLGATE_SERVING_IMAGE", ""), type="string",
                       description="image serving the promoted model: registry reference, docker-archive "
                                   "tarball or OCI layout"),
    },
) as dag:
    ChampionSbomRescanOperator(task_id="rescan_sbom", policy_path="{{ params.policy_path }}")
    ChampionImageRescanOperator(task_id="rescan_image", target="{{ params.image }}",
                                policy_path="{{ params.policy_path }}")
