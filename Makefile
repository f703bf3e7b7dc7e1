# xunjian: two commands on a fresh machine — `make demo` and `make test`.
# Each creates the virtual environment (.venv) if it is missing.
PYTHON ?= python3.11
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp
OPENCV_HEADLESS := opencv-python-headless==5.0.0.93

.PHONY: setup demo test test-fast lint typecheck check format clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[ml,dev]'
	@# ultralytics asks for opencv-python; it shares the cv2/ folder with the headless
	@# build, so removing one breaks the other: remove both, reinstall headless only.
	$(PY) -m pip uninstall --quiet -y opencv-python opencv-python-headless
	$(PY) -m pip install --quiet --no-deps $(OPENCV_HEADLESS)
	@touch $(STAMP)

demo: setup
	$(VENV)/bin/xunjian demo

test: setup
	$(PY) -m pytest

test-fast: setup
	$(PY) -m pytest -m "not slow and not integration"

lint: setup
	$(VENV)/bin/ruff format --check src tests
	$(VENV)/bin/ruff check src tests

typecheck: setup
	$(VENV)/bin/mypy

check: lint typecheck test

format: setup
	$(VENV)/bin/ruff format src tests
	$(VENV)/bin/ruff check --fix src tests

clean:
	rm -rf $(VENV) build *.egg-info xunjian-data
