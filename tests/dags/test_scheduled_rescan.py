"""The daily re-scan, run by Airflow: a vulnerable serving image raises an incident on the promoted version."""

from __future__ import annotations

import itertools
import uuid

import pytest

from mlgate.demo.dataset import write_loans
from mlgate.gates.data.integrity import build_manifest
from mlgate.hooks.mlflow import MlflowHook
from mlgate.trust.registry import current_alias_version
from tests.fixtures.oci_image import FIXED, VULNERABLE, write_docker_archive
from tests.helpers import default_policy, write_policy

pytestmark = pytest.mark.dags
SEEDS = itertools.count(301)


@pytest.fixture(scope="module")
def dags(dag_bag):
    return dag_bag.get_dag("secure_training_pipeline"), dag_bag.get_dag("scheduled_rescan")


@pytest.fixture(scope="module")
def promoted(dags, tmp_path_factory):
    """A model promoted by the real pipeline, under a policy of its own."""
    tmp = tmp_path_factory.mktemp("rescan")
    data = write_loans(tmp / "loans.csv", rows=4000, seed=next(SEEDS))
    policy = default_policy()
    policy["promotion"]["model_name"] = f"rescan-{uuid.uuid4().hex[:8]}"
    policy_path = write_policy(tmp / "policy.yaml", policy)
    run = dags[0].test(run_conf={"data_path": str(data), "manifest_path": str(build_manifest(data).save(
        tmp / "m.json")), "policy_path": str(policy_path), "profile_path": str(tmp / "profile.json")})
    assert str(run.state) == "success"
    name = policy["promotion"]["model_name"]
    return name, current_alias_version(MlflowHook().get_conn(), name, "champion"), policy_path, tmp


@pytest.mark.parametrize(("image", "state", "incident"), [(FIXED, "success", False), (VULNERABLE, "failed", True)],
                         ids=["fixed-image", "vulnerable-image"])
def test_a_vulnerability_in_the_deployed_image_tags_the_promoted_version(dags, promoted, image, state, incident):
    name, version, policy_path, tmp = promoted
    tarball = write_docker_archive(tmp / f"image-{uuid.uuid4().hex[:6]}.tar", image)
    run = dags[1].test(run_conf={"policy_path": str(policy_path), "image": str(tarball)})
    tasks = {ti.task_id: str(ti.state) for ti in run.get_task_instances()}
    assert (str(run.state), tasks["rescan_sbom"]) == (state, "success")
    assert tasks["rescan_image"] == ("failed" if incident else "success")
    tags = MlflowHook().get_conn().get_model_version(name, version).tags
    assert ("CVE-2023-4911" in tags.get("mlgate.incident.deploy.container", "")) is incident
