# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
# Both create the virtual environment in .venv and install the project from pyproject.toml.

PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test test-fast bench clean

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "error: $(PYTHON) not found; install Python 3.11 or run 'make PYTHON=/path/to/python3.11 ...'"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,ray]'
	# rapidocr-onnxruntime pulls in opencv-python, whose cv2 needs libGL; the headless wheel of the
	# same version must own the shared cv2 folder on machines without a display stack.
	$(BIN)/python -m pip install --quiet --force-reinstall --no-deps \
		"opencv-python-headless==$$($(BIN)/python -c 'import importlib.metadata as m; print(m.version("opencv-python"))')"
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/harpagon demo

test: $(STAMP)
	$(BIN)/python -m pytest -q

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow"

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_planning.py
	$(BIN)/python benchmarks/bench_simulator.py

clean:
	rm -rf $(VENV) build dist src/*.egg-info .pytest_cache .hypothesis
