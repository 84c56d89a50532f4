# The front door for every routine command. See README.md.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
export PYTHON

RASA_VENV := .venv-rasa
APP_VENV := .venv-app
RASA := $(RASA_VENV)/bin/rasa
MODEL := models/sla-bot.tar.gz
RASA_CONFIG := nlu_data/config.yml
RASA_DOMAIN := nlu_data/domain.yml
RASA_DATA := nlu_data/nlu nlu_data/rules
# Everything that shapes the model: config, domain, training data, the catalog (aliases), and
# the code the Rasa components run (tokenizer, normaliser, matcher, tracking numbers).
# tests/nlu/test_training_inputs.py checks this covers every module the components import.
NLU_CODE := bot/__init__.py bot/text.py bot/tracking.py bot/answers/__init__.py bot/answers/reply.py \
  $(shell find bot/nlu bot/catalog -type f -name '*.py' 2>/dev/null)
TRAIN_INPUTS := $(RASA_CONFIG) $(RASA_DOMAIN) $(NLU_CODE) \
  $(shell find $(RASA_DATA) sla_catalog -type f -name '*.yml' 2>/dev/null)
export RASA_TELEMETRY_ENABLED := false
# The storage tests also run against the real PostgreSQL (and Redis) this machine runs;
# set TEST_DATABASE_URL= (empty) to run them on SQLite only.
export TEST_DATABASE_URL ?= postgresql://postgres@127.0.0.1:5432/test
export TF_CPP_MIN_LOG_LEVEL := 2

.PHONY: setup run train test lint browser test-unit test-nlu test-integration validate bench-nlu bench-chat bench-status bench-channels bench-complaints \
  catalog-check catalog-report clean fixtures print-%

setup: $(RASA_VENV)/.installed $(APP_VENV)/.installed  ## create/update both environments

$(RASA_VENV)/.installed: requirements/rasa.txt pyproject.toml scripts/make-venv
	scripts/make-venv $(RASA_VENV) requirements/rasa.txt
	touch $@

$(APP_VENV)/.installed: requirements/app.txt pyproject.toml scripts/make-venv
	scripts/make-venv $(APP_VENV) requirements/app.txt
	touch $@

catalog-check: $(APP_VENV)/.installed  ## validate sla_catalog/
	$(APP_VENV)/bin/sla-bot catalog check

catalog-report: $(APP_VENV)/.installed  ## regenerate reports/catalog-sources.md (commit it)
	$(APP_VENV)/bin/sla-bot catalog sources

train: $(MODEL)  ## train the model into models/ if training data or catalog changed

$(MODEL): $(TRAIN_INPUTS) | setup
	$(APP_VENV)/bin/sla-bot catalog check
	$(RASA) train --force --config $(RASA_CONFIG) --domain $(RASA_DOMAIN) --data $(RASA_DATA) \
	  --out models --fixed-model-name sla-bot

run: setup train  ## start Rasa, the action server and the gateway; Ctrl-C stops all three
	$(APP_VENV)/bin/sla-bot run

validate: setup  ## rasa data validate on the training data and domain
	$(RASA) data validate --fail-on-warnings --config $(RASA_CONFIG) --domain $(RASA_DOMAIN) --data $(RASA_DATA)

test-unit: setup
	$(APP_VENV)/bin/python -m pytest tests/unit -q

test-nlu: setup
	$(RASA_VENV)/bin/python -m pytest tests/nlu -q

browser:  ## Chromium and Thai fonts for the browser tests (installs them, or says how)
	scripts/ensure-browser

lint: setup  ## ruff, configured in pyproject.toml
	$(APP_VENV)/bin/ruff check .

test-integration: setup train browser
	$(APP_VENV)/bin/python -m pytest tests/integration -q

test: lint test-unit test-nlu test-integration  ## the whole test suite

print-%:  ## print a make variable (used by the tests)
	@echo $($*)

fixtures: setup train  ## re-capture tests/data/trackers/ from the real Rasa server
	$(APP_VENV)/bin/python -m tests.trackers

bench-nlu: setup  ## train, evaluate pipeline and baseline on every test set (held-out, blind, blind2, out-of-domain), write reports/nlu/
	$(RASA_VENV)/bin/python scripts/bench_nlu.py --config $(RASA_CONFIG)

clean:
	rm -rf models results var/endpoints-*.yml && find reports -mindepth 1 ! -name catalog-sources.md -delete 2>/dev/null || true

bench-status: setup train  ## registry queries at 100,000 requests (SQLite, PostgreSQL) and status lookups via web chat
	$(APP_VENV)/bin/python scripts/bench_status.py

bench-channels: setup train  ## signed LINE webhooks vs Rasa's REST channel at fixed concurrency, reports/channels/
	$(APP_VENV)/bin/python scripts/bench_channels.py

bench-chat: setup train  ## web-chat reply latency through the real stack, raw numbers in reports/chat/
	$(APP_VENV)/bin/python scripts/bench_chat.py

bench-complaints: setup train  ## complaint filing (SQLite, PostgreSQL, web chat) and signed webhook delivery, reports/complaints/
	$(APP_VENV)/bin/python scripts/bench_complaints.py
