# The two commands of the README. Both install first, so each works on a fresh machine.
# Inside an activated virtualenv (or with PYTHON=...) they install into it; outside one they
# create .venv (seeing the system's site packages, so an installed torch is reused) and use it.
DATA ?= ../shared/datasets
VENV ?= .venv
IN_VENV := $(shell python3 -c 'import sys; print(int(sys.prefix != sys.base_prefix))' 2>/dev/null)
ifeq ($(IN_VENV),1)
PYTHON ?= python3
else
PYTHON ?= $(VENV)/bin/python
endif
# the venv is made only when make chose it (PYTHON=... on the command line is used as is)
ifeq ($(PYTHON),$(VENV)/bin/python)
VENV_PY := $(PYTHON)
endif

.PHONY: install demo test bench wheel
install: $(VENV_PY)
	$(PYTHON) -m pip install -e ".[train,dev]"

$(VENV)/bin/python:
	python3 -m venv --system-site-packages $(VENV)

demo: install
	$(PYTHON) -m serlaq.cli fit --config configs/demo.yaml --out runs/demo

test: install
	cargo test
	cargo test -p serlaq-core --features avx512
	$(PYTHON) -m pytest -q

bench: install
	$(PYTHON) benchmarks/run_all.py --data-root $(DATA)

# A manylinux wheel of the runtime in dist/ (maturin with zig as the linker: glibc 2.17+),
# checked by installing it into a fresh venv with no Rust toolchain on PATH and predicting.
wheel: $(VENV_PY)
	$(PYTHON) -m pip install "maturin>=1.7,<2" ziglang
	$(PYTHON) -m maturin build --release --zig --out dist
	$(PYTHON) scripts/check_wheel.py dist
