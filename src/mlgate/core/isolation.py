"""Running untrusted code (a model's loading code, later a user's code) where no secret can be reached.

``run_isolated`` runs a callable named by import path in a *spawned* interpreter, never a fork of the
caller: the child starts from a scrubbed environment (an allowlist; nothing that names a key, token,
password, connection or mlgate/Airflow/cloud setting), inherits no descriptor but its standard three, works
in a scratch directory that is its HOME and TMPDIR, and runs under an address-space limit, a CPU limit and
a wall-clock timeout that kills its whole process group. Arguments go in and the answer comes back as
JSON (stdin in, stdout to a size-checked file out); nothing from the child is ever unpickled here (ADR 0015).

Where bubblewrap works (user namespaces), the child also runs in an OS sandbox: no network, its own PID
and IPC namespaces, a read-only view of only the interpreter, the import path and the inputs, writable
scratch and outputs, and the files that configured secrets name masked. Without it the isolation is a
plain child process of the same user, which can still read that user's files and ``/proc/<pid>/environ``
of its other processes; the returned ``Isolated.sandbox`` says which one ran, and a policy can require
the OS sandbox (fail closed when it is missing). A plain child runs only where this process holds no
secret it could read (no secret-named variable set, no file they name): the policy that says ``off`` is
named by whoever triggers a DAG, so it must not decide whether the model's code can read the signing key.
"""

from __future__ import annotations

import functools
import glob
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from mlgate.core.errors import EvidenceError, GateInputError, MlgateError, PolicyError, ToolError
from mlgate.core.redaction import redact

ENTRY = "mlgate.core.isolation_entry"
MAX_ANSWER_BYTES = 64 * 1024 * 1024
STDERR_TAIL = 600

# Copied from the caller's environment when set; everything else is dropped.
ALLOWED_ENV = ("PATH", "LANG", "LANGUAGE", "LC_ALL", "LC_CTYPE", "LC_NUMERIC", "TZ", "PYTHONHASHSEED",
               "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS",
               "VECLIB_MAXIMUM_THREADS", "TQDM_DISABLE", "CUDA_VISIBLE_DEVICES")
# A name like these never crosses, not even when a policy asks to pass it.
SECRET_NAME = re.compile(r"(^(MLGATE|AIRFLOW|AWS|AZURE|GOOGLE|GCP|MLFLOW|DATABRICKS|VAULT)_)|"
                         r"(KEY|TOKEN|SECRET|PASSW|CREDENTIAL|CONN|AUTH|COOKIE|JWT|PRIVATE)", re.IGNORECASE)
_URL_PASSWORD = re.compile(r"[a-z][a-z0-9+.-]*://[^/@\s:]*:[^/@\s]+@", re.IGNORECASE)
ERRORS: dict[str, type[MlgateError]] = {cls.__name__: cls for cls in
                                        (PolicyError, GateInputError, ToolError, EvidenceError)}
SYSTEM_READ = ("/usr", "/sys", "/etc/ld.so.cache", "/etc/localtime", "/etc/passwd", "/etc/group", "/etc/nsswitch.conf",
               "/etc/ssl/certs", "/etc/alternatives")
MERGED_USR = ("/bin", "/sbin", "/lib", "/lib32", "/lib64")


class SandboxPolicy(BaseModel):
    """``sandbox:`` in the policy: limits of every isolated evaluation, and whether the OS sandbox is required."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    os_sandbox: Literal["auto", "required", "off"] = Field(
        default="auto", description="bubblewrap when it works ('auto'), always ('required': fail closed "
                                    "without it), or never ('off': a plain child process)")
    timeout_s: float = Field(default=1800.0, gt=0, le=86400)
    memory_mb: int = Field(default=8192, ge=256, description="address-space limit (RLIMIT_AS) of the child")
    pass_env: tuple[str, ...] = Field(default=(), description="extra variables to copy (never secret-named)")

    @field_validator("pass_env")
    @classmethod
    def _not_secret(cls, names: tuple[str, ...]) -> tuple[str, ...]:
        secret = [n for n in names if SECRET_NAME.search(n)]
        if secret:
            raise ValueError(f"variables named like secrets never reach isolated code: {secret}")
        return names


@dataclass(frozen=True)
class Isolated:
    """The callable's JSON answer and the isolation it ran under: ``bwrap`` or ``process``."""

    value: Any
    sandbox: Literal["bwrap", "process"]
    note: str = ""


def _secret_value(value: str) -> bool:
    """A value that carries a credential whatever its variable is called (``pass_env`` comes from a policy
    the triggerer names): a URL with a password (``postgresql://u:pw@db``), key material, a registered secret."""
    return bool(_URL_PASSWORD.search(value)) or redact(value) != value


