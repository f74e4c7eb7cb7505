"""The process stacks of the e2e tests: throwaway PostgreSQL databases, an ``mlflow server`` and Airflow's
api-server, scheduler and dag-processor (tests/fixtures/airflow_stack.py), with the LocalExecutor for the
session and, for the Celery module only, the CeleryExecutor with two workers on this machine's Redis. Logs
land in tmp files, are attached to a failing test's report, and every process group is killed at teardown."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator

import pytest

from tests.fixtures.airflow_stack import AirflowStack, CeleryWorkers
from tests.fixtures.mlflow_server import MlflowServer
from tests.fixtures.postgres import throwaway_database
from tests.fixtures.trivy_server import running_trivy_server

STATS = pytest.StashKey[dict[str, list[str]]]()
# The Celery stack's broker: a Redis database of this machine (its keys under a prefix of their own).
REDIS_URL = os.environ.get("MLGATE_TEST_REDIS", "redis://127.0.0.1:6379/11")


@contextlib.contextmanager
def running_mlflow(tmp_path_factory, name: str) -> Iterator[MlflowServer]:
    root = tmp_path_factory.mktemp(name)
    with throwaway_database(f"mlgate_{name.replace('-', '_')}") as uri:
        server = MlflowServer(uri, root / "artifacts", root / "server.log")
        try:
            server.start(timeout=300)  # minutes on a 2-core machine shared with other work
            yield server
        finally:
            server.stop()


@pytest.fixture(scope="session")
def e2e_mlflow(tmp_path_factory):
    with running_mlflow(tmp_path_factory, "e2e-mlflow") as server:
        yield server


@pytest.fixture(scope="session")
def e2e_trivy(tmp_path_factory):
    """The stack's trivy server, over the offline DB of real advisories (no DB download here)."""
    from mlgate.demo.trivy_db import write_trivy_db
    from mlgate.gates.code.trivy import find_trivy

    cache = write_trivy_db(tmp_path_factory.mktemp("e2e-trivy-db"))
    token = uuid.uuid4().hex
    with running_trivy_server(find_trivy(None), cache, tmp_path_factory.mktemp("e2e-trivy"), token) as url:
        yield url, token


@pytest.fixture(scope="session")
def airflow_stack(e2e_mlflow, e2e_trivy, tmp_path_factory, pytestconfig):
    with throwaway_database("mlgate_e2e_airflow") as uri:
        stack = AirflowStack(uri, e2e_mlflow.url, tmp_path_factory.mktemp("e2e-airflow"),
                             watched={"mlflow-server": e2e_mlflow.process}, trivy=e2e_trivy)
        try:
            stack.start()
            yield stack
        finally:
            stack.stop()
            pytestconfig.stash.setdefault(STATS, {})["LocalExecutor"] = stack_stats(stack)


@pytest.fixture(scope="module")
def celery_stack(e2e_trivy, tmp_path_factory, pytestconfig):
    """The compose celery profile as processes: its own MLflow server and Airflow DB (its registry starts
    empty), two Celery workers; stopped, and its broker keys deleted, when the module ends."""
    import redis

    broker = redis.Redis.from_url(REDIS_URL)
    try:
        broker.ping()
    except redis.RedisError as exc:
        raise RuntimeError(f"the Celery e2e needs Redis at {REDIS_URL} (MLGATE_TEST_REDIS): {exc}") from exc
    prefix = f"mlgate-e2e-{uuid.uuid4().hex[:8]}:"
    with running_mlflow(tmp_path_factory, "e2e-celery-mlflow") as mlflow_server, \
            throwaway_database("mlgate_e2e_celery") as uri:
        stack = AirflowStack(uri, mlflow_server.url, tmp_path_factory.mktemp("e2e-celery"),
                             watched={"mlflow-server": mlflow_server.process}, trivy=e2e_trivy,
                             celery=CeleryWorkers(REDIS_URL, prefix))
        try:
            stack.start()
            yield stack
        finally:
            stack.stop()
            pytestconfig.stash.setdefault(STATS, {})["CeleryExecutor, 2 workers"] = stack_stats(stack)
            for key in broker.scan_iter(match=f"{prefix}*"):
                broker.delete(key)


def stack_stats(stack: AirflowStack) -> list[str]:
    mib = 1024 * 1024
    lines = [f"start-up (migrate + init + healthy): {stack.startup_s:.1f} s",
             f"peak RSS of the stack (Airflow + mlflow server) together: {stack.peak_total_rss / mib:.0f} MiB"]
    lines += [f"  {name:<14} peak RSS {rss / mib:6.0f} MiB (with children)" for name, rss in stack.peak_rss.items()]
    return lines


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    funcargs = getattr(item, "funcargs", {})
    stack = funcargs.get("airflow_stack") or funcargs.get("celery_stack")
    if report.failed and stack is not None:
        report.sections.append(("airflow stack logs", stack.log_tails()))


def pytest_terminal_summary(terminalreporter, config):
    for executor, lines in config.stash.get(STATS, {}).items():
        terminalreporter.write_sep("-", f"e2e process stack ({executor})")
        for line in lines:
            terminalreporter.write_line(line)
