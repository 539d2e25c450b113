# `make run`: the main job on the built-in corpus; `make test`: every test, slow ones included.
# `make search SPACE=wide`: a search (the default space when SPACE is unset: vgd.params.DEFAULT_SPACE).
# The first target that needs it creates .venv and installs vgd with all extras (~2-4 minutes).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
export PATH := $(abspath $(BIN)):$(PATH)

.PHONY: run test test-fast lint search tensorboard remote clean-venv

REMOTE ?= ../vgd-dvc-remote

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[all]'
	touch $@

run: $(VENV)/.installed
	bash scripts/main_job.sh

test: $(VENV)/.installed
	$(BIN)/python -m pytest -q

test-fast: $(VENV)/.installed
	$(BIN)/python -m pytest -q -m "not slow"

lint: $(VENV)/.installed
	$(BIN)/ruff check . && $(BIN)/ruff format --check .

search: $(VENV)/.installed
	$(BIN)/python search/run.py $(if $(SPACE),--space $(SPACE))

tensorboard: $(VENV)/.installed
	$(BIN)/tensorboard --logdir results/search

# A DVC remote in a directory (a disk, an NFS mount): `make remote REMOTE=/path`, then dvc push/pull.
remote: $(VENV)/.installed
	mkdir -p $(REMOTE)
	$(BIN)/dvc remote add --force --default local $(abspath $(REMOTE))
	@echo "DVC remote 'local' -> $(abspath $(REMOTE)); now: dvc push (and dvc pull on another clone)"

clean-venv:
	rm -rf $(VENV)
