# Two commands on a fresh machine (Python 3.11+, make):
#   make demo   set up, generate sample data, convert it, show the archive
#   make test   set up (incl. nginx from Debian) and run the test suite
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
DEMO := demo

.PHONY: demo test setup system-deps ohif bench lint clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[cli,data,server]' --group dev
	touch $(STAMP)

setup: $(STAMP)

# Real programs the tests drive, from Debian's packages: nginx (static serving of an
# archive), DCMTK (an independent reader of exported P10 files), Chromium (the
# browser the OHIF viewer tests run in, tests/browser/).
SYSTEM_PROGRAMS := nginx:nginx-core dcmdump:dcmtk chromium:chromium unzip:unzip

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

# The OHIF viewer the browser tests drive (tests/browser/): npm's @ohif/app ships it
# built in dist/.  Only that package's own tarball is fetched (`npm pack`, checked
# against the registry's integrity hash) and unpacked to $(OHIF_DIR)/package/:
# the dist/ bundles need none of its npm dependencies.  Keep OHIF_VERSION in step
# with what tests/browser/conftest.py reads from this line.
OHIF_VERSION := 3.13.2
OHIF_DIR := .cache/ohif
OHIF_STAMP := $(OHIF_DIR)/.installed-$(OHIF_VERSION)

$(OHIF_STAMP):
	rm -rf $(OHIF_DIR) && mkdir -p $(OHIF_DIR)
	cd $(OHIF_DIR) && npm pack --silent @ohif/app@$(OHIF_VERSION) >/dev/null \
	  && tar -xzf ohif-app-$(OHIF_VERSION).tgz && rm ohif-app-$(OHIF_VERSION).tgz
	test -f $(OHIF_DIR)/package/dist/index.html
	touch $@

ohif: $(OHIF_STAMP)

demo: $(STAMP)
	$(PY) -m dicomweb_archive.demo $(DEMO)

test: $(STAMP) system-deps ohif lint
	$(PY) -m pytest

bench: $(STAMP)
	$(PY) benchmarks/convert.py

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) $(DEMO) .pytest_cache benchmarks/work
