"""The child side of ``mlgate.core.isolation.run_isolated``: ``python -m mlgate.core.isolation_entry``.

Reads one JSON request on stdin, fixes its own resource limits (soft = hard, so the code it runs cannot
raise them), calls the named function and writes one JSON answer on the original stdout. Whatever the
called code prints goes to stderr, so it cannot garble the answer. Imports nothing heavy.

A ``ValueError`` or ``LookupError`` crosses as its type and the place it was raised, not its message: the
code runs on the pipeline's data, and by Python's convention those messages quote the offending value
(``could not convert string to float: '<a row's value>'``, ``KeyError: '<a category>'``). mlgate's own
errors (written to be evidence) and every other exception keep their message.
"""

from __future__ import annotations

import importlib
import json
import os
import resource
import sys
import traceback


def _limit(request: dict) -> None:
    memory, cpu = int(request["memory_bytes"]), int(request["cpu_s"])
    resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
    resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))


def _call(request: dict) -> dict:
    module, _, name = str(request["target"]).partition(":")
    value = getattr(importlib.import_module(module), name)(**request["kwargs"])
    return {"ok": True, "value": value}


def _described(exc: BaseException) -> dict:
    """The exception's message, or for a value-quoting one (see above) where it was raised."""
    from mlgate.core.errors import MlgateError

    if isinstance(exc, MlgateError) or not isinstance(exc, ValueError | LookupError):
        return {"message": str(exc)[:2000]}
    frames = traceback.extract_tb(exc.__traceback__)
    return {"message": "", "where": f"{os.path.basename(frames[-1].filename)}:{frames[-1].lineno} in "
                                    f"{frames[-1].name}" if frames else ""}


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
        text = json.dumps({"ok": False, "type": type(exc).__name__, **_described(exc)})
    with os.fdopen(answer_fd, "w") as answer:
        answer.write(text)
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
