# One entry point for every task. Run `make help` for the list.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-$(shell cat requirements.txt requirements-dev.txt | cksum | cut -d' ' -f1)

STD_PORT ?= 5001
STR_PORT ?= 5002
PIPELINE_PORT ?= 5000
WEB_PORT ?= 8501
# Interface every local server binds: loopback unless you ask for more (BIND=0.0.0.0).
BIND ?= 127.0.0.1
# supervisord's pid file and control socket (supervisorctl -s unix://$(RUN_DIR)/supervisor.sock).
RUN_DIR ?= $(or $(TMPDIR),/tmp)/ocr-supervisor-$(shell id -u)
SERVE := BIND=$(BIND) $(BIN)/python -m common.server
SUPERVISORD = OCR_BIN=$(abspath $(BIN)) OCR_RUN_DIR=$(RUN_DIR) BIND=$(BIND) \
	PIPELINE_PORT=$(PIPELINE_PORT) STD_PORT=$(STD_PORT) STR_PORT=$(STR_PORT) WEB_PORT=$(WEB_PORT) \
	WORKERS=$(or $(WORKERS),1) $(BIN)/supervisord -n -c

.PHONY: help install demo run run-services run-std run-str test lint format audit bench compare peers clean

# Each target's `## text`, sorted, with the make variables in it expanded (:$(PIPELINE_PORT) is
# shown as :5000, or as what you set): $(eval) parses the text as an assignment, which expands it.
help:  ## List the targets
	@$(foreach t,$(sort $(shell sed -nE 's/^([a-z-]+):.*## .*/\1/p' $(MAKEFILE_LIST))),\
	$(eval HELP_TEXT := $(shell sed -nE 's/^$(t):.*## //p' $(MAKEFILE_LIST)))\
	printf '%-14s%s\n' '$(t)' '$(subst ','\'',$(HELP_TEXT))';)

$(STAMP): requirements.txt requirements-dev.txt
	@echo "==> installing the pinned dependencies into $(VENV) (the first time takes about 3 minutes on 2 cores; later runs skip this)"
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -r requirements-dev.txt
	rm -f $(VENV)/.installed-*
	touch $@

install: $(STAMP)  ## Create .venv and install the pinned dependencies


# A sample page for the README's examples (out/ is git-ignored), read by the CLI in process.
DEMO_PAGE ?= out/demo/page.png

demo: install  ## Draw a sample page ($(DEMO_PAGE)) and read it with the CLI, in process
	$(BIN)/python -m pipeline.demo $(DEMO_PAGE)
	$(BIN)/python -m pipeline.cli $(DEMO_PAGE)

run: install  ## Embedded pipeline on :$(PIPELINE_PORT) + web page on :$(WEB_PORT) (no broker needed)
	@echo "pipeline: curl -F image=@$(DEMO_PAGE) http://$(BIND):$(PIPELINE_PORT)/pipeline  (make demo draws that page)"
	@echo "the models load and quantise in about 10 s; a page takes about 1 s on 2 CPU cores"
	@echo "web page: http://$(BIND):$(WEB_PORT)"
	@mkdir -p $(RUN_DIR)
	$(SUPERVISORD) deploy/supervisord.embedded.conf

run-services: install  ## std, str, WORKERS=N str workers, pipeline and web, restarted if one dies
	@echo "pipeline: curl -F image=@$(DEMO_PAGE) http://$(BIND):$(PIPELINE_PORT)/pipeline  (RABBITMQ_URL=$${RABBITMQ_URL:-amqp://guest:guest@127.0.0.1:5672/%2F})"
	@echo "web page: http://$(BIND):$(WEB_PORT)"
	@mkdir -p $(RUN_DIR)
	OCR_THREADS=$${OCR_THREADS:-1} $(SUPERVISORD) deploy/supervisord.services.conf

run-std: install  ## Only the CRAFT detection service on :$(STD_PORT)
	PORT=$(STD_PORT) $(SERVE) std

run-str: install  ## Only the recognition service on :$(STR_PORT)
	PORT=$(STR_PORT) $(SERVE) str

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

audit: install  ## Look up every installed package's known vulnerabilities on PyPI
	$(BIN)/python -m monitoring.audit

clean:  ## Remove the virtual environment and caches
	rm -rf $(VENV) .pytest_cache .ruff_cache

-include docker.mk
-include monitoring/bench.mk
