# Two commands on a fresh machine (Python 3.11+, make):
#   make demo   set up, generate sample data, convert it, show the archive
#   make test   set up (incl. nginx from Debian) and run the test suite
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
DEMO := demo

.PHONY: demo test setup system-deps bench lint clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[cli,data,server]' --group dev
	touch $(STAMP)

setup: $(STAMP)

# Real programs the tests drive, from Debian's packages: nginx (static serving of an
# archive), DCMTK (an independent reader of exported P10 files).
SYSTEM_PROGRAMS := nginx:nginx-core dcmdump:dcmtk

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

demo: $(STAMP)
	$(PY) -m dicomweb_archive.demo $(DEMO)

test: $(STAMP) system-deps lint
	$(PY) -m pytest

bench: $(STAMP)
	$(PY) benchmarks/convert.py

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/mypy

clean:
	rm -rf $(VENV) $(DEMO) .pytest_cache benchmarks/work
