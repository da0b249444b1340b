# The two commands of the README. Both install first, so each works on a fresh machine.
PYTHON ?= python3
DATA ?= ../shared/datasets

.PHONY: install demo test bench
install:
	$(PYTHON) -m pip install -e ".[train,dev]"

demo: install
	$(PYTHON) -m serlaq.cli fit --config configs/demo.yaml --out runs/demo

test: install
	cargo test
	cargo test -p serlaq-core --features avx512
	$(PYTHON) -m pytest -q

bench: install
	$(PYTHON) benchmarks/run_all.py --data-root $(DATA)
