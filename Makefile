# The two commands of the README. Both install first, so each works on a fresh machine.
PYTHON ?= python3
DATA ?= ../shared/datasets

.PHONY: install demo test bench
.PHONY: test-arm64
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

# serlaq-core's and serlaq-rt's tests cross-built for aarch64, run under qemu-user
# (Debian toolchain, -Zbuild-std; registers qemu with binfmt_misc when needed: root).
test-arm64:
	.ci/test-arm64
