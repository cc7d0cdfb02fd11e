# Two entry points for a fresh machine: `make demo` and `make test`. Both create .venv and install
# gradfit with the pinned CPU build of torch (constraints.txt) first.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test test-slow install bench clean

$(STAMP): pyproject.toml setup.py constraints.txt src/gradfit/numerics/_kernels.c src/gradfit/solvers/ipm/_fnb.c
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/gradfit demo --out out/demo

test: $(STAMP)
	$(PY) -m pytest -q -n 2 -m "not slow" --durations=15

test-slow: $(STAMP)
	$(PY) -m pytest -q -n 2 -m slow --durations=15

bench: $(STAMP)
	$(PY) bench/run.py

clean:
	rm -rf $(VENV) out .pytest_cache
