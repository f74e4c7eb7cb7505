"""The process stack of the e2e tests: throwaway PostgreSQL databases, an ``mlflow server`` and Airflow's
api-server, scheduler and dag-processor (tests/fixtures/airflow_stack.py). Logs land in tmp files, are
attached to a failing test's report, and every process group is killed at teardown."""

from __future__ import annotations

import uuid

import pytest

from tests.fixtures.airflow_stack import AirflowStack
from tests.fixtures.mlflow_server import MlflowServer
from tests.fixtures.postgres import throwaway_database
from tests.fixtures.trivy_server import running_trivy_server

STATS = pytest.StashKey[list[str]]()


@pytest.fixture(scope="session")
def e2e_mlflow(tmp_path_factory):
    root = tmp_path_factory.mktemp("e2e-mlflow")
    with throwaway_database("mlgate_e2e_mlflow") as uri:
        server = MlflowServer(uri, root / "artifacts", root / "server.log")
        try:
            server.start()
            yield server
        finally:
            server.stop()


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
            pytestconfig.stash[STATS] = stack_stats(stack)


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
    stack = item.funcargs.get("airflow_stack") if hasattr(item, "funcargs") else None
    if report.failed and stack is not None:
        report.sections.append(("airflow stack logs", stack.log_tails()))


def pytest_terminal_summary(terminalreporter, config):
    if STATS in config.stash:
        terminalreporter.write_sep("-", "e2e process stack")
        for line in config.stash[STATS]:
            terminalreporter.write_line(line)
