"""The user a Dockerfile's final stage runs as: the red team's bypasses of trivy's DS-0002."""

from __future__ import annotations

import textwrap

import pytest

from mlgate.gates.deploy.dockerfile import runs_as_root

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(("text", "root"), [
    ("FROM python:3.12-slim AS build\nUSER 1000\nFROM python:3.12-slim\nCMD python\n", True),
    ("FROM python:3.12-slim\nUSER 00\n", True),
    ("FROM python:3.12-slim\nUSER +0:1000\n", True),
    ("FROM python:3.12-slim\nARG U=0\nUSER ${U:-1000}\n", True),
    ("FROM python:3.12-slim\nUSER ${U:-0}\n", True),
    ("ARG U=0\nFROM python:3.12-slim\nARG U\nUSER $U\n", True),
    ("FROM python:3.12-slim\nUSER 1000\nUSER root\n", True),
    ("FROM python:3.12-slim\nENV \\\n  U=0\nUSER $U\n", True),
    ("FROM python:3.12-slim\n", True),
    ("FROM python:3.12-slim\nUSER 10001:10001\n", False),
    ("FROM python:3.12-slim AS base\nUSER 1000\nFROM base\nCMD python\n", False),
    ("ARG IMG=python\nFROM ${IMG} AS base\nUSER app\nFROM base AS final\n# USER 0\nCMD python\n", False),
    ("FROM python:3.12-slim\nARG U=1000\nUSER ${U}\n", False),
])
def test_the_final_stage_user_is_followed_through_stages_and_defaults(text, root):
    assert runs_as_root(textwrap.dedent(text))[0] is root


def test_the_repository_dockerfile_does_not_run_as_root():
    from tests.conftest import ROOT

    text = (ROOT / "Dockerfile").read_text()
    last_user = max(n for n, line in enumerate(text.splitlines(), 1) if line.startswith("USER "))
    assert runs_as_root(text) == (False, last_user)
