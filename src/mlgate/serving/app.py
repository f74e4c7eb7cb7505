"""The ASGI application of ``mlgate serve``: one ``POST /predict`` behind every check, in the order that
spends least on a request that will be refused (the FastAPI-security + limits shape):

1. authenticate (401) and authorize the served model (403): nothing else is read before;
2. count the client's and the global sliding windows in Redis (429 with ``Retry-After``; 503 when the
   counters cannot be reached: an uncounted request is refused);
3. bound the body (413) and validate it against the signature and profile (422 naming each field; 413 for
   too many rows);
4. predict under the worker's concurrency bound (503 when full) and the per-request timeout (503);
5. append each row to the inference log with the client's id, then answer.

No error answer carries a stack trace or a credential; unexpected failures are logged here and answered
with a bare 500. ``GET /openapi.json`` describes the body of the version being served, to a client that may
use the model (the schema names every category seen in training and the training span: not for anyone).
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import resource
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from mlgate.serving.auth import Authenticator, Identity, JwtVerifier, KeyStore, Unauthenticated
from mlgate.serving.config import ServeConfig, config_from_env
from mlgate.serving.inputs import InputRejected, InputSchema, load_profile, signature_columns
from mlgate.serving.metrics import Metrics
from mlgate.serving.prediction import predict_rows
from mlgate.serving.rate_limits import LimitUnavailable, RateLimits
from mlgate.serving.served_model import ServedModel

log = logging.getLogger("mlgate.serve")
_REFUSALS = {401: "Missing or unknown credential", 403: "The credential may not use this model",
             413: "Body or batch too large", 422: "Input does not fit the model's signature or training profile",
             429: "Rate limit exceeded (Retry-After)", 503: "No trusted version, busy, over budget or timed out"}


class Refused(Exception):
    def __init__(self, status: int, reason: str, message: str, headers: dict[str, str] | None = None,
                 fields: list[dict[str, str]] | None = None) -> None:
        self.status, self.reason, self.message, self.headers, self.fields = status, reason, message, headers, fields
        super().__init__(message)


def _sanitizer(spec: str | None) -> Any:
    if not spec:
        return None
    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name)


class Server:
    """Everything one worker holds; built in the app's lifespan."""

    def __init__(self, config: ServeConfig) -> None:
        import mlgate
        from mlgate.gates.monitor.inference_log import InferenceLogger
        from mlgate.trust.loading import servable_version

        self.config = config
        self.auth = Authenticator(KeyStore.from_file(config.api_keys) if config.api_keys else None,
                                  JwtVerifier(config.jwt_public_key, config.jwt_audience, config.jwt_issuer)
                                  if config.jwt_public_key else None)
        self.limits = RateLimits(config.limits_storage, config.client_limit, config.global_limit, config.limits_prefix)
        profile = load_profile(config.profile)
        keys = config.trusted_keys or None
        self.served = ServedModel(
            config.model_uri,
            load=lambda uri: mlgate.load_model(uri, trusted_keys=keys, policy=config.policy),
            check=lambda uri: servable_version(uri, trusted_keys=keys),
            make_schema=lambda model: InputSchema(signature_columns(model), profile, config.range_slack,
                                                  config.max_batch),
            recheck_s=config.recheck_s)
        self.logger = InferenceLogger(config.inference_log)
        self.metrics = Metrics()
        self.sanitize = _sanitizer(config.sanitizer)
        self.slots = threading.BoundedSemaphore(config.max_concurrency)
        self.pool = ThreadPoolExecutor(config.max_concurrency, thread_name_prefix="mlgate-predict")

    def identify(self, request: Request) -> Identity:
        try:
            identity = self.auth.identify(request.headers)
        except Unauthenticated as exc:
            raise Refused(401, "unauthenticated", str(exc), {"WWW-Authenticate": "Bearer"}) from None
        if not identity.may_use(self.served.name):
            raise Refused(403, "forbidden", f"client {identity.client} may not use model {self.served.name}")
        return identity

    async def admit(self, identity: Identity) -> None:
        try:
            verdict = await self.limits.hit(identity.client)
        except LimitUnavailable as exc:
            raise Refused(503, "limits_unavailable", f"rate limits cannot be counted ({exc})",
                          {"Retry-After": "5"}) from None
        if not verdict.allowed:
            self.metrics.limit_hits.labels(verdict.scope).inc()
            raise Refused(429, "rate_limited", f"{verdict.scope} rate limit exceeded",
                          {"Retry-After": str(verdict.retry_after_s)})

    async def body(self, request: Request) -> bytes:
        limit = self.config.max_body_bytes
        declared = request.headers.get("content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            raise Refused(413, "too_large", f"the body must be at most {limit} bytes")
        body = bytearray()
        async for chunk in request.stream():
            body += chunk
            if len(body) > limit:
                raise Refused(413, "too_large", f"the body must be at most {limit} bytes")
        return bytes(body)

    async def predict(self, loaded: Any, rows: list[dict[str, Any]]) -> tuple[list[Any], list[float]]:
        if not self.slots.acquire(blocking=False):
            raise Refused(503, "busy", "every prediction slot of this worker is taken", {"Retry-After": "1"})

        def run() -> tuple[list[Any], list[float]]:
            try:
                frame = loaded.schema.frame(rows)
                if self.sanitize is not None:
                    frame = self.sanitize(frame)
                return predict_rows(loaded.model, frame)
            finally:
                self.slots.release()  # when the prediction really ends, not when its request gave up

        try:
            return await asyncio.wait_for(asyncio.wrap_future(self.pool.submit(run)), self.config.timeout_s)
        except TimeoutError:
            raise Refused(503, "timeout", f"the prediction took longer than {self.config.timeout_s} s") from None
        except MemoryError:
            raise Refused(503, "memory", "the prediction exceeded the worker's memory budget") from None

    async def handle(self, request: Request) -> dict[str, Any]:
        identity = self.identify(request)
        await self.admit(identity)
        body = await self.body(request)
        loaded = self.served.current
        if loaded is None:
            raise Refused(503, "no_trusted_version", "no trusted version of the model is being served",
                          {"Retry-After": str(max(1, round(self.config.recheck_s)))})
        try:
            rows = loaded.schema.parse(body)
        except InputRejected as exc:
            raise Refused(exc.status, "invalid_input", "the input does not fit the model", fields=exc.fields) from None
        predictions, confidences = await self.predict(loaded, rows)
        for row, prediction, confidence in zip(rows, predictions, confidences, strict=True):
            self.logger.log(identity.client, row, prediction, confidence)
        return {"model": loaded.name, "version": loaded.version, "predictions": predictions,
                "confidences": confidences}

    def openapi(self, app: FastAPI) -> dict[str, Any]:
        from fastapi.openapi.utils import get_openapi

        schema = get_openapi(title=f"mlgate serve {self.config.model_uri}", version="1", routes=app.routes)
        components = schema.setdefault("components", {})
        components["securitySchemes"] = {"apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
                                         "bearer": {"type": "http", "scheme": "bearer"}}
        operation = schema["paths"]["/predict"]["post"]
        operation["security"] = [{"apiKey": []}, {"bearer": []}]
        loaded = self.served.current
        if loaded is not None:
            body, defs = loaded.schema.openapi()
            components.setdefault("schemas", {}).update(defs)
            operation["requestBody"] = {"required": True, "content": {"application/json": {"schema": body}}}
        return schema


def create_app(config: ServeConfig | None = None) -> FastAPI:
    """The app of one worker; uvicorn calls it with no argument (``--factory``) and it reads
    ``MLGATE_SERVE_CONFIG``."""
    config = config or config_from_env()
    server = Server(config)

    @asynccontextmanager
    async def lifespan(_: FastAPI):
        if config.memory_mb:
            cap = config.memory_mb * 1024 * 1024
            resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
        await asyncio.to_thread(server.served.refresh)
        server.served.start()
        yield
        server.served.stop()
        server.pool.shutdown(wait=False, cancel_futures=True)
        server.logger.close()

    app = FastAPI(title="mlgate serve", lifespan=lifespan, openapi_url=None, docs_url=None, redoc_url=None)

    def refused(refusal: Refused) -> JSONResponse:
        server.metrics.rejections.labels(refusal.reason).inc()
        body = {"error": refusal.message, **({"fields": refusal.fields} if refusal.fields else {})}
        return JSONResponse(body, refusal.status, headers=refusal.headers)

    @app.post("/predict", responses={code: {"description": text} for code, text in _REFUSALS.items()})
    async def predict(request: Request) -> JSONResponse:
        started = time.perf_counter()
        try:
            reply = JSONResponse(await server.handle(request))
        except Refused as refusal:
            reply = refused(refusal)
        except Exception:  # noqa: BLE001 - answered without detail, logged here
            log.exception("unexpected failure answering /predict")
            reply = JSONResponse({"error": "internal error"}, 500)
        server.metrics.requests.labels(str(reply.status_code)).inc()
        server.metrics.latency.observe(time.perf_counter() - started)
        return reply

    @app.get("/health")
    async def health() -> JSONResponse:
        loaded = server.served.current
        if loaded is None:
            return JSONResponse({"status": "unavailable"}, 503)
        return JSONResponse({"status": "serving", "model": loaded.name, "version": loaded.version})

    @app.get("/metrics", include_in_schema=False)
    async def metrics() -> Response:
        data, content_type = server.metrics.exposition()
        return Response(data, media_type=content_type)

    @app.get("/openapi.json", include_in_schema=False)
    async def openapi(request: Request) -> JSONResponse:
        try:  # the body's schema lists the training categories and span: for the model's clients only
            server.identify(request)
        except Refused as refusal:
            return refused(refusal)
        return JSONResponse(server.openapi(app))

    return app
