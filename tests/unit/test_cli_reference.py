"""The CLI documents itself: every argument has help, every gate says what it checks and what its exit codes
mean, and the reference in README.md and docs/cli.md is what argparse defines (regenerate with
``python scripts/cli_reference.py``)."""

from __future__ import annotations

import argparse
import importlib.util

import pytest

from mlgate.cli import EXIT_CODES, build_parser
from tests.conftest import ROOT

pytestmark = pytest.mark.unit


def _generator():
    spec = importlib.util.spec_from_file_location("cli_reference", ROOT / "scripts" / "cli_reference.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_readme_and_docs_reference_match_the_parser():
    for path, text in _generator().generated().items():
        assert path.read_text() == text, f"{path.name} drifted from mlgate.cli: run python scripts/cli_reference.py"


def test_every_argument_of_every_command_has_help():
    missing = [f"{prog} {action.dest}" for prog, sub, _ in _generator().commands(build_parser())
               for action in sub._actions if not action.help and not isinstance(action, argparse._HelpAction)]
    assert not missing


def test_every_gate_says_what_it_checks_and_its_exit_codes():
    for prog, sub, help_text in _generator().commands(build_parser()):
        if prog.startswith("mlgate check "):
            assert help_text and sub.description and sub.epilog == EXIT_CODES, prog
