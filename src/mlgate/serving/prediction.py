"""One batch through the model: predictions and, where the model has class probabilities, the probability
of each prediction (1.0 otherwise), as JSON-ready Python values for the answer and the inference log."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd


def _plain(value: Any) -> Any:
    return value.item() if hasattr(value, "item") else value


def predict_rows(model: Any, frame: pd.DataFrame) -> tuple[list[Any], list[float]]:
    try:
        raw = model.get_raw_model()
    except Exception:  # noqa: BLE001 - flavors without a raw model are predicted through pyfunc
        raw = None
    if hasattr(raw, "predict_proba") and hasattr(raw, "classes_"):
        probabilities = raw.predict_proba(frame)
        best = probabilities.argmax(axis=1)
        return ([_plain(raw.classes_[i]) for i in best],
                [float(probabilities[row, i]) for row, i in enumerate(best)])
    predictions = model.predict(frame)
    values = predictions.tolist() if hasattr(predictions, "tolist") else list(predictions)
    return [_plain(v[0] if isinstance(v, list) and len(v) == 1 else v) for v in values], [1.0] * len(values)
