"""The documented CI workflow stays in step with the command line it calls."""

from __future__ import annotations

import shlex

import pytest
import yaml

from mlgate.cli import build_parser
from tests.conftest import ROOT

pytestmark = pytest.mark.unit

WORKFLOW = ROOT / "docs" / "ci" / "github-actions.yml"


def mlgate_commands() -> list[list[str]]:
    steps = yaml.safe_load(WORKFLOW.read_text())["jobs"]["gates"]["steps"]
    lines = [line for step in steps for line in step.get("run", "").splitlines() if line.startswith("mlgate ")]
    return [shlex.split(line.replace("$REPORTS", "reports"))[1:] for line in lines]


def test_every_documented_check_parses_and_the_sarif_report_is_uploaded():
    commands = mlgate_commands()
    parser = build_parser()
    gates = [parser.parse_args(argv).gate for argv in commands]
    assert gates == ["data.integrity", "data.pii", "code.static", "code.dependencies", "deploy.config",
                     "model.artifact"]
    sarif = next(parser.parse_args(argv).sarif for argv in commands if argv[1] == "code.static")
    steps = yaml.safe_load(WORKFLOW.read_text())["jobs"]["gates"]["steps"]
    upload = next(s for s in steps if s.get("uses", "").startswith("github/codeql-action/upload-sarif"))
    assert upload["with"]["sarif_file"] == sarif.replace("reports", "mlgate-reports")
