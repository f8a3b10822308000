# One entry point for every task. Run `make help` for the list.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt | cksum | cut -d' ' -f1)

STD_PORT ?= 5001
STR_PORT ?= 5002
PIPELINE_PORT ?= 5000
GUNICORN := $(BIN)/gunicorn -c python:common.gunicorn_conf

.PHONY: help install run run-services run-std run-str test lint format bench clean

help:  ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | sed 's/:.*## /\t/' | sort

$(STAMP): requirements.txt requirements-dev.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -r requirements-dev.txt
	rm -f $(VENV)/.installed-*
	touch $@

install: $(STAMP)  ## Create .venv and install the pinned dependencies


HONCHO := $(BIN)/honcho --no-colour -e /dev/null

run: install  ## Embedded pipeline on :$(PIPELINE_PORT) + web page on :8501 (no broker needed)
	@echo "pipeline: curl -F image=@page.png http://127.0.0.1:$(PIPELINE_PORT)/pipeline"
	@echo "web page: http://127.0.0.1:8501"
	$(HONCHO) -f Procfile.embedded start

run-services: install  ## std, str, WORKERS=N str workers, pipeline and web as local processes
	@echo "pipeline: curl -F image=@page.png http://127.0.0.1:$(PIPELINE_PORT)/pipeline  (RABBITMQ_URL=$${RABBITMQ_URL:-amqp://guest:guest@127.0.0.1:5672/%2F})"
	@echo "web page: http://127.0.0.1:8501"
	$(HONCHO) -f Procfile start -c worker=$(or $(WORKERS),1)

run-std: install  ## Only the CRAFT detection service on :$(STD_PORT)
	PORT=$(STD_PORT) $(GUNICORN) "std_service.app:create_app()"

run-str: install  ## Only the recognition service on :$(STR_PORT)
	PORT=$(STR_PORT) $(GUNICORN) "str_service.app:create_app()"

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
-include monitoring/bench.mk
