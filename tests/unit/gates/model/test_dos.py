from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

from mlgate.core.errors import ToolError
from mlgate.core.results import Status
from mlgate.gates.model.dos import DosPolicy, check_dos

pytestmark = pytest.mark.unit

CONFIG = DosPolicy(max_latency_ms=300, max_latency_ratio=50, ratio_floor_ms=50, samples=10, repeats=2,
                   max_string_length=4096, sponge_steps=5)


def repeated_pairs(column: pd.DataFrame) -> np.ndarray:
    """A featurizer quadratic in the length of its text: pairs of equal characters, counted one by one."""
    return np.array([[sum(s[i] == s[j] for i in range(len(s)) for j in range(i)) % 7]
                     for s in column.iloc[:, 0]], dtype=float)


def frame(rows: int = 200) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(0)
    x = pd.DataFrame({"amount": rng.normal(100, 20, rows), "city": rng.choice(["ab", "cd", "ef"], rows)})
    return x, (x["amount"] > 100).to_numpy().astype(int)


def pipeline(text_step) -> object:
    x, y = frame()
    return make_pipeline(ColumnTransformer([("num", StandardScaler(), ["amount"]), ("txt", text_step, ["city"])]),
                         LogisticRegression()).fit(x, y)


def run(model, x):
    return check_dos(model, x, CONFIG, "sha256:p", model_digest="sha256:m", model_uri="models:/m/1")


def test_a_featurizer_quadratic_in_input_length_blocks():
    x, _ = frame()
    result = run(pipeline(FunctionTransformer(repeated_pairs)), x)
    assert result.status is Status.BLOCKED
    assert {f.id for f in result.findings} >= {"model.dos.latency"}
    worst = result.metrics["worst_inputs"][0]
    assert worst["kind"] == "long-string" and worst["latency_ms"] > 300
    assert worst["digest"].startswith("sha256:") and "t1" not in json.dumps(result.to_dict())  # no values


@pytest.mark.parametrize("model", ["one-hot", "forest"])
def test_plain_models_pass_and_every_search_ran(model):
    x, y = frame()
    fitted = pipeline(OneHotEncoder(handle_unknown="ignore")) if model == "one-hot" else make_pipeline(
        ColumnTransformer([("num", "passthrough", ["amount"]), ("txt", OneHotEncoder(handle_unknown="ignore"),
                                                                ["city"])]),
        RandomForestClassifier(n_estimators=10, random_state=0)).fit(x, y)
    result = run(fitted, x)
    assert result.status is Status.PASSED, result.top_failures()
    kinds = result.metrics["inputs_timed"]
    assert {"sample", "long-string", "unseen-category", "extreme", "sponge"} <= set(kinds)
    assert ("deepest-path" in kinds) == (model == "forest")
    assert 0 < result.metrics["median_ms"] <= result.metrics["worst_ms"]


def test_memory_over_budget_blocks():
    x, _ = frame()
    tight = CONFIG.model_copy(update={"max_memory_mb": 0.0001})
    result = check_dos(pipeline(OneHotEncoder(handle_unknown="ignore")), x, tight, "sha256:p",
                       model_digest="sha256:m")
    assert "model.dos.memory" in {f.id for f in result.findings}


def test_a_model_that_fails_on_held_out_rows_is_a_tool_error():
    x, _ = frame()
    fitted = pipeline(OneHotEncoder(handle_unknown="error"))
    with pytest.raises(ToolError, match="held-out"):
        run(fitted, x.assign(city="zz"))
