# agent-session-operator — the two commands of the README quick start, and their helpers.
# Everything runs in a project-local virtualenv that `make` creates itself.

PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: test crds lint-imports clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

## Run the whole test suite (unit, validation corpus, layer contract, CRD drift).
test: $(STAMP)
	$(BIN)/python -m pytest

## Regenerate crds/ from the API models.
crds: $(STAMP)
	$(BIN)/agent-sessions crds --out crds

lint-imports: $(STAMP)
	$(BIN)/lint-imports

clean:
	rm -rf $(VENV) .pytest_cache build *.egg-info operator/*.egg-info
