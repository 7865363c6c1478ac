# Each target bootstraps .venv when missing (torch from the CPU wheel: never a multi-GB CUDA build).
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
# every version the tests passed with (make lock writes it); torch is the CPU build, installed first
LOCK := requirements.lock
TORCH := torch==2.13.0
export DAGSTER_HOME ?= $(CURDIR)/.dagster_home
export HF_HUB_OFFLINE ?= 1
export TOKENIZERS_PARALLELISM ?= false

.PHONY: venv home run dev test lint typecheck lock model bench clean screenshots system-packages

# Installs the project with the exact versions of $(LOCK) (a constraints file: -c), again whenever
# pyproject.toml or the lock changes.
$(STAMP): pyproject.toml $(LOCK)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH)
	$(BIN)/python -m pip install --quiet -c $(LOCK) -e '.[dev,production]'
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

## make test: the import-layering contracts (pyproject.toml [tool.importlinter]), then the test suite
test: venv system-packages
	$(BIN)/lint-imports
	$(BIN)/python -m pytest

## make lint: ruff (the package, its tests, bench/ and scripts/), and the import contracts of pyproject.toml
## (core never imports Dagster; cli > defs > core; the domains inside core/ layered; the read-only commands light),
## then the type checker (make typecheck)
lint: venv
	$(BIN)/ruff check forex_assets forex_assets_tests bench scripts
	$(BIN)/lint-imports
	$(MAKE) --no-print-directory typecheck

## make typecheck: mypy on the package as [tool.mypy] of pyproject.toml says: strict on forex_assets/core,
## mypy's defaults on defs/ and cli/ (make lint runs it)
typecheck: venv
	$(BIN)/mypy

## make lock: re-resolve $(LOCK) after a dependency change in pyproject.toml (make lock UPGRADE=1: also
## move every pin to the newest allowed version). uv, in a throwaway venv, resolves the dev and production
## extras for CPython 3.11 on x86_64 Linux (the dev machine, CI and the Dockerfile), keeping the pins of
## the current lock where they still fit. torch is pinned to $(TORCH) without its CUDA-only dependencies
## (nvidia-*, cuda-*, triton): a first pass finds them, the second excludes them, and the result is checked.
LOCK_TOOLS ?= /tmp/forex_assets-lock-tools
lock:
	test -x $(LOCK_TOOLS)/bin/uv || ($(PYTHON) -m venv $(LOCK_TOOLS) && $(LOCK_TOOLS)/bin/python -m pip install --quiet uv)
	echo '$(TORCH)' > $(LOCK_TOOLS)/torch.txt
	cp $(LOCK) $(LOCK_TOOLS)/with-cuda.txt 2>/dev/null || true
	$(LOCK_TOOLS)/bin/uv pip compile --quiet pyproject.toml --extra dev --extra production --python-version 3.11 \
	  --python-platform x86_64-manylinux_2_28 --overrides $(LOCK_TOOLS)/torch.txt $(if $(UPGRADE),--upgrade) \
	  --no-header -o $(LOCK_TOOLS)/with-cuda.txt
	grep -oiE '^(nvidia-[a-z0-9_.-]+|cuda-[a-z0-9_.-]+|triton)==' $(LOCK_TOOLS)/with-cuda.txt | tr -d '=' > $(LOCK_TOOLS)/cuda-only.txt
	$(LOCK_TOOLS)/bin/uv pip compile --quiet pyproject.toml --extra dev --extra production --python-version 3.11 \
	  --python-platform x86_64-manylinux_2_28 --overrides $(LOCK_TOOLS)/torch.txt $(if $(UPGRADE),--upgrade) \
	  --excludes $(LOCK_TOOLS)/cuda-only.txt --custom-compile-command 'make lock' -o $(LOCK)
	! grep -iE '^(nvidia-|cuda-|triton)' $(LOCK)
	grep -qx '$(TORCH)' $(LOCK)

## make model: retrain the bundled checkpoint and re-measure its model card scores
model: venv
	$(BIN)/python scripts/train_bundled_model.py
	$(BIN)/python scripts/evaluate_bundled_model.py

clean:
	rm -rf .dagster_home .forex_assets .pytest_cache

## make bench: search engine vs the plain ADR grid loop, peak RSS of optimization runs, the read-only commands'
## wall time and peak RSS, the pairs' sensor tick, replays and runs per pair-day on a live daemon, the seeds'
## calibration, the band's ceiling and the distribution targets; writes bench/results.md
bench: venv
	$(BIN)/python bench/bench_cli.py
	$(BIN)/python bench/bench_search.py
	$(BIN)/python bench/bench_memory.py
	$(BIN)/python bench/bench_replay.py
	$(BIN)/python bench/bench_sensor_tick.py
	$(BIN)/python bench/bench_pairs_tick.py
	$(BIN)/python bench/bench_pairs_replay.py --start 2024-11-01 --end 2026-10-30
	$(BIN)/python bench/bench_pairs_daemon.py
	$(BIN)/python bench/bench_replay_cost.py
	$(BIN)/python bench/bench_drift_latency.py
	$(BIN)/python bench/calibrate_seed.py
	$(BIN)/python bench/band_ceiling.py
	$(BIN)/python bench/bench_policy.py --split-horizons
	$(BIN)/python bench/bench_distribution.py

## make screenshots: pictures of the Dagster UI for the README (Debian's chromium driven by Playwright)
screenshots: venv home
	command -v chromium >/dev/null || ($$([ "$$(id -u)" = 0 ] || echo sudo) apt-get install -y chromium)
	$(BIN)/python -m pip install --quiet -e '.[dev,production,screenshots]'
	test -d $(DAGSTER_HOME)/forex_assets || $(BIN)/python -m forex_assets.cli.run
	$(BIN)/python scripts/ui_screenshots.py --size 1600,1000
	$(BIN)/python scripts/ui_partition_run.py
