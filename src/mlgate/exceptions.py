"""Airflow-facing exceptions, chosen by retry semantics (ADR 0002).

A policy violation or an invalid policy/input is deterministic: retrying cannot help, so they derive
from ``AirflowFailException``. A tool or service failure raises a plain ``AirflowException`` (retryable).
"""

from __future__ import annotations

from airflow.sdk.exceptions import AirflowFailException


class GatePolicyViolation(AirflowFailException):
    """A gate blocked by policy (or promotion refused). Never retried."""


class GateConfigViolation(AirflowFailException):
    """The policy or a gate's input is invalid. Never retried: fix the configuration."""
