# cortexzoo setup and the two commands of the README.
#   make run    set everything up, then run the main job on the small default
#   make test   set everything up, then run the test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DEB_PACKAGES := libboost-dev libgsl-dev libltdl-dev g++
HEADERS := boost/version.hpp gsl/gsl_errno.h ltdl.h
STAMP := $(VENV)/.cortexzoo-installed

.PHONY: install system-deps build run test bench clean

install: $(STAMP) build

# Debian headers NESTML's generated C++ needs. As root we install them;
# otherwise we stop and say which command to run.
system-deps:
	@missing=""; \
	for h in $(HEADERS); do echo "#include <$$h>" | c++ -x c++ -E -o /dev/null - 2>/dev/null || missing="$$missing $$h"; done; \
	command -v c++ >/dev/null 2>&1 || missing="$$missing c++"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = "0" ]; then \
	    echo "installing Debian packages: $(DEB_PACKAGES) (missing:$$missing)"; \
	    DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(DEB_PACKAGES) >/dev/null || exit 1; \
	  else \
	    echo "error: missing system headers:$$missing"; \
	    echo "fix: sudo apt-get install -y $(DEB_PACKAGES)   (then re-run make)"; exit 1; \
	  fi; \
	fi

$(STAMP): pyproject.toml | system-deps
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e ".[test]"
	@touch $(STAMP)

build: $(STAMP) system-deps
	$(BIN)/cortexzoo build

run: install
	$(BIN)/cortexzoo compare experiments/quick.toml

test: install
	$(BIN)/python -m pytest -q

bench: install
	$(BIN)/python tests/benchmarks/run_all.py

clean:
	rm -rf $(VENV) results
