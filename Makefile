# Two entry points for humans and CI:
#   make run    install (first time) and start the bot: the terminal sandbox when BOT_TOKEN is unset
#   make test   install (first time), bring up PostgreSQL and Redis if they are down, run every test tier
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
ARGS   ?=

.PHONY: install run test lint services bench

$(STAMP): pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c requirements.lock -e '.[dev]'
	-@bash .ci/fonts.sh
	-@bash .ci/chromium.sh
	@touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/python run_bot.py $(ARGS)

services:
	@bash .ci/services.sh

test: $(STAMP) services
	$(BIN)/python -m pytest $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports

bench: $(STAMP)
	$(BIN)/python -m benchmarks $(ARGS)
