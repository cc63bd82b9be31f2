# Set-up and everyday tasks. `make demo` and `make test` do all the set-up on a fresh clone.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
OUT ?= out/demo

.PHONY: demo demo-lab test validate bench lint install clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/tsunami run grids/okushiri1993/region.toml scenarios/okushiri1993_hno.toml --out $(OUT)

demo-lab: $(STAMP)
	$(BIN)/tsunami run grids/conical_island/region.toml scenarios/conical_island_case_a.toml --out out/lab

test: $(STAMP)
	$(BIN)/python -m pytest -q

validate: $(STAMP)
	$(BIN)/python -m pytest -q -m slow
	$(BIN)/tsunami validate --all --out validation_output

bench: $(STAMP)
	$(BIN)/tsunami bench
	$(BIN)/tsunami bench --demo
	$(BIN)/tsunami bench --damage

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf out validation_output .pytest_cache
