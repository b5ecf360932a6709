# agent-session-operator — the two commands of the README quick start, and their helpers.
# Everything runs in a project-local virtualenv that `make` creates itself.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: dev test crds lint-imports clean screenshots

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

## Run everything locally: embedded Kubernetes API, operator, gateway, pod runner, samples; logs and the
## dev user's token in .dev/. Ctrl-C (or SIGTERM to make) stops all of it, tmux sessions included.
## Options of `agent-sessions dev --help` in DEV_ARGS, e.g. make dev DEV_ARGS="--port 0 --gateway-port 0".
DEV_ARGS ?=
dev: $(STAMP)
	$(BIN)/agent-sessions dev $(DEV_ARGS)

## Run the whole test suite (unit, validation corpus, layer contract, CRD drift, install manifests).
test: $(STAMP) tools
	$(BIN)/python -m pytest

## Retake the README's console screenshots (docs/images) with the browser tests that take them.
screenshots: $(STAMP) tools
	CONSOLE_SCREENSHOTS=$(CURDIR)/docs/images $(BIN)/python -m pytest tests/console -q \
		-k "test_the_list_shows_every_sample_session or test_a_sent_message_streams_its_reply"

## Regenerate crds/ from the API models, and the copies in the chart and the kustomize base.
crds: $(STAMP)
	$(BIN)/agent-sessions crds --out crds
	scripts/sync-crds.sh

lint-imports: $(STAMP)
	$(BIN)/lint-imports

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info operator/*.egg-info

# --- install tooling: helm and kubectl in .tools/bin (gitignored) -----------------------------
TOOLS := .tools/bin
CHART := charts/agent-session-operator

.PHONY: tools lint-chart e2e

## Install helm and kubectl into .tools/bin (fast no-op when already there).
tools: $(STAMP)
	@PYTHON=$(BIN)/python scripts/install-tools.sh

## helm lint --strict, cluster-wide and namespaced.
lint-chart: tools
	$(TOOLS)/helm lint --strict $(CHART)
	$(TOOLS)/helm lint --strict $(CHART) --set 'watchNamespaces={a,b}'

## End to end on kind with the Helm chart; skipped (exit 0) without Docker and kind.
e2e: tools
	PATH="$(CURDIR)/$(TOOLS):$$PATH" tests/e2e/run.sh
