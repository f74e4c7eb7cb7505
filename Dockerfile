# mlgate with Airflow 3, MLflow and trivy: one image for every service of docker-compose.yml but PostgreSQL.
# Base pinned by tag; for a reproducible build pin the digest too (python:3.11-slim@sha256:<digest>, from
# `docker buildx imagetools inspect python:3.11-slim`) and let Dependabot/Renovate move it.
ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
COPY pyproject.toml README.md /src/
COPY src /src/src
# psycopg: the PostgreSQL driver of Airflow's metadata DB and MLflow's backend store; [validation]: the model
# gates of the secure training pipeline (ART, fairlearn); [celery]: the CeleryExecutor and its workers (the
# compose celery profile); code.dynamic's Hypothesis is a core dependency.
RUN /opt/venv/bin/pip install "/src[validation,celery]" "psycopg[binary]>=3.2,<4"

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="mlgate" \
      org.opencontainers.image.description="Airflow 3 provider gating the ML lifecycle, with Airflow, MLflow and trivy" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN groupadd --system --gid 10001 mlgate \
 && useradd --system --uid 10001 --gid mlgate --home-dir /tmp --no-create-home --shell /usr/sbin/nologin mlgate \
 && mkdir -p /opt/mlgate/data /opt/airflow-logs /opt/airflow-auth /opt/mlflow-artifacts /trivy-cache \
 && chown mlgate:mlgate /opt/mlgate/data /opt/airflow-logs /opt/airflow-auth /opt/mlflow-artifacts /trivy-cache
COPY --from=build /opt/venv /opt/venv
COPY dags /opt/mlgate/dags
COPY policies /opt/mlgate/policies
COPY expectations /opt/mlgate/expectations
COPY docker/airflow-init.sh /opt/mlgate/docker/airflow-init.sh
# The stack runs every container with a read-only root filesystem: HOME and AIRFLOW_HOME are on the /tmp tmpfs.
ENV PATH=/opt/venv/bin:$PATH \
    HOME=/tmp \
    PYTHONUNBUFFERED=1 \
    AIRFLOW_HOME=/tmp/airflow \
    AIRFLOW__CORE__DAGS_FOLDER=/opt/mlgate/dags \
    AIRFLOW__CORE__LOAD_EXAMPLES=False \
    MLGATE_HOME=/opt/mlgate/data
USER 10001:10001
WORKDIR /opt/mlgate
# Liveness of the image itself; each compose service overrides it with its own endpoint.
HEALTHCHECK --interval=30s --timeout=10s --start-period=30s --retries=3 \
  CMD ["python", "-c", "import mlgate"]
CMD ["mlgate", "--help"]
