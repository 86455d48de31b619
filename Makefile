# CAM Lens: `make run` starts the dashboard (building the demo in the background on first use), `make test` runs
# the whole test suite. Both set up everything they need (venv, package, browser) themselves.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8501
# Empty: listen where .streamlit/config.toml says (127.0.0.1, this machine only); e.g.
# HOST=0.0.0.0 make run listens on every interface (share it behind TLS, see the README).
HOST ?=
export CAM_LENS_HOME ?= $(HOME)/.cache/cam-lens

.PHONY: run test test-fast mutate browser lint demo demo-stale bench clean

$(VENV)/.installed: requirements.txt requirements-dev.txt pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	$(PY) -m pip install --quiet --no-deps -e .
	touch $@

# Rebuilt when the demo preset or its data generator is newer than the run (after a pull).
$(CAM_LENS_HOME)/demo/%/artifacts/manifest.json: cam_core/analysis/demo.py cam_core/data/demo_data.py | $(VENV)/.installed
	$(PY) -m cam_core demo --task $*

DEMO_TASKS := species breed
demo: $(foreach task,$(DEMO_TASKS),$(CAM_LENS_HOME)/demo/$(task)/artifacts/manifest.json)

# The dashboard opens at once; a demo task that is missing or older than its preset is built
# in the background by the server (progress on the page and here), species first.
run: $(VENV)/.installed
	CAM_LENS_BUILD_DEMO="$$($(MAKE) --no-print-directory -s demo-stale)" \
	  $(PY) -m streamlit run dashboard/app.py --server.port $(PORT) \
	  $(if $(HOST),--server.address $(HOST))

# The demo tasks whose analysis is missing or older than the demo preset, one per line.
demo-stale:
	@for task in $(DEMO_TASKS); do \
	  $(MAKE) --no-print-directory -s -q -o $(VENV)/.installed \
	    $(CAM_LENS_HOME)/demo/$$task/artifacts/manifest.json \
	    || echo $$task; \
	done

browser: $(VENV)/.installed
	@bash tests/ensure_browser.sh $(PY)

test: $(VENV)/.installed browser
	$(PY) -m pytest

# Everything but the tests marked slow (those that train a model, and the real-browser ones).
test-fast: $(VENV)/.installed
	$(PY) -m pytest -m "not slow"

# Mutation testing of the core, each module against its own tests (tests/MUTATION.md); slow.
MODULES ?=
mutate: $(VENV)/.installed
	$(PY) tests/mutate.py $(MODULES)

lint: $(VENV)/.installed
	$(PY) -m ruff check cam_core dashboard tests benchmarks
	$(PY) -m mypy
	$(PY) -m vulture cam_core dashboard --min-confidence 100

bench: $(VENV)/.installed
	$(PY) benchmarks/bench_cam.py

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .mutants
