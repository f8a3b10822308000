# Docker targets, included by the Makefile. They drive docker compose (v2):
#   make build | up | down | logs | ps | scale WORKERS=N PAGE_WORKERS=N
# Options: GPU=1 adds docker-compose.gpu.yml (CUDA torch, GPUs reserved), MONITORING=1 starts
# Prometheus and Grafana too, SERVICE=name narrows build/up/logs to one service. A local
# docker-compose.override.yml (never committed) is picked up when present.

# Included anywhere in the Makefile, these targets never become its default goal.
docker_mk_default_goal := $(.DEFAULT_GOAL)

COMPOSE ?= docker compose
is_on = $(filter 1 yes true on,$(1))
COMPOSE_FILES := -f docker-compose.yml \
	$(if $(call is_on,$(GPU)),-f docker-compose.gpu.yml) \
	$(if $(wildcard docker-compose.override.yml),-f docker-compose.override.yml)
DC = $(strip $(COMPOSE) $(COMPOSE_FILES) $(if $(call is_on,$(MONITORING)),--profile monitoring))
# down, logs and ps always include the monitoring profile, so they cover Prometheus and Grafana.
DC_ALL = $(strip $(COMPOSE) $(COMPOSE_FILES) --profile monitoring)

.PHONY: build up down logs ps scale

build:  ## Build the images (GPU=1: CUDA torch; SERVICE=name: one image)
	$(DC) build $(SERVICE)

up:  ## Start the stack in Docker and wait until healthy (GPU=1, MONITORING=1, WORKERS=N, PAGE_WORKERS=N)
	$(DC) up -d --wait $(if $(WORKERS),--scale str-worker=$(WORKERS)) $(if $(PAGE_WORKERS),--scale page-worker=$(PAGE_WORKERS)) $(SERVICE)
	$(DC) ps

down:  ## Stop and remove the containers (volumes are kept)
	$(DC_ALL) down

logs:  ## Follow the logs of every service, or SERVICE=name
	$(DC_ALL) logs -f --tail=200 $(SERVICE)

ps:  ## List the containers and their health
	$(DC_ALL) ps

scale:  ## Run WORKERS=N str workers, PAGE_WORKERS=N page workers (also on other machines sharing the broker)
	$(if $(WORKERS)$(PAGE_WORKERS),,$(error usage: make scale WORKERS=N and/or PAGE_WORKERS=N))
	$(DC) up -d --no-deps $(if $(WORKERS),--scale str-worker=$(WORKERS)) $(if $(PAGE_WORKERS),--scale page-worker=$(PAGE_WORKERS)) $(if $(WORKERS),str-worker) $(if $(PAGE_WORKERS),page-worker)

.DEFAULT_GOAL := $(docker_mk_default_goal)
