"""The child side of ``mlgate.core.isolation.run_isolated``: ``python -m mlgate.core.isolation_entry``.

Reads one JSON request on stdin, fixes its own resource limits (soft = hard, so the code it runs cannot
raise them), calls the named function and writes one JSON answer on the original stdout. Whatever the
called code prints goes to stderr, so it cannot garble the answer. Imports nothing heavy.
"""

from __future__ import annotations

import importlib
import json
import os
import resource
import sys


def _limit(request: dict) -> None:
    memory, cpu = int(request["memory_bytes"]), int(request["cpu_s"])
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _call(request: dict) -> dict:
    module, _, name = str(request["target"]).partition(":")
    value = getattr(importlib.import_module(module), name)(**request["kwargs"])
    return {"ok": True, "value": value}


def main() -> None:
    answer_fd = os.dup(1)
    os.dup2(2, 1)
    request = json.loads(sys.stdin.read())
    _limit(request)
    try:
        text = json.dumps(_call(request))
    except MemoryError:
        text = json.dumps({"ok": False, "type": "MemoryError", "message": ""})
    except BaseException as exc:  # noqa: BLE001 - every failure is reported to the parent as data
        text = json.dumps({"ok": False, "type": type(exc).__name__, "message": str(exc)[:2000]})
    with os.fdopen(answer_fd, "w") as answer:
        answer.write(text)
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
