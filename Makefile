# Two commands matter (see README): `make demo` and `make test`.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-$(shell sha256sum pyproject.toml | cut -c1-12)

.PHONY: install js-deps browser-deps demo test test-unit clean-state

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[cpu,export,test]"
	rm -f $(VENV)/.installed-* && touch $@

install: $(STAMP)

## The JavaScript clients of the live tests (tests/live/js), exactly as locked; needs Node.js 20+ and npm.
JS_DIR := tests/live/js
$(JS_DIR)/node_modules/.package-lock.json: $(JS_DIR)/package.json $(JS_DIR)/package-lock.json
	cd $(JS_DIR) && npm ci --no-audit --no-fund

js-deps: $(JS_DIR)/node_modules/.package-lock.json

## Debian's chromium for the browser tests (tests/live/test_browser.py), installed only when missing.
## Playwright drives this executable; it never downloads a browser of its own.
browser-deps:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium chromium-driver; }

## Full demo: local ES, model, catalog indexed, query service running.
demo: install
	$(VENV)/bin/mmsearch demo

## The whole suite: unit tests and live tests against a real Elasticsearch the tests start themselves.
test: install js-deps browser-deps
	@$(PY) -m pytest tests -q --timeout=1800; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: that is a broken suite, failing" >&2; exit 1; fi; \
	exit $$rc

test-unit: install
	$(PY) -m pytest tests/unit -q

clean-state:
	$(VENV)/bin/mmsearch node stop || true
	rm -rf .state
