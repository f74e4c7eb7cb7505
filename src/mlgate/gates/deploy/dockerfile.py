"""The user a Dockerfile's final stage runs as (``MLG-DOCKER-001``): what trivy's ``DS-0002`` misses.

Trivy's check compares the last ``USER`` of the whole file with ``root``/``0``: a ``USER 1000`` in a build
stage hid a final stage that never drops root, and ``USER 00``, ``USER +0`` or ``USER ${U:-0}`` (an
``ARG`` default) are uid 0 to the runtime. Here the final stage is followed through the stages it is
built ``FROM``, and its user is interpolated with the ``ARG``/``ENV`` defaults in scope.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from mlgate.gates.deploy import literals

_INSTRUCTION = re.compile(r"^\s*([A-Za-z]+)\s+(.*)$")


def instructions(text: str) -> Iterator[tuple[int, str, str]]:
    """(line, INSTRUCTION, arguments), continuation lines joined and comments dropped."""
    start, parts = 0, []
    for number, raw in enumerate(text.splitlines(), start=1):
        if not parts and (not raw.strip() or raw.lstrip().startswith("#")):
            continue
        if parts and raw.lstrip().startswith("#"):
            continue
        start = start if parts else number
        parts.append(raw.rstrip().removesuffix("\\"))
        if not raw.rstrip().endswith("\\"):
            match = _INSTRUCTION.match(" ".join(parts))
            parts = []
            if match:
                yield start, match[1].upper(), match[2].strip()


def _assignments(arguments: str) -> list[tuple[str, str]]:
    """``ARG a=1 b``, ``ENV a=1 b=2`` and the legacy ``ENV a 1`` as (name, default)."""
    words = arguments.split()
    if len(words) >= 2 and "=" not in words[0]:
        return [(words[0], " ".join(words[1:]))]
    return [(w.split("=", 1)[0], w.split("=", 1)[1].strip("\"'") if "=" in w else "") for w in words]


def final_user(text: str) -> tuple[str, int | None]:
    """The interpolated user the final stage runs as ('' when none is set) and the line setting it."""
    global_args: dict[str, str] = {}
    stages: dict[str, tuple[str, int | None]] = {}
    user, line, scope, in_stage, stage = "", None, dict[str, str](), False, ""
    for number, instruction, arguments in instructions(text):
        if instruction == "FROM":
            words = arguments.split()
            base = literals.interpolate(next((w for w in words if not w.startswith("--")), ""), global_args)
            user, line = stages.get(base.lower(), ("", None))
            scope, in_stage = {}, True
            stage = words[-1].lower() if len(words) >= 3 and words[-2].lower() == "as" else ""
            if stage:
                stages[stage] = (user, line)
        elif instruction in ("ARG", "ENV"):
            for name, default in _assignments(arguments):
                target = scope if in_stage else global_args
                value = global_args.get(name, "") if instruction == "ARG" and in_stage and not default else default
                target[name] = literals.interpolate(value, {**global_args, **scope})
        elif instruction == "USER" and in_stage:
            user, line = literals.interpolate(arguments, {**global_args, **scope}).strip(), number
            if stage:
                stages[stage] = (user, line)
    return user, line


def runs_as_root(text: str) -> tuple[bool, int | None]:
    user, line = final_user(text)
    return literals.is_root_user(user), line