def scrubbed_env(environ: Mapping[str, str], scratch: Path, pythonpath: Sequence[str],
                 extra: Sequence[str] = ()) -> dict[str, str]:
    """The child's whole environment: allowlisted variables, HOME/TMPDIR in ``scratch``, the import path."""
    names = [*ALLOWED_ENV, *(n for n in extra if not SECRET_NAME.search(n))]
    env = {name: environ[name] for name in names if name in environ and not _secret_value(environ[name])}
    env.setdefault("PATH", "/usr/local/bin:/usr/bin:/bin")
    env.update(HOME=str(scratch / "home"), TMPDIR=str(scratch / "tmp"), MPLCONFIGDIR=str(scratch / "tmp"),
               PYTHONPATH=os.pathsep.join(pythonpath), PYTHONDONTWRITEBYTECODE="1", PYTHONNOUSERSITE="1")
    return env


def import_path() -> list[str]:
    """The caller's ``sys.path`` as absolute existing entries, so the child imports what the caller would."""
    entries = []
    for entry in sys.path:
        path = os.path.abspath(entry or os.getcwd())
        if os.path.exists(path) and path not in entries:
            entries.append(path)
    return entries


@functools.cache
def bwrap_status() -> tuple[bool, str]:
    """Whether ``bwrap --unshare-all`` can start a process here, and why not."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return False, "bubblewrap (bwrap) is not installed"
    try:
        probe = subprocess.run([bwrap, "--unshare-all", "--die-with-parent", "--ro-bind", "/", "/", "true"],
                               capture_output=True, text=True, timeout=20, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, f"bwrap cannot run: {exc}"
    if probe.returncode != 0:
        return False, f"bwrap --unshare-all fails here: {probe.stderr.strip()[-200:]}"
    return True, ""


def secret_files(environ: Mapping[str, str]) -> list[str]:
    """Files that the caller's secret-named variables point at (a key file, Airflow's config): masked."""
    files = [value for name, value in environ.items()
             if SECRET_NAME.search(name) and value.startswith("/") and os.path.isfile(value)]
    if os.path.isdir(environ.get("AIRFLOW_HOME", "")):
        files += [str(Path(environ["AIRFLOW_HOME"]) / name) for name in ("airflow.cfg", "webserver_config.py")]
    return [f for f in files if os.path.isfile(f)]


def reachable_secrets(environ: Mapping[str, str]) -> list[str]:
    """What a plain child of this user could read: the secret-named variables set here (its parent's
    ``/proc/<pid>/environ``) and the files they name. Names and paths only, never values."""
    return sorted({name for name, value in environ.items() if value and SECRET_NAME.search(name)}) + \
        secret_files(environ)


def bwrap_argv(scratch: Path, readable: Sequence[str], writable: Sequence[str], masked: Sequence[str]) -> list[str]:
    """bubblewrap's arguments: all namespaces unshared, read-only binds of only what the child needs."""
    argv = [shutil.which("bwrap") or "bwrap", "--unshare-all", "--die-with-parent", "--new-session",
            "--cap-drop", "ALL", "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"]  # noqa: S108 - a fresh tmpfs inside the sandbox
    for device in sorted(glob.glob("/dev/nvidia*")):  # a GPU gate keeps its GPU (untested here: no GPU)
        argv += ["--dev-bind", device, device]
    for path in MERGED_USR:
        if os.path.islink(path):
            argv += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            argv += ["--ro-bind", path, path]
    binds = [(p, "--ro-bind") for p in (*SYSTEM_READ, sys.prefix, sys.base_prefix, *readable) if os.path.exists(p)]
    binds += [(p, "--bind") for p in (*writable, str(scratch))]
    for path, how in sorted(set(binds), key=lambda b: (len(Path(b[0]).parts), b[1] == "--bind")):
        argv += [how, path, path]
    bound = [p for p, _ in binds]
    for path in masked:
        if any(Path(path).is_relative_to(b) for b in bound):
            argv += ["--ro-bind", "/dev/null", path]
    return [*argv, "--chdir", str(scratch)]


