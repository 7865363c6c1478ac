# Each target bootstraps .venv when missing (torch from the CPU wheel: never a multi-GB CUDA build).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home
export HF_HUB_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false

.PHONY: venv home run dev test lint model bench clean screenshots system-packages

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[dev,production]'
	touch $@

venv: $(STAMP)

home:
	mkdir -p $(DAGSTER_HOME)
	cp dagster.yaml $(DAGSTER_HOME)/dagster.yaml

## make run: one full cycle on the embedded default (synthetic prices, bundled model, SQLite instance)
run: venv home
	$(BIN)/python -m forex_assets.cli.run

## make dev: the Dagster UI (and daemon) on http://127.0.0.1:3000
dev: venv home
	$(BIN)/dagster dev -h 127.0.0.1 -p 3000 -w workspace.yaml

# Debian packages the tests use: PostgreSQL (a throwaway cluster), openssl (a throwaway certificate), git
system-packages:
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && command -v openssl >/dev/null && command -v git >/dev/null \
	  || ($$([ "$$(id -u)" = 0 ] || echo sudo) apt-get update -qq \
	      && $$([ "$$(id -u)" = 0 ] || echo sudo) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql openssl git)

## make test: the test suite
test: venv system-packages
	$(BIN)/python -m pytest

lint: venv
	$(BIN)/ruff check forex_assets forex_assets_tests scripts

## make model: retrain the bundled checkpoint and re-measure its model card scores
model: venv
	$(BIN)/python scripts/train_bundled_model.py
	$(BIN)/python scripts/evaluate_bundled_model.py

clean:
	rm -rf .dagster_home .forex_assets .pytest_cache

## make bench: search engine vs the plain ADR grid loop, peak RSS of optimization runs; writes bench/results.md
bench: venv
	$(BIN)/python bench/bench_search.py
	$(BIN)/python bench/bench_memory.py
	$(BIN)/python bench/bench_replay.py
	$(BIN)/python bench/bench_sensor_tick.py

## make screenshots: pictures of the Dagster UI for the README (Debian's chromium driven by Playwright)
screenshots: venv home
	command -v chromium >/dev/null || ($$([ "$$(id -u)" = 0 ] || echo sudo) apt-get install -y chromium)
	$(BIN)/python -m pip install --quiet -e '.[dev,production,screenshots]'
	test -d $(DAGSTER_HOME)/forex_assets || $(BIN)/python -m forex_assets.cli.run
	$(BIN)/python scripts/ui_screenshots.py --size 1600,1000
