"""Start ``mlgate serve``: check the configuration and the model's trust once, then hand over to uvicorn.

The server process holds no signing key: it runs model code, so a key in its environment is refused
(ADR 0029). Workers receive the configuration through a 0600 file named in ``MLGATE_SERVE_CONFIG`` and
share prometheus metrics through a fresh ``PROMETHEUS_MULTIPROC_DIR``.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from mlgate.core.errors import GateInputError
from mlgate.serving.config import CONFIG_ENV, ServeConfig
from mlgate.trust.attestation import KEY_ENV
from mlgate.trust.keys import KEY_FILE_ENV


def preflight(config: ServeConfig) -> str:
    """The version that would be served now; refuses a signing key in reach and a configuration without auth."""
    from mlgate.serving.auth import Authenticator, JwtVerifier, KeyStore
    from mlgate.serving.inputs import load_profile
    from mlgate.serving.rate_limits import RateLimits
    from mlgate.trust.loading import servable_version

    present = [v for v in (KEY_ENV, KEY_FILE_ENV) if os.environ.get(v)]
    if present:
        raise GateInputError(f"refusing to serve with a signing key in the environment ({', '.join(present)}): "
                             "the server runs model code and must hold only public keys (--public-key)")
    Authenticator(KeyStore.from_file(config.api_keys) if config.api_keys else None,
                  JwtVerifier(config.jwt_public_key, config.jwt_audience, config.jwt_issuer)
                  if config.jwt_public_key else None)
    load_profile(config.profile)
    RateLimits(config.limits_storage, config.client_limit, config.global_limit, config.limits_prefix)
    return servable_version(config.model_uri, trusted_keys=config.trusted_keys or None)


def serve(config: ServeConfig, *, host: str, port: int, workers: int, ssl_certfile: str | None = None,
          ssl_keyfile: str | None = None) -> None:
    import uvicorn

    version = preflight(config)
    state = Path(tempfile.mkdtemp(prefix="mlgate-serve-"))
    metrics_dir = Path(config.metrics_dir or state / "metrics")
    metrics_dir.mkdir(parents=True, exist_ok=True)
    for stale in metrics_dir.glob("*.db"):
        stale.unlink()
    config = config.model_copy(update={"metrics_dir": str(metrics_dir)})
    os.environ[CONFIG_ENV] = str(config.write(state / "config.json"))
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
    scheme = "https" if ssl_certfile else "http"
    print(f"serving {config.model_uri} (version {version} now) on {scheme}://{host}:{port}/predict "
          f"with {workers} workers", file=sys.stderr)
    uvicorn.run("mlgate.serving.app:create_app", factory=True, host=host, port=port, workers=workers,
                ssl_certfile=ssl_certfile, ssl_keyfile=ssl_keyfile, log_level="info", server_header=False)
