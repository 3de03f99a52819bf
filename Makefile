# Every target sets itself up: the first use creates .venv and installs.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
SOURCE ?= webcam
GALLERY ?=
ARGS ?=
INSIGHTFACE_VERSION ?= 2.1

.PHONY: install demo test bench report clean

install: $(VENV)/.installed

$(VENV)/.installed: setup.py Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --upgrade pip
	$(PY) -m pip install -e '.[dev]'
	# insightface's metadata requires the CPU onnxruntime, which would shadow
	# onnxruntime-gpu: install it without dependencies (the ones it uses are in setup.py).
	$(PY) -m pip install --no-deps 'insightface==$(INSIGHTFACE_VERSION)'
	$(PY) -m models check-install
	touch $@

demo: install
	$(VENV)/bin/facetrack run --source $(SOURCE) $(if $(GALLERY),--gallery $(GALLERY)) $(ARGS)

test: install
	$(PY) -m pytest -q tests $(ARGS)

bench: install
	$(PY) -m evaluation bench $(ARGS)

report: install
	$(PY) -m evaluation report --out runs/report $(ARGS)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
