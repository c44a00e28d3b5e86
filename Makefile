# Two entry points, both from a fresh clone with only Python 3.11 and pip:
#   make demo   set up .venv and run synthdata on a shipped sample dataset
#   make test   set up .venv and run the whole test suite
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test install clean

install: $(STAMP)

# torch is pinned and installed before the package: here it resolves to a local CPU
# build, while an unpinned torch would pull a CUDA build of several GB.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

DEMO := privacy_reports/demo

# Runs the furthest pipeline stage that exists, on the affairs survey; re-runnable.
demo: $(STAMP)
	rm -rf $(DEMO) && mkdir -p $(DEMO)
	$(BIN)/synthdata inspect sample_datasets/affairs.csv --schema-out $(DEMO)/affairs.schema.json
	$(BIN)/synthdata fit sample_datasets/affairs.csv --schema $(DEMO)/affairs.schema.json \
		--epsilon 1 --seed 0 --model-out $(DEMO)/affairs-model
	$(BIN)/synthdata sample $(DEMO)/affairs-model -n 6366 -o $(DEMO)/affairs-synthetic.csv
	@echo "Synthetic copy: $(DEMO)/affairs-synthetic.csv"

test: $(STAMP)
	$(BIN)/python -m pytest -q

clean:
	rm -rf $(VENV) *.egg-info .pytest_cache .hypothesis
