"""The version a worker serves, kept in step with the signed alias state.

Loading goes only through ``mlgate.load_model`` (attestation, signed alias state, revocation). Every
``recheck_s`` seconds a thread asks :func:`mlgate.trust.loading.servable_version` which version may be
served now (no download): the same version keeps being served; another one is loaded through
``mlgate.load_model`` and swapped in; a refusal, or a check that cannot be made (MLflow down), empties
the slot and requests get 503 until a check succeeds again. So a demoted or revoked version stops being
served within one interval (plus the check's own duration), and never on an unchecked assumption.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from mlgate.core.redaction import redact
from mlgate.serving.inputs import InputSchema

log = logging.getLogger("mlgate.serve")


@dataclass(frozen=True)
class Loaded:
    name: str
    version: str
    model: Any
    schema: InputSchema


class ServedModel:
    def __init__(self, model_uri: str, load: Callable[[str], Any], check: Callable[[str], str],
                 make_schema: Callable[[Any], InputSchema], recheck_s: float) -> None:
        self.model_uri, self.name = model_uri, model_uri.removeprefix("models:/").split("@")[0].split("/")[0]
        self._load, self._check, self._make_schema, self._recheck_s = load, check, make_schema, recheck_s
        self.current: Loaded | None = None
        self.reason = "not loaded yet"
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="mlgate-recheck", daemon=True)

    def start(self) -> None:
        """Re-check every interval from now on. The worker calls :meth:`refresh` once first, before it accepts
        connections: a worker still loading takes no requests (a sibling that has loaded does)."""
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def refresh(self) -> None:
        """One check: keep, swap or empty the slot."""
        try:
            version = self._check(self.model_uri)
            if self.current is None or self.current.version != version:
                model = self._load(self.model_uri)
                if self._check(self.model_uri) != version:  # the alias moved while loading: next round
                    raise RuntimeError(f"{self.model_uri} moved while version {version} was loading")
                self.current = Loaded(self.name, version, model, self._make_schema(model))
                log.warning("serving %s version %s", self.name, version)
            self.reason = ""
        except Exception as exc:  # noqa: BLE001 - any failure to confirm the version stops serving it
            reason = f"{type(exc).__name__}: {redact(exc)[:300]}"
            if self.current is not None or reason != self.reason:
                log.warning("not serving %s (was version %s): %s", self.name,
                            self.current.version if self.current else "none", reason)
            self.current, self.reason = None, reason

    def _run(self) -> None:
        while not self._stop.wait(self._recheck_s):
            self.refresh()
