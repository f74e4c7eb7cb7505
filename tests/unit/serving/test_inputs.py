from __future__ import annotations

import json
import math

import pytest
from mlflow.models import ModelSignature
from mlflow.types import ColSpec, Schema

from mlgate.core.errors import MlgateError
from mlgate.gates.monitor.drift import ReferenceProfile
from mlgate.serving.inputs import Column, InputRejected, InputSchema, signature_columns

pytestmark = pytest.mark.unit

COLUMNS = [Column("age", "long", True), Column("income", "double", True), Column("home", "string", True),
           Column("note", "string", False)]
PROFILE = ReferenceProfile.from_dict({"numeric": {"age": {"cuts": [30, 50], "counts": [1, 1, 1]}},
                                      "categorical": {"home": {"rent": 1, "own": 1}}})
ROW = {"age": 40, "income": 1.5, "home": "own"}


@pytest.fixture
def schema():
    return InputSchema(COLUMNS, PROFILE, slack=0.5, max_batch=3)


def body(*rows):
    return json.dumps({"instances": list(rows)}, allow_nan=True).encode()


def test_a_valid_batch_becomes_a_typed_frame(schema):
    rows = schema.parse(body(ROW, {**ROW, "income": 2, "note": "n"}))
    frame = schema.frame(rows)
    assert list(frame.columns) == ["age", "income", "home", "note"]
    assert str(frame["age"].dtype) == "int64" and str(frame["income"].dtype) == "float64"


@pytest.mark.parametrize(("row", "field"), [
    ({**ROW, "age": 19}, "instances[0].age"),            # below 30 - 0.5 * 20
    ({**ROW, "age": 61}, "instances[0].age"),
    ({**ROW, "age": 40.5}, "instances[0].age"),
    ({**ROW, "age": True}, "instances[0].age"),
    ({**ROW, "income": math.nan}, "instances[0].income"),
    ({**ROW, "income": -math.inf}, "instances[0].income"),
    ({**ROW, "income": "1.5"}, "instances[0].income"),
    ({**ROW, "home": "boat"}, "instances[0].home"),
    ({"age": 40, "home": "own"}, "instances[0].income"),
    ({**ROW, "zzz": 1}, "instances[0].zzz"),
], ids=["low", "high", "fraction", "bool", "nan", "inf", "string", "category", "missing", "extra"])
def test_a_bad_value_is_a_422_naming_its_field(schema, row, field):
    with pytest.raises(InputRejected) as caught:
        schema.parse(body(row))
    assert caught.value.status == 422 and field in [f["field"] for f in caught.value.fields]


def test_too_many_rows_is_a_413_and_no_rows_a_422(schema):
    with pytest.raises(InputRejected) as caught:
        schema.parse(body(ROW, ROW, ROW, ROW))
    assert caught.value.status == 413
    for bad in (body(), b"[]", b"{", b'{"instances": 1}'):
        with pytest.raises(InputRejected) as caught:
            schema.parse(bad)
        assert caught.value.status == 422


def test_the_openapi_schema_is_the_enforced_one(schema):
    request, components = schema.openapi()
    assert request["properties"]["instances"]["maxItems"] == 3
    instance = components["Instance"]
    assert instance["properties"]["home"]["enum"] == ["own", "rent"]
    assert instance["properties"]["age"]["minimum"] == 20 and instance["additionalProperties"] is False


class _Model:
    def __init__(self, schema):
        self.metadata = type("M", (), {"get_input_schema": lambda _self: schema})()


def test_models_whose_inputs_cannot_be_checked_are_refused():
    import numpy as np
    from mlflow.types import TensorSpec

    with pytest.raises(MlgateError, match="no input signature"):
        signature_columns(_Model(None))
    with pytest.raises(MlgateError, match="tensor"):
        signature_columns(_Model(Schema([TensorSpec(np.dtype("float32"), (-1, 4))])))
    columns = signature_columns(_Model(ModelSignature(Schema([ColSpec("long", "a")])).inputs))
    assert columns == [Column("a", "long", True)]


def test_an_integer_column_with_fractional_profile_cuts_gets_integer_bounds_rounded_outwards():
    """A DP release's cuts are floats (e.g. 25.3): the bounds of a ``long`` column round outwards, or the
    schema could not even be built and the server would never serve."""
    profile = ReferenceProfile.from_dict({"numeric": {"age": {"cuts": [30.3, 49.9], "counts": [1, 1, 1]}}})
    schema = InputSchema(COLUMNS[:1], profile, slack=0.5, max_batch=3)  # span 19.6: [20.5, 59.7] -> [20, 60]
    assert [r["age"] for r in schema.parse(body({"age": 20}, {"age": 60}))] == [20, 60]
    for outside in (19, 61):
        with pytest.raises(InputRejected):
            schema.parse(body({"age": outside}))
