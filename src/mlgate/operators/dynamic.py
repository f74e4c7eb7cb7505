"""Operator for ``code.dynamic``: the pipeline's preprocessing and the ``predict`` of a small model fitted by its
training callable, exercised on contract-generated inputs in the isolated child (ADR 0025)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from mlgate.core.results import GateResult, Subject
from mlgate.operators.base import BaseGateOperator

if TYPE_CHECKING:
    from airflow.sdk import Context


class CodeDynamicGateOperator(BaseGateOperator):
    """``callables``: ``"package.module:function"`` names of functions from a raw-data DataFrame to features;
    ``training_callable`` (with ``data_path``, ``hyperparameters``, ``seed``): fits the model whose ``predict``
    and ``predict_proba`` are exercised, as ``ModelTrainingGateOperator`` calls it. The inputs come from the
    policy's expectation suite (``suite_path`` overrides it); ``code_path`` is the code the evidence names
    (default: the directory of the first callable's module)."""

    gate_id = "code.dynamic"
    template_fields: Sequence[str] = (*BaseGateOperator.template_fields, "callables", "training_callable",
                                      "data_path", "hyperparameters", "seed", "suite_path", "code_path")

    def __init__(self, *, callables: Sequence[str] = (), training_callable: str | None = None,
                 data_path: str | None = None, hyperparameters: dict[str, Any] | None = None, seed: int = 0,
                 suite_path: str | None = None, code_path: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.callables = callables
        self.training_callable = training_callable
        self.data_path = data_path
        self.hyperparameters = hyperparameters
        self.seed = seed
        self.suite_path = suite_path
        self.code_path = code_path

    def subject(self) -> Subject:
        return Subject("code", str(self.code_path or self.training_callable or list(self.callables)), "unknown")

    def check(self, context: Context, workdir: Path) -> GateResult:
        from mlgate.gates.code.dynamic import check_dynamic

        return check_dynamic(self.policy, callables=list(self.callables), training_callable=self.training_callable,
                             data_path=self.data_path, params=self.hyperparameters, seed=int(self.seed),
                             suite_path=self.suite_path, code_path=self.code_path)
