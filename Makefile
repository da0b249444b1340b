# The two commands of the README. Both install first, so each works on a fresh machine.
PYTHON ?= python3
DATA ?= ../shared/datasets

.PHONY: install demo test bench
install:
	$(PYTHON) -m pip install -e ".[dev]"

demo: install
	serlaq fit --config configs/demo.yaml --out runs/demo

test: install
	$(PYTHON) -m pytest -q
	cargo test

bench: install
	$(PYTHON) benchmarks/run_all.py --data-root $(DATA)
