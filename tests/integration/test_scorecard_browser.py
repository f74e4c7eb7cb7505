"""The scorecard as a person sees it: rendered by a real headless Chromium, DOM read back, screenshot taken.

Two scorecards: a sample one that shows a blocked version, and the REAL one promotion logged to MLflow
after a pipeline run on the embedded store (every gate the default policy requires, plus the robustness
gate on the trained classifier). Set ``MLGATE_UPDATE_SCREENSHOT=1`` to refresh ``docs/img/scorecard.png``
from the real one.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.fixtures.scorecard import read_page, sample_scorecard
from tests.helpers import context, default_policy, new_run, promote_op, run_pipeline, write_policy

pytestmark = pytest.mark.integration

CHROMIUM = Path("/usr/bin/chromium")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def chromium(tmp_path: Path, *args: str) -> str:
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install -y chromium)")
    argv = [str(CHROMIUM), "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
            "--no-first-run", "--disable-component-update", "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}",
            *args]
    return subprocess.run(argv, capture_output=True, text=True, check=True, timeout=120, cwd=tmp_path).stdout


@pytest.fixture(scope="module")
def page_file(tmp_path_factory) -> Path:
    from mlgate.trust.scorecard import render_scorecard

    directory = tmp_path_factory.mktemp("browser")
    path = directory / "scorecard.html"
    path.write_text(render_scorecard(**sample_scorecard(directory)))
    return path


def test_the_browser_shows_the_verdict_and_every_gate_with_its_status(page_file):
    page = read_page(chromium(page_file.parent, "--dump-dom", page_file.as_uri()))
    assert page.texts["verdict"].strip() == "✖ BLOCKED"
    assert "code.dependencies is blocked" in page.texts["verdict-reasons"]
    statuses = {row[0]: row[1] for row in page.tables["gates"][1:]}
    assert statuses == {"code.dependencies": "✖ BLOCKED", "data.expectations": "✔ PASSED",
                        "data.integrity": "✔ PASSED", "data.pii": "✔ PASSED", "model.artifact": "✔ PASSED",
                        "model.robustness": "✔ PASSED", "model.training": "✔ PASSED",
                        "registry.promote": "? MISSING"}
    assert len(page.tables["coverage"]) == 7  # header + the six STRIDE categories


def robustness_of_the_classifier(run, upstream, workdir: Path):
    """The robustness gate (its operator is not in the pipeline yet) on the trained model's classifier, over
    the encoded features of the training data, logged with its curve to the version's run."""
    import numpy as np
    import pandas as pd

    from mlgate.core.policy import load_policy
    from mlgate.demo.dataset import FEATURES, TARGET
    from mlgate.demo.train import train_loan_model
    from mlgate.gates.model.robustness import RobustnessPolicy, check_robustness
    from mlgate.hooks.mlflow import MlflowHook
    from mlgate.trust.registry import log_result

    client = MlflowHook().get_conn()
    version = client.get_model_version(run["model"], upstream[("train_model", "model_version")])
    model, _ = train_loan_model(str(run["data"]), {"C": 0.5}, 3)  # the same fit as training_op's
    frame = pd.read_csv(run["data"])
    encoded = model.named_steps["prepare"].transform(frame[list(FEATURES)])
    x = np.asarray(encoded.todense() if hasattr(encoded, "todense") else encoded, dtype=np.float32)
    config = RobustnessPolicy(attacks=[{"name": "fgsm", "eps": 0.1, "samples": 200},
                                       {"name": "pgd", "eps": 0.1, "samples": 200}],
                              min_robust_accuracy=0.5, max_accuracy_drop=0.3)
    result = check_robustness(model.named_steps["classify"], x, frame[TARGET].to_numpy(), config,
                              load_policy(run["policy"]).digest, model_digest=version.tags["mlgate.model_digest"],
                              model_uri=f"models:/{run['model']}/{version.version}", out_dir=workdir)
    log_result(client, version.run_id, result)


@pytest.fixture(scope="module")
def real_page(tmp_path_factory, cache_dir) -> Path:
    """The scorecard promotion logged after a real pipeline run, downloaded from MLflow."""
    from mlgate.hooks.mlflow import MlflowHook
    from mlgate.operators import (
        CodeDependenciesGateOperator,
        CodeStaticGateOperator,
        DataPiiGateOperator,
        ModelArtifactGateOperator,
    )

    directory = tmp_path_factory.mktemp("real-scorecard")
    run = new_run(directory)
    policy = default_policy()
    policy["promotion"]["model_name"] = run["model"]
    policy["promotion"]["required_gates"] = ["data.integrity", "data.pii", "data.expectations", "code.static",
                                             "code.dependencies", "model.training", "model.artifact"]
    write_policy(run["policy"], policy)
    for beside in ("threat-model.yaml", "compliance.yaml"):  # the scorecard reads them next to the policy
        shutil.copyfile(ROOT / "policies" / beside, directory / beside)
    code = str(ROOT / "src" / "mlgate" / "demo")
    gate_args = {"policy_path": str(run["policy"])}
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AIRFLOW_CONN_TRIVY_DEFAULT", f'{{"conn_type": "trivy", "extra": {{"cache_dir": "{cache_dir}", '
                                                   f'"offline": true}}}}')
        upstream = run_pipeline(run)
        DataPiiGateOperator(task_id="data_pii", data_path=str(run["data"]), **gate_args).execute(
            context(run, "data_pii"))
        CodeStaticGateOperator(task_id="code_static", source_path=code, **gate_args).execute(
            context(run, "code_static"))
        CodeDependenciesGateOperator(task_id="code_dependencies", target=code, **gate_args).execute(
            context(run, "code_dependencies"))
        ModelArtifactGateOperator(task_id="model_artifact", **gate_args).execute(
            context(run, "model_artifact", {("train_model", k[1]): v for k, v in upstream.items()}))
    robustness_of_the_classifier(run, upstream, directory)
    promote_op(run).execute(context(run, "promote_model", upstream))
    client = MlflowHook().get_conn()
    run_id = client.get_model_version(run["model"], upstream[("train_model", "model_version")]).run_id
    return Path(client.download_artifacts(run_id, "scorecard.html", str(directory)))


def test_the_real_scorecard_shows_a_promotable_version_its_gates_decision_and_figures(real_page):
    page = read_page(chromium(real_page.parent, "--dump-dom", real_page.as_uri()))
    assert page.texts["verdict"].strip() == "✔ PROMOTABLE"
    statuses = {row[0]: row[1] for row in page.tables["gates"][1:]}
    assert statuses == dict.fromkeys(
        ["code.dependencies", "code.static", "data.expectations", "data.integrity", "data.pii", "model.artifact",
         "model.robustness", "model.training", "registry.promote"], "✔ PASSED")
    (header, decision) = page.tables["decisions"]
    assert decision[2] == "PROMOTED" and decision[3].startswith("airflow:ops/")
    assert decision[4] == "— → 1"
    assert len(page.tables["coverage"]) == 7
    html = real_page.read_text()
    assert 'alt="model.robustness: robustness_curve.png"' in html and "data:image/png;base64," in html


def test_screenshot_of_the_real_scorecard(real_page):
    shot = real_page.parent / "scorecard.png"
    chromium(real_page.parent, f"--screenshot={shot}", "--window-size=1280,1600", real_page.as_uri())
    data = shot.read_bytes()
    assert data.startswith(PNG_MAGIC) and len(data) > 50_000  # a blank page compresses to a few kB
    if os.environ.get("MLGATE_UPDATE_SCREENSHOT") == "1":
        shutil.copyfile(shot, ROOT / "docs" / "img" / "scorecard.png")
