# Two entry points: `make run` and `make test`. Both bootstrap .venv on a fresh machine.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
HOST   ?= 127.0.0.1
PORT   ?= 8000

.PHONY: run test bench system-packages clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Stamps make a second `make run` start in a second, and reinstall when pyproject.toml changes.
$(VENV)/.installed-run: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.installed-run

run: $(VENV)/.installed-run
	$(BIN)/dronefleet serve --dev --host $(HOST) --port $(PORT)

# Real peers the tests start from Debian packages: chromium (browser tests through Playwright), the
# PostgreSQL server (the store, restart and chaos tests also run against it) and GStreamer's RTSP server with
# an H.264 test pattern (RTSP camera ingest, run by /usr/bin/python3 through python3-gi). Installed when absent.
GST_PLUGINS := /usr/lib/$(shell uname -m)-linux-gnu/gstreamer-1.0
system-packages:
	@missing=""; \
	[ -x /usr/bin/chromium ] || missing="$$missing chromium"; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	[ -e /usr/lib/python3/dist-packages/gi/__init__.py ] || missing="$$missing python3-gi"; \
	ls /usr/lib/*/girepository-1.0/GstRtspServer-1.0.typelib >/dev/null 2>&1 || missing="$$missing gir1.2-gst-rtsp-server-1.0"; \
	[ -e $(GST_PLUGINS)/libgstvideotestsrc.so ] || missing="$$missing gstreamer1.0-plugins-base"; \
	[ -e $(GST_PLUGINS)/libgstrtp.so ] || missing="$$missing gstreamer1.0-plugins-good"; \
	[ -e $(GST_PLUGINS)/libgstx264.so ] || missing="$$missing gstreamer1.0-plugins-ugly"; \
	ls /usr/lib/*/girepository-1.0/GstWebRTC-1.0.typelib >/dev/null 2>&1 || missing="$$missing gir1.2-gst-plugins-bad-1.0"; \
	[ -e $(GST_PLUGINS)/libgstwebrtc.so ] || missing="$$missing gstreamer1.0-plugins-bad"; \
	ls /usr/lib/*/gstreamer-1.0/libgstnice.so >/dev/null 2>&1 || missing="$$missing gstreamer1.0-nice"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" = "0" ] && command -v apt-get >/dev/null; then \
	    echo "installing Debian packages for the tests:$$missing"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	  else \
	    echo "missing and not root:$$missing (their tests will skip and say why)"; \
	  fi; \
	fi

# Two workers (one per core), a whole test file per worker (files share their fixtures' servers and simulators);
# `make test PYTEST_WORKERS=0` runs in one process.
PYTEST_WORKERS ?= 2
# axe-core (the accessibility checks in tests/browser) from the npm registry into tests/browser/.axe/ (git-ignored).
test: $(VENV)/.installed-dev system-packages
	@$(BIN)/python -m tests.browser.axe >/dev/null
	$(BIN)/python -m pytest -n $(PYTEST_WORKERS) --dist loadfile $(PYTEST_ARGS)

bench: $(VENV)/.installed-dev
	$(BIN)/dronefleet bench --list

clean:
	rm -rf $(VENV) var .pytest_cache
