# make test / make demo work on a fresh machine with Python, Node/npm and apt.
# Every step is idempotent: a stamp file records what is installed.
PY      ?= python3
VENV    := .venv
BIN     := $(VENV)/bin
STAMPS  := .stamps

.PHONY: test demo lint unit setup bench clean fuzz soak

setup: $(STAMPS)/venv $(STAMPS)/npm $(STAMPS)/system

$(STAMPS)/venv: setup.cfg pyproject.toml
	@mkdir -p $(STAMPS)
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev,redis]'
	@touch $@

$(STAMPS)/npm: package.json
	@mkdir -p $(STAMPS)
	npm install --no-audit --no-fund --loglevel=error
	@touch $@

$(STAMPS)/system: scripts/install-system-deps.sh
	@mkdir -p $(STAMPS)
	sh scripts/install-system-deps.sh
	@touch $@

lint: $(STAMPS)/venv
	$(BIN)/ruff check flask_ioengine tests demo bench
	$(BIN)/mypy flask_ioengine
	$(BIN)/lint-imports

test: setup lint
	$(BIN)/python -m pytest -q -p no:cacheprovider

unit: $(STAMPS)/venv
	$(BIN)/python -m pytest -q -p no:cacheprovider tests/test_engineio_packet.py tests/test_socketio_packet.py

demo: $(STAMPS)/venv $(STAMPS)/npm
	$(BIN)/python -m demo

# Benchmarks (bench/README.md): its own environment (bench/.venv, bench/node_modules),
# set up idempotently; options through ARGS, e.g. make bench ARGS="--quick".
bench:
	PY=$(PY) sh bench/setup.sh
	bench/.venv/bin/python bench/run.py $(ARGS)

# Soak (soak/run.py): slow consumers, a flood, churn and clients that vanish, against
# flask_ioengine, python-socketio and Node socket.io side by side; in the benchmarks'
# environment (bench/setup.sh, idempotent). Options through ARGS, e.g. ARGS="--quick".
soak:
	PY=$(PY) sh bench/setup.sh
	bench/.venv/bin/python soak/run.py $(ARGS)

clean:
	rm -rf $(STAMPS) $(VENV) node_modules

# Coverage-guided fuzzing of the packet codecs; atheris is installed on first use.
FUZZ_RUNS ?= 1000000
fuzz: $(STAMPS)/venv
	$(BIN)/python -c "import atheris" 2>/dev/null || $(BIN)/pip install -q atheris
	$(BIN)/python fuzz/run.py $(FUZZ_RUNS) fuzz/fuzz_engineio.py fuzz/fuzz_socketio.py
