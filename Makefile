# Two commands on a fresh machine (Python 3.11+, make):
#   make demo   set up, generate sample data, convert it, show the archive
#   make serve  serve it: a study browser at http://127.0.0.1:8042/, OHIF at /viewer
#   make test   set up (incl. nginx from Debian) and run the test suite
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
DEMO := demo

.PHONY: demo serve test setup system-deps ohif bench lint clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[cli,data,server,s3,dimse,cluster]' --group dev
	touch $(STAMP)

setup: $(STAMP)

# Real programs the tests drive, from Debian's packages: nginx (static serving of an
# archive), DCMTK (an independent reader of exported P10 files, and the DIMSE
# clients storescu, findscu, getscu, movescu, echoscu that tests/dimse/ drive
# against dwa listen), Chromium (the browser the OHIF viewer tests run in,
# tests/browser/), openssl (the self-signed certificate of the HTTP/2 test).
SYSTEM_PROGRAMS := nginx:nginx-core dcmdump:dcmtk storescu:dcmtk chromium:chromium unzip:unzip openssl:openssl

system-deps:
	@missing=""; for entry in $(SYSTEM_PROGRAMS); do \
	  prog=$${entry%%:*}; pkg=$${entry#*:}; \
	  command -v $$prog >/dev/null 2>&1 || test -x /usr/sbin/$$prog || missing="$$missing $$pkg"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  SUDO=$$(test "$$(id -u)" = 0 || echo sudo); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

# The OHIF viewer `make serve` shows and the browser tests drive (tests/browser/):
# `dwa viewer install` fetches npm's @ohif/app, which ships it built in dist/
# (only that package's own tarball, `npm pack`, checked against the registry's
# integrity hash), into $(OHIF_DIR)/package/.  The version is pinned in
# src/dicomweb_archive/viewer/install.py; nothing is fetched when it is there.
OHIF_DIR := .cache/ohif
DEMO_ARCHIVE := $(DEMO)/archive
HOST ?= 127.0.0.1
PORT ?= 8042

ohif: $(STAMP)
	$(VENV)/bin/dwa viewer install --cache $(OHIF_DIR)

demo: $(STAMP)
	$(PY) -m dicomweb_archive.demo $(DEMO)
	@echo ""
	@echo "Look at it in a web browser: make serve"
	@echo "  (it runs: $(VENV)/bin/dwa serve $(DEMO_ARCHIVE) --viewer $(OHIF_DIR))"
	@echo "  study browser: http://$(HOST):$(PORT)/"
	@echo "  viewer:        http://$(HOST):$(PORT)/viewer"

$(DEMO_ARCHIVE)/manifest.json: | $(STAMP)
	$(PY) -m dicomweb_archive.demo $(DEMO)

# The demo archive with the study browser at / and the OHIF viewer at /viewer.
serve: $(DEMO_ARCHIVE)/manifest.json ohif
	$(VENV)/bin/dwa serve $(DEMO_ARCHIVE) --viewer $(OHIF_DIR) --host $(HOST) --port $(PORT)

test: $(STAMP) system-deps ohif lint
	$(PY) -m pytest

bench: $(STAMP)
	$(PY) benchmarks/convert.py

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks scripts
	$(VENV)/bin/ruff format --check src tests benchmarks scripts
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) $(DEMO) .pytest_cache benchmarks/work
