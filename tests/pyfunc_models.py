"""A pyfunc model small enough to register per test: it answers the id of the run that logged it."""

from __future__ import annotations

import mlflow.pyfunc


class Echo(mlflow.pyfunc.PythonModel):
    def __init__(self, tag: str) -> None:
        self.tag = tag

    def predict(self, context, model_input, params=None):
        return [self.tag] * len(model_input)
