"""The error taxonomy of the core.

Every failure a gate can meet falls in one of three families, because each maps to a different
decision downstream (ADR 0001, 0002):

* ``PolicyError`` and ``GateInputError`` — the configuration or the input is wrong. Retrying cannot
  help; the task fails without retry.
* ``ToolError`` — a tool or service (GX, trivy, MLflow) failed, timed out or answered garbage.
  Retrying may help.
* ``EvidenceError`` — evidence is missing, unreadable or does not match what is being promoted.

None of them may carry a secret or PII value in its message: the base class redacts anything that looks
like key material from its arguments when it is raised (ADR 0013).
"""

from __future__ import annotations

from mlgate.core.redaction import redact


class MlgateError(Exception):
    """Base of every error raised by mlgate's core."""

    def __init__(self, *args: object) -> None:
        super().__init__(*(redact(a) if isinstance(a, str) else a for a in args))


class PolicyError(MlgateError):
    """The policy file is missing or invalid; the message names the key path, expectation and value."""


class GateInputError(MlgateError):
    """A gate's input (a path, a manifest, a suite) is missing or malformed."""


class ToolError(MlgateError):
    """An external tool or service failed; retryable."""


class EvidenceError(MlgateError):
    """Evidence is missing, unreadable, or bound to something other than what is checked."""


class UnverifiedEvidenceError(EvidenceError):
    """Evidence that is unsigned, signed by a key not trusted for its gate, or about another subject: it
    counts as missing (ADR 0013)."""
