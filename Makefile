# cortexzoo setup and the two commands of the README.
#   make run    set everything up, then run the main job on the small default
#   make test   set everything up, then run the test suite
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DEB_PACKAGES := libboost-dev libgsl-dev libltdl-dev g++ chromium
HEADERS := boost/version.hpp gsl/gsl_errno.h ltdl.h
STAMP := $(VENV)/.cortexzoo-installed

.PHONY: install system-deps test-deps build run test bench clean screenshot

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

# Headless chromium renders the HTML report in tests/test_report_browser.py.
test-deps:
	@if ! command -v chromium >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = "0" ]; then \
	    echo "installing Debian package chromium (for the report browser test)"; \
	    DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null || exit 1; \
	  else \
	    echo "error: chromium is missing (the report browser test needs it)"; \
	    echo "fix: sudo apt-get install -y chromium   (then re-run make test)"; exit 1; \
	  fi; \
	fi

test: install test-deps
	$(BIN)/python -m pytest -q

# Re-render docs/report_screenshot.png (README figure) from a finished experiment directory.
SCREENSHOT_FROM ?= results/quick
screenshot: install test-deps
	$(BIN)/python tests/screenshot.py $(SCREENSHOT_FROM) docs/report_screenshot.png

clean:
	rm -rf $(VENV) results
