"""What one ``mlgate serve`` deployment is configured with: passed from the CLI to every uvicorn worker as JSON
in ``MLGATE_SERVE_CONFIG`` (a file path each worker reads, never key material itself)."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from mlgate.core.errors import GateInputError

CONFIG_ENV = "MLGATE_SERVE_CONFIG"


class ServeConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    model_uri: str = Field(description="models:/<name>@<alias> (re-checked) or models:/<name>/<version>")
    policy: str | None = Field(default=None, description="policy the attestation must satisfy")
    trusted_keys: tuple[str, ...] = Field(default=(), description="PEM paths of trusted public keys")
    api_keys: str | None = Field(default=None, description="YAML file of hashed API keys (mlgate serve-key)")
    jwt_public_key: str | None = Field(default=None, description="PEM path: accept bearer JWTs it verifies")
    jwt_audience: str | None = None
    jwt_issuer: str | None = None
    recheck_s: float = Field(default=10.0, gt=0, description="how often the alias state is re-checked")
    client_limit: str = Field(default="600/minute", description="per client, sliding window (limits syntax)")
    global_limit: str = Field(default="6000/minute", description="all clients together")
    limits_storage: str = Field(default="async+redis://127.0.0.1:6379/0", description="shared by workers")
    limits_prefix: str = Field(default="mlgate-serve", description="Redis key prefix of the counters")
    profile: str | None = Field(default=None, description="training data profile: ranges and categories")
    range_slack: float = Field(default=1.0, ge=0, description="allowed excess beyond the profile's span (its "
                               "outermost quantile cuts), as a fraction of that span, on each side: 0.5 refused "
                               "0.5% of held-out loan rows (heavy-tailed income)")
    max_batch: int = Field(default=100, ge=1)
    max_body_bytes: int = Field(default=256 * 1024, ge=64)
    timeout_s: float = Field(default=2.0, gt=0, description="per-request prediction budget")
    max_concurrency: int = Field(default=8, ge=1, description="predictions in flight per worker")
    memory_mb: int | None = Field(default=None, ge=64, description="address-space cap per worker")
    inference_log: str = ".mlgate/inference/predictions.jsonl"
    sanitizer: str | None = Field(default=None, description="module:function applied to each validated batch")
    metrics_dir: str | None = Field(default=None, description="prometheus multiprocess directory")

    def write(self, path: Path) -> Path:
        path.write_text(self.model_dump_json(indent=1))
        path.chmod(0o600)
        return path


def config_from_env() -> ServeConfig:
    where = os.environ.get(CONFIG_ENV)
    if not where:
        raise GateInputError(f"{CONFIG_ENV} is not set: start the server with `mlgate serve`")
    try:
        return ServeConfig.model_validate_json(Path(where).read_text())
    except (OSError, ValueError) as exc:
        raise GateInputError(f"{where}: not a serving configuration: {exc}") from None
