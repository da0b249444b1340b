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
.PHONY: test-arm64
install: $(VENV_PY)
	$(PYTHON) -m pip install -e ".[train,dev]"

$(VENV)/bin/python:
	python3 -m venv --system-site-packages $(VENV)

demo: install
	$(PYTHON) -m serlaq.cli fit --config configs/demo.yaml --out runs/demo

test: install
	cargo test
	cargo test -p serlaq-core --features avx512
	# the WAV-only decoder the WebAssembly module starts from (docs/deploy.md)
	cargo test -p serlaq-core --no-default-features
	$(PYTHON) -m pytest -q

bench: install
	$(PYTHON) benchmarks/run_all.py --data-root $(DATA)

# Edge builds (docs/deploy.md): the C ABI, the WebAssembly package, and their tests.
# The WebAssembly module is built by Debian's toolchain (rustc-web + rust-web-src, wasm-ld
# from lld-22; .ci/run installs them): std is rebuilt for the target with -Zbuild-std.
WASM_TARGET = wasm32-unknown-unknown
# Panics abort at once, without formatting a message: the module has no import to print one
# with, and the formatting machinery was 21.6 KB of the gzipped module (docs/deploy.md).
WASM_ENV = PATH=/usr/bin:$$PATH RUSTC_BOOTSTRAP=1 CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_LINKER=wasm-ld-22 \
	RUSTFLAGS="-Zunstable-options -Cpanic=immediate-abort"
# Decoders besides WAV, e.g. WASM_FEATURES=mp3,flac (docs/deploy.md: what each costs).
WASM_FEATURES ?=
# Where the package goes (`wasm-adapt` builds a second one with the adapter).
WASM_DIST ?= dist/wasm
WASM_OPT_FLAGS = -Oz --strip-debug --strip-producers --enable-bulk-memory --enable-sign-ext \
	--enable-mutable-globals --enable-nontrapping-float-to-int --enable-reference-types --enable-multivalue

.PHONY: capi wasm wasm-adapt test-edge
capi:
	cargo build --release -p serlaq-capi -p serlaq-rt
	mkdir -p dist/capi
	cp rust/capi/include/serlaq.h target/release/libserlaq.so target/release/libserlaq.a dist/capi/

wasm:
	$(WASM_ENV) cargo build -p serlaq-wasm --profile wasm -Zbuild-std=std,panic_abort --target $(WASM_TARGET) --features "$(WASM_FEATURES)"
	mkdir -p $(WASM_DIST)
	wasm-opt $(WASM_OPT_FLAGS) target/$(WASM_TARGET)/wasm/serlaq_wasm.wasm -o $(WASM_DIST)/serlaq.wasm
	cp rust/wasm/js/serlaq.js rust/wasm/web/index.html rust/wasm/web/app.js $(WASM_DIST)/
	if [ -f rust/core/models/general.laq ]; then cp rust/core/models/general.laq $(WASM_DIST)/model.laq; fi
	@gzip -9 -c $(WASM_DIST)/serlaq.wasm | wc -c | xargs printf '$(WASM_DIST)/serlaq.wasm: %s bytes gzip -9\n'

# The module with the adapter (Model.adapter() in serlaq.js): dist/wasm-adapt/.
wasm-adapt:
	$(MAKE) wasm WASM_FEATURES="$(WASM_FEATURES) adapt" WASM_DIST=dist/wasm-adapt

test-edge: capi wasm wasm-adapt
	cargo test -p serlaq-capi
	SERLAQ_EDGE_REQUIRED=1 $(PYTHON) -m pytest -q tests/edge

# serlaq-core's and serlaq-rt's tests cross-built for aarch64, run under qemu-user
# (Debian toolchain, -Zbuild-std; registers qemu with binfmt_misc when needed: root).
test-arm64:
	.ci/test-arm64

# A manylinux wheel of the runtime in dist/ (maturin with zig as the linker: glibc 2.17+),
# checked by installing it into a fresh venv with no Rust toolchain on PATH and predicting.
wheel: $(VENV_PY)
	$(PYTHON) -m pip install "maturin>=1.7,<2" ziglang
	$(PYTHON) -m maturin build --release --zig --out dist
	$(PYTHON) scripts/check_wheel.py dist
