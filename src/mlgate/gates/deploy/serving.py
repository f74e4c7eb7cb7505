"""Which workloads serve a model, and what protection they declare.

Real serving stacks are never labelled ``mlgate.serving``: a model server is recognised by what it runs
(its image or command), or by that label. Protection is declared with the labels (compose) or
annotations/labels (Kubernetes) ``mlgate.auth``, ``mlgate.rate-limit`` and ``mlgate.tls``, which the
serving proxy enforces; KServe's own auth annotation also counts as authentication.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence

# Images and commands of model servers (not tracking servers: ``mlflow server`` serves no model).
MODEL_SERVER = re.compile(
    r"(?i)(mlflow\s+models\s+serve|\bmlgate\s+serve\b|mlflow\s+deployments\s+run-local|\buvicorn\b|torchserve|tritonserver|"
    r"bentoml(\s+serve|/)|\bkserve\b|kserve/|seldon|mlserver|tensorflow_model_server|tensorflow/serving|"
    r"\bvllm\b|text-generation-(inference|launcher)|\bollama\b|openvino/model_server|\bray\s+serve\b|"
    r"\bserve\s+run\b|huggingface/text-generation|llama[._-]cpp.*server)")
AUTH_METHODS = frozenset({"oidc", "token", "mtls", "basic", "apikey"})
RATE_LIMIT = re.compile(r"^[1-9][0-9]*/(s|m|h)$")
# Inference resources that expose a model endpoint, whatever their containers run (a ServingRuntime is a
# template for them: its containers are checked, its endpoint is the InferenceService's).
INFERENCE_KINDS = frozenset({"InferenceService", "SeldonDeployment", "InferenceGraph"})
# KServe enables its auth proxy with these annotations.
KSERVE_AUTH = ("serving.kserve.io/enable-auth", "security.opendatahub.io/enable-auth")


def _text(value: object) -> str:
    return str(value).strip().lower() if value is not None else ""


def runs_model_server(image: object, command: Sequence[object] | object = ()) -> bool:
    words = command if isinstance(command, list | tuple) else [command] if command else []
    return bool(MODEL_SERVER.search(" ".join([str(image or ""), *map(str, words)])))


def missing_protection(labels: Mapping[str, object]) -> list[str]:
    """Which of auth, rate limit, TLS ``labels`` (labels and annotations together) do not declare."""
    missing = []
    if _text(labels.get("mlgate.auth")) not in AUTH_METHODS and not any(
            _text(labels.get(key)) == "true" for key in KSERVE_AUTH):
        missing.append("auth")
    if not RATE_LIMIT.match(_text(labels.get("mlgate.rate-limit"))):
        missing.append("rate-limit")
    if _text(labels.get("mlgate.tls")) != "true":
        missing.append("tls")
    return missing


def labelled_serving(labels: Mapping[str, object]) -> bool:
    return _text(labels.get("mlgate.serving")) == "true"