def _tail(log: Path) -> bytes:
    with log.open("rb") as handle:
        handle.seek(max(0, log.stat().st_size - STDERR_TAIL))
        return handle.read()


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def _answer(proc: subprocess.Popen[bytes], stdout: bytes, stderr: bytes, label: str, limits: SandboxPolicy) -> Any:
    """The child's value, or the error it reported, or a ``ToolError`` for a child that died without one."""
    tail = stderr.decode(errors="replace").strip()[-STDERR_TAIL:]
    try:
        answer = json.loads(stdout) if stdout else None
    except ValueError:
        answer = None
    if not isinstance(answer, dict) or "ok" not in answer:
        code = proc.returncode
        killer = -code if code < 0 else code - 128  # bwrap reports its child's death by signal N as 128 + N
        cause = (f"was killed by {signal.Signals(killer).name}" if killer in set(signal.Signals)
                 else f"exited with status {code}")
        raise ToolError(f"{label} {cause} without an answer (memory limit {limits.memory_mb} MiB): {tail}")
    if answer["ok"] is True:
        return answer.get("value")
    kind, message = str(answer.get("type", "Exception")), str(answer.get("message", ""))[:2000]
    if kind == "MemoryError":
        raise ToolError(f"{label} ran out of its memory budget ({limits.memory_mb} MiB)")
    if kind in ERRORS:
        raise ERRORS[kind](message)
    where = answer.get("where")
    if not isinstance(where, str):  # the child kept the message: it cannot quote the data (isolation_entry)
        raise ToolError(f"{label} raised {kind}: {message}")
    raise ToolError(f"{label} raised {kind} at {where[:200] or 'an unknown place'} (its message is not kept: it "
                    "quotes a value, here one of the data's; run the code outside mlgate to see it)")


def run_isolated(target: str, kwargs: Mapping[str, Any], limits: SandboxPolicy, *, readable: Sequence[Path] = (),
                 writable: Sequence[Path] = (), label: str | None = None) -> Isolated:
    """Call ``"package.module:function"(**kwargs)`` in an isolated child and return its JSON-able answer.

    ``readable`` (inputs) and ``writable`` (output directories) are what the OS sandbox shows besides the
    interpreter and the import path. Any failure — the OS sandbox required but missing, a crash, a timeout,
    the memory limit, an answer that is not JSON — raises; exceptions of mlgate's taxonomy raised in the
    child keep their class (retry semantics), anything else becomes a ``ToolError``.
    """
    label = label or f"isolated {target}"
    request = json.dumps({"target": target, "kwargs": dict(kwargs), "memory_bytes": limits.memory_mb << 20,
                          "cpu_s": int(limits.timeout_s * (os.cpu_count() or 1)) + 1})  # threads add up
    use_bwrap, why_not = bwrap_status() if limits.os_sandbox != "off" else (False, "the policy turns it off")
    if limits.os_sandbox == "required" and not use_bwrap:
        raise ToolError(f"{label}: the policy requires the OS sandbox, and {why_not}")
    exposed = [] if use_bwrap else reachable_secrets(os.environ)
    if exposed:  # the policy (whoever triggers a DAG names it) must not be able to expose the signing key
        raise ToolError(f"{label}: no OS sandbox ({why_not}), and this process holds secrets a plain child of the "
                        f"same user could read ({', '.join(exposed[:6])}{', …' if len(exposed) > 6 else ''}): "
                        "refusing to run untrusted code beside them")
    with tempfile.TemporaryDirectory(prefix="mlgate-sandbox-") as tmp:
        scratch = Path(tmp)
        (scratch / "home").mkdir()
        (scratch / "tmp").mkdir()
        path = import_path()
        argv = [sys.executable, "-m", ENTRY]
        if use_bwrap:
            argv = bwrap_argv(scratch, [*path, *map(str, readable)], [str(p) for p in writable],
                              secret_files(os.environ)) + argv
        # files, not pipes: a chatty child cannot fill this process's memory; the answer is sized before it is read
        log, answer = scratch / "stderr.log", scratch / "answer.json"
        with log.open("wb") as err, answer.open("wb") as out:
            try:
                proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=out, stderr=err,
                                        cwd=scratch, env=scrubbed_env(os.environ, scratch, path, limits.pass_env),
                                        close_fds=True, start_new_session=True)
            except OSError as exc:
                raise ToolError(f"{label}: cannot start the child: {exc.strerror or exc}") from None
            try:
                proc.communicate(request.encode(), timeout=limits.timeout_s)
            except subprocess.TimeoutExpired:
                _kill_group(proc)
                proc.communicate()
                raise ToolError(f"{label} timed out after {limits.timeout_s:g}s (killed)") from None
            finally:
                _kill_group(proc)  # whatever the child left running in its session dies with it
        stderr, size = _tail(log), answer.stat().st_size
        if size > MAX_ANSWER_BYTES:
            raise ToolError(f"{label} answered {size} bytes, over the {MAX_ANSWER_BYTES} limit")
        stdout = answer.read_bytes()
    value = _answer(proc, stdout, stderr, label, limits)
    if use_bwrap:
        return Isolated(value, "bwrap")
    return Isolated(value, "process", f"no OS sandbox ({why_not}): the child could read this user's files")
