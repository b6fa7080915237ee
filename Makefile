# The two commands the README opens with. Both do all set-up on a fresh machine first.
#   make demo   full pipeline locally (kfp.local) on the built-in demo catalog
#   make test   the whole test suite (what CI runs through .ci/run)
VENV ?= .venv
BIN := $(VENV)/bin
OUT ?= runs/demo
PYTEST_ARGS ?=
# The suite runs on every core up to four (pytest-xdist): most tests use one core, and each worker
# holds its own TensorFlow, so more than four would cost memory for little. A module's tests run on
# one worker (--dist loadscope), so a model its module-scoped fixture trains is trained once.
# (loadgroup would allow finer groups, but with pytest 9.2 it silently stops grouping:
# pytest-xdist issue #1386.) Modules go out in collection order, where tests/conftest.py puts the
# slow ones first; xdist's default reorder (most tests first) left them for last.
TEST_WORKERS ?= $(shell n=$$(nproc); echo $$(( n < 4 ? n : 4 )))
XDIST := -n $(TEST_WORKERS) --dist loadscope --no-loadscope-reorder
# The tests run with loopback as the only network where the machine allows it (root, as on CI), so
# one that sends traffic off the machine fails (scripts/loopback_only.sh; ECOM_KFP_LOOPBACK_ONLY=off).
ISOLATED := scripts/loopback_only.sh

.PHONY: setup demo test test-fast bench compile check clean

setup:
	scripts/setup.sh

demo: setup
	$(BIN)/ecom-kfp run-local --out $(OUT)

test: setup
	$(ISOLATED) $(BIN)/python -m pytest $(XDIST) $(PYTEST_ARGS)

test-fast: setup
	$(ISOLATED) $(BIN)/python -m pytest $(XDIST) -m "not e2e" $(PYTEST_ARGS)

bench: setup
	for b in benchmarks/bench_*.py; do $(BIN)/python $$b || exit 1; done

compile: setup
	$(BIN)/ecom-kfp compile

check: setup
	$(BIN)/ecom-kfp compile --check && $(BIN)/ecom-kfp validate

clean:
	rm -rf $(VENV) runs .pytest_cache
