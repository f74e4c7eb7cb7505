"""A tiny model server: it loads a model only through mlgate's attestation check and logs every prediction.

    export MLGATE_SERVING_TOKEN=$(python -c 'import secrets; print(secrets.token_urlsafe(32))')
    python examples/serving.py 'models:/loan-default@champion' --policy policies/default.yaml \\
        --log .mlgate/inference/predictions.jsonl --port 8080

    curl -s localhost:8080/predict -H "Authorization: Bearer $MLGATE_SERVING_TOKEN" -H 'X-Client-Id: team-a' \\
        -d '{"features": {"age": 41, "annual_income": 52000, ...}}'

``mlgate.load_model`` refuses a model whose signed attestation does not match the downloaded files, was
signed by an untrusted key (``MLGATE_TRUSTED_KEYS``), or vouches for gates that did not all pass. The
server refuses to start without a token, answers only authenticated requests whose features are exactly
the model's inputs, and appends each prediction to the inference log the monitoring gates read.
Standard library only; put it behind TLS (a reverse proxy) in any real deployment.
"""

from __future__ import annotations

import argparse
import hmac
import json
import os
import sys
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import mlgate
from mlgate.gates.monitor.inference_log import InferenceLogger

MAX_BODY = 64 * 1024


def predict_one(model: Any, features: dict[str, Any]) -> tuple[Any, float]:
    """The prediction and the model's probability for it (1.0 when the model has no probabilities)."""
    import pandas as pd

    row = pd.DataFrame([features])
    raw = model.get_raw_model()
    if hasattr(raw, "predict_proba"):
        probabilities = raw.predict_proba(row)[0]
        best = int(probabilities.argmax())
        return raw.classes_[best].item(), float(probabilities[best])
    prediction = model.predict(row)
    return getattr(prediction, "tolist", lambda: prediction)()[0], 1.0


def model_inputs(model: Any) -> set[str]:
    """The feature names a request must carry: the model's signature, else what it was fitted on."""
    schema = model.metadata.get_input_schema()
    names = schema.input_names() if schema else getattr(model.get_raw_model(), "feature_names_in_", ())
    if len(names) == 0:
        raise SystemExit("the model declares no input names; refusing to serve unvalidated inputs")
    return {str(n) for n in names}


def make_server(model: Any, token: str, logger: InferenceLogger, host: str = "127.0.0.1",
                port: int = 8080) -> ThreadingHTTPServer:
    inputs = model_inputs(model)

    class Handler(BaseHTTPRequestHandler):
        def reply(self, status: HTTPStatus, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_POST(self) -> None:  # noqa: N802 (the http.server API)
            supplied = self.headers.get("Authorization", "").removeprefix("Bearer ")
            if not hmac.compare_digest(supplied.encode(), token.encode()):
                return self.reply(HTTPStatus.UNAUTHORIZED, {"error": "missing or wrong bearer token"})
            if self.path != "/predict":
                return self.reply(HTTPStatus.NOT_FOUND, {"error": "POST /predict"})
            length = int(self.headers.get("Content-Length") or 0)
            if not 0 < length <= MAX_BODY:
                return self.reply(HTTPStatus.REQUEST_ENTITY_TOO_LARGE, {"error": f"body must be 1..{MAX_BODY} bytes"})
            try:
                features = json.loads(self.rfile.read(length))["features"]
                if not isinstance(features, dict) or set(features) != inputs:
                    raise ValueError
            except (ValueError, KeyError, TypeError):
                return self.reply(HTTPStatus.BAD_REQUEST, {"error": f"expected {{'features': {sorted(inputs)}}}"})
            prediction, confidence = predict_one(model, features)
            logger.log(self.headers.get("X-Client-Id", "anonymous")[:64], features, prediction, confidence)
            return self.reply(HTTPStatus.OK, {"prediction": prediction, "confidence": confidence})

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the http.server API)
            sys.stderr.write(f"{self.address_string()} {format % args}\n")

    return ThreadingHTTPServer((host, port), Handler)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model_uri", help="models:/<name>/<version> or models:/<name>@<alias>")
    parser.add_argument("--policy", help="policy the attestation must satisfy (default $MLGATE_POLICY)")
    parser.add_argument("--public-key", action="append", help="trusted public key (default $MLGATE_TRUSTED_KEYS)")
    parser.add_argument("--log", default=".mlgate/inference/predictions.jsonl", help="inference log (JSON lines)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args()
    token = os.environ.get("MLGATE_SERVING_TOKEN")
    if not token:
        parser.error("set MLGATE_SERVING_TOKEN: the server never answers unauthenticated requests")
    model = mlgate.load_model(args.model_uri, trusted_keys=args.public_key, policy=args.policy)
    server = make_server(model, token, InferenceLogger(args.log), args.host, args.port)
    print(f"serving {args.model_uri} on http://{args.host}:{server.server_port}/predict", file=sys.stderr)
    server.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
