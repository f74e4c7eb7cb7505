"""mlgate: security gates on the ML lifecycle. Importing the package loads nothing heavy."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any


def load_model(model_uri: str, *, trusted_keys: Iterable[str | Path] | None = None, policy: Any = None) -> Any:
    """Load ``models:/name/version`` (or ``models:/name@alias``) as an MLflow pyfunc model, only if its signed
    attestation verifies for exactly the downloaded files; else raise ``UntrustedModelError``. A torch model
    comes behind the input defence its version declares (ADR 0031).
    See :func:`mlgate.trust.loading.load_verified_model`."""
    from mlgate.gates.model.input_defences import serve_declared
    from mlgate.trust.loading import load_verified_model

    return load_verified_model(model_uri, trusted_keys=trusted_keys, policy=policy, prepare=serve_declared)
