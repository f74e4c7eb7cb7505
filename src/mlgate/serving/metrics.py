"""Prometheus metrics of the server: latency, outcomes, rejections by reason, rate-limit hits by scope.

Workers share them through prometheus-client's multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``, set by
``mlgate serve`` before the workers start). Labels never carry a client id or a key.
"""

from __future__ import annotations

import os


class Metrics:
    def __init__(self) -> None:
        from prometheus_client import CollectorRegistry, Counter, Histogram

        self._registry = CollectorRegistry()
        self.requests = Counter("mlgate_serve_requests", "Requests to /predict by HTTP status", ["status"],
                                registry=self._registry)
        self.rejections = Counter("mlgate_serve_rejections", "Requests refused, by reason", ["reason"],
                                  registry=self._registry)
        self.limit_hits = Counter("mlgate_serve_limit_hits", "Rate-limit refusals, by scope", ["scope"],
                                  registry=self._registry)
        self.latency = Histogram("mlgate_serve_latency_seconds", "Time to answer /predict", registry=self._registry,
                                 buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5))

    def exposition(self) -> tuple[bytes, str]:
        from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest, multiprocess

        registry = self._registry
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry), CONTENT_TYPE_LATEST
