"""What mlgate ships beside its code, and which policy a command uses (ADR 0027).

A wheel carries the repository's ``policies/``, ``expectations/`` and ``dags/`` as ``mlgate/resources/…``
(``pyproject.toml``, ``force-include``: the same bytes, so the shipped default policy has the digest the
demo and tests pin). In a checkout the files are read where they live. The policy a command uses is, in
order: ``--policy``, ``MLGATE_POLICY``, ``./policies/default.yaml``, the shipped default.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

from mlgate.core.errors import PolicyError
from mlgate.core.policy import Policy, load_policy

POLICY_ENV = "MLGATE_POLICY"
DEFAULT_POLICY = "policies/default.yaml"


def shipped(relative: str) -> Path:
    """A shipped file (``policies/default.yaml``, ``expectations/loans.json``, ``dags/…``): the wheel's copy,
    else the checkout's (``src/mlgate`` two levels below the repository root)."""
    package = Path(str(files("mlgate")))
    for root in (package / "resources", package.parents[1]):
        if (root / relative).exists():
            return root / relative
    raise PolicyError(f"mlgate ships no {relative} (looked in {package / 'resources'} and {package.parents[1]})")


@dataclass(frozen=True)
class PolicyChoice:
    path: Path
    origin: str  # how it was chosen, for the summary and for errors

    def hint(self) -> str:
        return f"policy {self.path} ({self.origin}; choose another with --policy FILE or {POLICY_ENV})"


def choose_policy(explicit: str | Path | None = None) -> PolicyChoice:
    """``explicit`` (``--policy``), else ``MLGATE_POLICY``, else ``./policies/default.yaml``, else the shipped
    default: a new user's first ``mlgate check`` works from any directory."""
    if explicit:
        return PolicyChoice(Path(explicit), "from --policy")
    if env := os.environ.get(POLICY_ENV):
        return PolicyChoice(Path(env), f"from {POLICY_ENV}")
    if Path(DEFAULT_POLICY).is_file():
        return PolicyChoice(Path(DEFAULT_POLICY).absolute(), f"./{DEFAULT_POLICY} of the current directory")
    return PolicyChoice(shipped(DEFAULT_POLICY), "the default shipped with mlgate")


def load_chosen_policy(explicit: str | Path | None = None) -> tuple[Policy, PolicyChoice]:
    """The chosen policy, validated; a policy error says which file was chosen and how to choose another."""
    choice = choose_policy(explicit)
    try:
        return load_policy(choice.path), choice
    except PolicyError as exc:
        raise PolicyError(f"{exc}\n  (using {choice.hint()})") from None
