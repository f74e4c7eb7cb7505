"""Operator for ``code.static``: bandit over a source tree, with JSON and SARIF evidence."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlgate.core.results import GateResult, Subject
from mlgate.operators.base import BaseGateOperator

if TYPE_CHECKING:
    from airflow.sdk import Context


class CodeStaticGateOperator(BaseGateOperator):
    gate_id = "code.static"
    template_fields: Sequence[str] = (*BaseGateOperator.template_fields, "source_path")

    def __init__(self, *, source_path: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.source_path = source_path

    def subject(self) -> Subject:
        return Subject("code", str(self.source_path), "unknown")

    def check(self, context: Context, workdir: Path) -> GateResult:
        from mlgate.gates.code.bandit_scan import check_static

        return check_static(self.source_path, self.policy.section(self.gate_id), self.policy.digest, workdir)
