"""Operators for the trivy gates: ``code.dependencies``, ``deploy.container`` and ``deploy.config``."""

from __future__ import annotations

from collections.abc import Sequence
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from mlgate.core.results import GateResult, Subject
from mlgate.hooks.trivy import TrivyHook
from mlgate.operators.base import BaseGateOperator

if TYPE_CHECKING:
    from airflow.sdk import Context


class TrivyGateOperator(BaseGateOperator):
    """Base of the trivy gates: ``target`` (templated) and the ``trivy`` connection."""

    template_fields: Sequence[str] = (*BaseGateOperator.template_fields, "target")
    subject_kind = "code"

    def __init__(self, *, target: str | list[str], trivy_conn_id: str = TrivyHook.default_conn_name,
                 **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.target = target
        self.trivy_conn_id = trivy_conn_id

    @cached_property
    def trivy_hook(self) -> TrivyHook:
        return TrivyHook(self.trivy_conn_id)

    def subject(self) -> Subject:
        return Subject(self.subject_kind, str(self.target), "unknown")


class CodeDependenciesGateOperator(TrivyGateOperator):
    """Dependency CVEs of a project (``scan="fs"``) or installed site-packages (``"rootfs"``), with an SBOM."""

    gate_id = "code.dependencies"

    def __init__(self, *, scan: Literal["fs", "rootfs"] = "fs", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.scan = scan

    def check(self, context: Context, workdir: Path) -> GateResult:
        from mlgate.gates.code.dependencies import check_dependencies

        return check_dependencies(self.target, self.trivy_hook.get_conn(), self.policy.section(self.gate_id),
                                  self.policy.exceptions, self.policy.digest, workdir, command=self.scan)


class DeployContainerGateOperator(TrivyGateOperator):
    """An image by registry reference, docker-archive tarball or OCI layout directory; its digest is the subject."""

    gate_id = "deploy.container"
    subject_kind = "image"

    def check(self, context: Context, workdir: Path) -> GateResult:
        from mlgate.gates.code.trivy import check_trivy

        return check_trivy("image", self.target, self.trivy_hook.get_conn(), self.policy.section(self.gate_id),
                           self.policy.digest, exceptions=self.policy.exceptions)


class DeployConfigGateOperator(TrivyGateOperator):
    """Least privilege in Dockerfiles, Kubernetes manifests and docker-compose files: ``target`` is a
    directory, or a list of files (scanned together, e.g. a repository's Dockerfile and compose file,
    without the rest of the repository)."""

    gate_id = "deploy.config"

    subject_kind = "config"

    def subject(self) -> Subject:
        return Subject(self.subject_kind, ", ".join(map(str, self.files())) or str(self.target), "unknown")

    def files(self) -> list[Path]:
        return [Path(f) for f in self.target] if isinstance(self.target, list | tuple) else []

    def check(self, context: Context, workdir: Path) -> GateResult:
        from dataclasses import replace

        from mlgate.gates.deploy.deploy_config import check_deploy_config

        target = stage_files(self.files(), workdir / "config") if self.files() else self.target
        result = check_deploy_config(target, self.trivy_hook.get_conn(), self.policy.section(self.gate_id),
                                     self.policy.digest, exceptions=self.policy.exceptions)
        return replace(result, subject=replace(result.subject, uri=self.subject().uri)) if self.files() else result


def stage_files(files: list[Path], directory: Path) -> Path:
    """Copy ``files`` side by side into ``directory`` (their names must differ); a missing one is an input error."""
    import shutil

    from mlgate.core.errors import GateInputError

    directory.mkdir(parents=True)
    for path in files:
        if not path.is_file():
            raise GateInputError(f"{path}: no such file to scan")
        if (directory / path.name).exists():
            raise GateInputError(f"two files named {path.name!r} to scan; pass their directories instead")
        shutil.copyfile(path, directory / path.name)
    return directory
