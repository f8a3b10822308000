# One entry point for every task. Run `make help` for the list.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt | cksum | cut -d' ' -f1)

STD_PORT ?= 5001
STR_PORT ?= 5002
PIPELINE_PORT ?= 5000
GUNICORN := $(BIN)/gunicorn -c python:common.gunicorn_conf

.PHONY: help install run run-std test lint format bench clean

help:  ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | sort

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements-dev.txt
	rm -f $(VENV)/.installed-*
	touch $@

install: $(STAMP)  ## Create .venv and install the pinned dependencies

run-std: install  ## Start the CRAFT detection service on :$(STD_PORT)
	@echo "std_service on http://127.0.0.1:$(STD_PORT)  (curl -F image=@page.png http://127.0.0.1:$(STD_PORT)/detection)"
	PORT=$(STD_PORT) $(GUNICORN) "std_service.app:create_app()"

run: run-std  ## Start what exists so far

test: install  ## Lint, then run the whole test suite
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/python -m pytest

lint: install  ## ruff check and format check
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install  ## Reformat the code with ruff
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

clean:  ## Remove the virtual environment and caches
	rm -rf $(VENV) .pytest_cache .ruff_cache

-include docker.mk
