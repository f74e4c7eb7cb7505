import json
import threading
from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from mlgate.core.errors import GateInputError
from mlgate.gates.monitor.inference_log import InferenceLogger, read_window

pytestmark = pytest.mark.unit

T0 = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def test_round_trip_from_many_threads(tmp_path):
    path = tmp_path / "log" / "inference.jsonl"
    with InferenceLogger(path) as logger:
        def serve(worker):
            for i in range(50):
                logger.log(f"client-{worker}", {"age": worker * 100 + i, "country": "NL"}, prediction=i % 2,
                           confidence=0.5 + i / 200, label=i % 2 if i % 5 == 0 else None,
                           timestamp=T0 + timedelta(seconds=i))
        threads = [threading.Thread(target=serve, args=(w,)) for w in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    lines = path.read_text().splitlines()
    assert len(lines) == 400 and all(json.loads(line)["features"]["country"] == "NL" for line in lines)
    window = read_window(path, T0, T0 + timedelta(hours=1))
    assert len(window) == 400
    assert list(window.columns) == ["timestamp", "client_id", "prediction", "confidence", "label", "age",
                                    "country"]
    assert sorted(window["age"]) == sorted(w * 100 + i for w in range(8) for i in range(50))
    assert window["timestamp"].is_monotonic_increasing and str(window["timestamp"].dt.tz) == "UTC"
    assert window["label"].notna().sum() == 80


def test_window_bounds_are_half_open_and_parquet_is_read(tmp_path):
    with InferenceLogger(tmp_path / "a.jsonl") as logger:
        for minute in range(10):
            logger.log("c", {"x": minute}, "yes", 0.9, timestamp=T0 + timedelta(minutes=minute))
    pd.DataFrame({"timestamp": [(T0 + timedelta(minutes=3, seconds=30)).isoformat()], "client_id": ["p"],
                  "features": [{"x": 99}], "prediction": ["no"], "confidence": [0.4]}
                 ).to_parquet(tmp_path / "b.parquet")
    window = read_window(tmp_path, T0 + timedelta(minutes=2), "2026-03-01T12:05:00+00:00")
    assert window["x"].tolist() == [2, 3, 99, 4]


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"confidence": 1.5}, "confidence"),
    ({"confidence": float("nan")}, "confidence"),
    ({"features": {"label": 1}}, "clash"),
], ids=["confidence-above-one", "confidence-nan", "reserved-feature-name"])
def test_logger_rejects_bad_records(tmp_path, kwargs, match):
    with InferenceLogger(tmp_path / "log.jsonl") as logger, pytest.raises(ValueError, match=match):
        logger.log(**{"client_id": "c", "features": {"x": 1}, "prediction": 1, "confidence": 0.5, **kwargs})
    assert (tmp_path / "log.jsonl").read_text() == ""


@pytest.mark.parametrize(("content", "bounds", "match"), [
    ('{"timestamp": "2026-03-01T12:00:00+00:00"\n', (T0, T0), "not a JSON line"),
    ('{"timestamp": "2026-03-01T12:00:00+00:00", "client_id": "c"}\n', (T0, T0), "needs"),
    ("", (datetime(2026, 3, 1), T0), "no time zone"),
], ids=["truncated-line", "missing-fields", "naive-bound"])
def test_bad_logs_fail_closed(tmp_path, content, bounds, match):
    path = tmp_path / "log.jsonl"
    path.write_text(content or '{"timestamp": "2026-03-01T12:00:00+00:00", "client_id": "c", '
                               '"features": {}, "prediction": 1, "confidence": 0.5}\n')
    with pytest.raises(GateInputError, match=match):
        read_window(path, *bounds)
