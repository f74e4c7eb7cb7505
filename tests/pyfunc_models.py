"""A pyfunc model small enough to register per test: it answers the id of the run that logged it."""

from __future__ import annotations

import mlflow.pyfunc


class Echo(mlflow.pyfunc.PythonModel):
    def __init__(self, tag: str) -> None:
        self.tag = tag

    def predict(self, context, model_input, params=None):
        return [self.tag] * len(model_input)


class Hungry(Echo):
    """Echo, except that a row with ``home == "own"`` makes it reserve ``HUNGER_MB`` (untouched, so it costs
    address space, not RAM): the expensive input a worker's memory cap must turn into an error answer."""

    HUNGER_MB = 8192

    def predict(self, context, model_input, params=None):
        import numpy as np

        if (model_input["home"] == "own").any():
            held = np.zeros(self.HUNGER_MB << 20, dtype=np.uint8)
            return [f"{self.tag}:{held.size}"] * len(model_input)
        return super().predict(context, model_input, params)
