"""Operator for ``data.privacy``: a differentially private profile of the training data, paid from a budget.

The profile is what monitoring compares live traffic against, so the monitoring store never holds raw
training rows. Each release is charged atomically to the dataset's ledger before any data is read. A release
the policy asks to carry the rows' query space (ADR 0067) is not DP: guard it as the model is.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlgate.core.results import GateResult, Subject
from mlgate.operators.base import BaseGateOperator, task_actor, verified_data_digest

if TYPE_CHECKING:
    from airflow.sdk import Context


def default_ledger_url() -> str:
    """``MLGATE_PRIVACY_LEDGER`` (a SQLAlchemy URL; PostgreSQL in production), else SQLite under MLGATE_HOME."""
    from mlgate.trust.registry import mlgate_home

    return os.environ.get("MLGATE_PRIVACY_LEDGER") or f"sqlite:///{mlgate_home() / 'privacy-ledger.db'}"


class DataPrivacyGateOperator(BaseGateOperator):
    """Releases the policy's DP statistics of ``data_path`` (verified by ``data_gate_task_id`` in this run)
    to ``profile_path``; blocks, releasing nothing, when the dataset's ε/δ budget would be exceeded."""

    gate_id = "data.privacy"
    template_fields: Sequence[str] = (*BaseGateOperator.template_fields, "data_path", "profile_path", "ledger_url")

    def __init__(self, *, data_path: str, profile_path: str | None = None, ledger_url: str | None = None,
                 data_gate_task_id: str = "data_integrity", purpose: str = "reference profile",
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.data_path = data_path
        self.profile_path = profile_path
        self.ledger_url = ledger_url
        self.data_gate_task_id = data_gate_task_id
        self.purpose = purpose

    def subject(self) -> Subject:
        return Subject("dataset", str(self.data_path), "unknown")

    def check(self, context: Context, workdir: Path) -> GateResult:
        from mlgate.gates.data.expectations import read_table
        from mlgate.gates.data.privacy import PROFILE_METRIC, check_privacy, released_copy
        from mlgate.gates.data.privacy_ledger import SqlLedger

        digest = verified_data_digest(context, self.data_gate_task_id, "release statistics")
        if self.profile_path:
            _publishable(Path(self.profile_path))
        ledger = SqlLedger(self.ledger_url or default_ledger_url())
        actor = task_actor(context)
        result, profile = check_privacy(read_table(Path(self.data_path)), digest, self.policy.section(self.gate_id),
                                        ledger, self.policy.digest, actor=actor, purpose=self.purpose,
                                        dataset_uri=str(self.data_path))
        history = workdir / "ledger.jsonl"
        history.write_text("".join(spend.to_json_line() for spend in ledger.history(digest)))
        artifacts = [str(history)]
        if profile is not None:
            released = workdir / "dp_profile.json"
            released.write_text(json.dumps(profile.to_dict(), indent=1))
            artifacts.append(str(released))
            if self.profile_path:
                kept = released_copy(self.profile_path, result.metrics[PROFILE_METRIC])
                for target in (kept, Path(self.profile_path)):  # the kept copy first: the newest names it
                    _publish(released, target)  # type: ignore[arg-type]  # json_digest's form: never None
        return replace(result, artifacts=(*result.artifacts, *artifacts))


def _publishable(profile_path: Path) -> None:
    """Refuse, before the budget is charged, a ``profile_path`` a release cannot be published to: charged first, a
    release that could not be written was lost with its budget, and the failure was retried, each try charged
    again (redteam8: ``released`` a file, not a folder). A path in a ``released`` folder is refused too: the newest
    copy written there replaced the served version's kept copy, and its monitoring refused every run (the
    ``profile_path`` param of the training DAG is set by whoever triggers it)."""
    from mlgate.core.errors import GateInputError
    from mlgate.gates.data.privacy import released_folder

    kept = released_folder(profile_path)
    if profile_path.resolve().parent.name == kept.name:
        raise GateInputError(f"{profile_path}: a profile_path in a '{kept.name}' folder would replace a kept "
                             "release; nothing was charged")
    for folder in (profile_path.parent, kept):
        try:
            folder.mkdir(parents=True, exist_ok=True)
            with tempfile.TemporaryFile(dir=folder):
                pass
        except OSError as exc:
            raise GateInputError(f"{folder}: a release cannot be published there ({exc.strerror}); nothing was "
                                 "charged") from None


def _publish(source: Path, target: Path) -> None:
    """Copy ``source`` to ``target`` atomically: monitoring reading ``target`` meanwhile sees the old file or
    the new one, never half of one, and a link at ``target`` is replaced, not written through."""
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, partial = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.")
    with os.fdopen(fd, "wb") as handle, source.open("rb") as data:
        shutil.copyfileobj(data, handle)
    os.chmod(partial, 0o644)  # as a plain copy: monitoring may read it as another user
    os.replace(partial, target)
