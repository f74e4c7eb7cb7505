"""Running a gate so that it always yields a GateResult: the fail-closed wrapper shared by CLI and operators.

Any exception inside a gate becomes a result with status ``error`` (which promotion treats as blocked),
and the exception travels beside it so the caller can pick the retry semantics (ADR 0002).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from mlgate.core.errors import GateInputError, PolicyError, ToolError
from mlgate.core.results import GateResult, Status, Subject, ToolInfo, error_result, utcnow


@dataclass(frozen=True)
class GateOutcome:
    result: GateResult
    error: BaseException | None = None

    @property
    def retryable(self) -> bool:
        """A tool or service failure may heal (also one a gate reported as an ``error`` result without
        raising); a bad policy or input never does."""
        return self.result.status is Status.ERROR and not isinstance(self.error, PolicyError | GateInputError)

    @property
    def exit_code(self) -> int:
        """The CLI contract: 0 passed, 1 blocked by policy, 2 error."""
        return {Status.PASSED: 0, Status.BLOCKED: 1}.get(self.result.status, 2)


def run_gate(gate: str, subject: Subject, check: Callable[[], GateResult],
             policy_digest: Callable[[], str]) -> GateOutcome:
    """Run ``check``; on any exception return an ``error`` result about ``subject``."""
    started = utcnow()
    try:
        result = check()
        if not isinstance(result, GateResult):
            raise ToolError(f"{gate} produced malformed output: {type(result).__name__}, not a GateResult")
        return GateOutcome(result)
    except Exception as exc:
        try:
            digest = policy_digest()
        except Exception:
            digest = "unknown"
        return GateOutcome(error_result(gate, subject, digest, ToolInfo("mlgate", "n/a"), started, exc), exc)
