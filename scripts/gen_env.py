"""Write ``.env`` for docker-compose.yml from ``.env.example``, with a fresh random value for each ``generate``.

Never overwrites an existing ``.env`` (its secrets already protect a database volume); the file is created
readable by its owner only.
"""

from __future__ import annotations

import base64
import os
import secrets
import sys
from pathlib import Path

PLACEHOLDER = "generate"


def secret_for(name: str) -> str:
    """A Fernet key for Airflow's fernet key; otherwise 32 random bytes, URL-safe (fits in a DB URI)."""
    if name == "AIRFLOW_FERNET_KEY":
        return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()
    return secrets.token_urlsafe(32)


def render(template: str) -> str:
    lines = []
    for line in template.splitlines():
        name, sep, value = line.partition("=")
        if sep and not line.lstrip().startswith("#") and value.strip() == PLACEHOLDER:
            line = f"{name}={secret_for(name.strip())}"
        lines.append(line)
    return "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    root = Path(__file__).resolve().parent.parent
    target = Path(argv[1]) if len(argv) > 1 else root / ".env"
    if target.exists():
        print(f"{target} exists: keeping it", file=sys.stderr)
        return 0
    content = render((root / ".env.example").read_text())
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(content)
    print(f"wrote {target} with fresh secrets", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
