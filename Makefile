# The two commands of the README: `make demo` (the secure pipeline end to end) and `make test`.
# Both start from nothing: they create .venv, install mlgate into it, then run.

VENV   ?= .venv
PY     := $(VENV)/bin/python
UV     := $(VENV)/bin/uv
STAMP  := $(VENV)/.mlgate-installed
BENCH_VENV  ?= .venv-bench
BENCH_STAMP := $(BENCH_VENV)/.mlgate-bench-installed

.PHONY: demo test e2e e2e-celery install sandbox lint bench bench-venv clean up down

demo: export MLGATE_HOME ?= $(CURDIR)/.mlgate
demo: $(STAMP) sandbox
	$(VENV)/bin/mlgate demo

# Test files are spread over TEST_WORKERS processes (pytest-xdist; a file's tests stay in one process, which
# owns its scratch area, metadata DB and servers); TEST_WORKERS=0 runs them in this process.
TEST_WORKERS ?= 2

test: $(STAMP) sandbox
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

e2e: $(STAMP) sandbox
	$(PY) -m pytest -m e2e tests/e2e $(PYTEST_ARGS)

# The pipeline on the CeleryExecutor with two workers, on this machine's Redis (MLGATE_TEST_REDIS) and PostgreSQL.
e2e-celery: $(STAMP) sandbox
	$(PY) -m pytest -m celery tests/e2e $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests dags benchmarks scripts

bench: $(STAMP) $(BENCH_STAMP)
	MLGATE_BENCH_VENV=$(BENCH_VENV) MLGATE_BENCH_PYTHON=$(BENCH_VENV)/bin/python $(PY) benchmarks/run.py $(BENCH_ARGS)

# The peers' pinned versions (benchmarks/requirements-bench.txt) in a venv of their own: their pins clash with mlgate's.
$(BENCH_STAMP): benchmarks/requirements-bench.txt
	test -x $(BENCH_VENV)/bin/python || python3 -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install -q -r benchmarks/requirements-bench.txt
	touch $(BENCH_STAMP)

install: $(STAMP)

bench-venv: $(BENCH_STAMP)

# bubblewrap is the OS sandbox of model validation: without it no model code runs beside a key (ADR 0015).
sandbox:
	@command -v bwrap >/dev/null 2>&1 || { command -v apt-get >/dev/null 2>&1 && apt-get update -qq && \
	  apt-get install -y -qq bubblewrap >/dev/null; } || \
	  echo "bubblewrap (bwrap) is not installed: model validation refuses to run beside a signing key without it"

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade uv
	$(PY) -m pip install -q torch==2.13.0  # pip finds the CPU build on local disk; uv would fetch CUDA
	$(UV) pip install --python $(PY) -q -e '.[dev,validation,torch]'
	touch $(STAMP)

clean:
	rm -rf .mlgate

# The local stack (docker-compose.yml): .env with random secrets on first start, then every service.
up:
	python3 scripts/gen_env.py
	docker compose up -d --build

down:
	docker compose down
