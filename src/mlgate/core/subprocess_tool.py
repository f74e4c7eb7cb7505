"""Run an external tool (trivy, bandit) the one way the house allows: argv list, hard timeout, stdout back.

The tool gets its own session (process group), so a timeout kills the tool and every child it started;
a non-zero exit is a ``ToolError`` carrying the tail of stderr, never a silent pass.
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

from mlgate.core.errors import ToolError

STDERR_TAIL = 2048


def run_tool(argv: Sequence[str], timeout_s: float, *, name: str | None = None,
             env: Mapping[str, str] | None = None) -> str:
    """Run ``argv`` and return its stdout; ``name`` (default: the program's file name) labels errors;
    ``env``, when given, is the tool's whole environment (nothing inherited)."""
    label = name or Path(argv[0]).name
    try:
        proc = subprocess.Popen(list(argv), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                start_new_session=True, text=True, errors="replace",
                                env=dict(env) if env is not None else None)
    except OSError as exc:
        raise ToolError(f"cannot run {label} at {argv[0]}: {exc.strerror or exc}") from None
    try:
        stdout, stderr = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # the session id is the tool's pid: its children die with it
        proc.communicate()
        raise ToolError(f"{label} timed out after {timeout_s:g}s") from None
    if proc.returncode != 0:
        tail = stderr.strip()[-STDERR_TAIL:]
        raise ToolError(f"{label} exited with status {proc.returncode}: {tail}")
    return stdout

