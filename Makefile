# al_bench — `make help` lists the targets.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
ARGS   ?=
PYTEST := $(BIN)/python -m pytest -q -p no:cacheprovider

.DEFAULT_GOAL := help
TABLES := dispersion isal ralif badge ji dbal dbal-digits batchbald suite-digits suite-fmnist suite-fmnist-frozen suite-fmnist-realistic posterior-grid svp posterior-grid-fmnist svp-fmnist
SMOKE  ?=
SMOKE_FLAG := $(if $(filter 1 true yes,$(SMOKE)),--smoke,)

.PHONY: help setup run pretrain test test-slow test-all lint format bench suite-digits suite-fmnist suite-fmnist-frozen suite-fmnist-realistic report \
        smoke-tables \
        table-svp table-posterior-grid table-svp-fmnist table-posterior-grid-fmnist table-dispersion table-isal table-ralif table-badge table-dbal table-dbal-digits table-ji table-batchbald \
        clean

help: ## list the targets
	@grep -hE '^[a-zA-Z_ -]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  make %-18s %s\n", $$1, $$2}'

# Peer implementations that tests compare with (skipped where absent): baal and scikit-activeml, without extras.
PEERS := baal==2.1.0 structlog==22.3.0 scikit-activeml==1.0.1 makefun==1.16.0 efficientnet-lite-pytorch==0.1.0

$(STAMP): pyproject.toml Makefile
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	$(BIN)/python -m pip install -q --no-deps $(PEERS) || echo "setup: peers ($(PEERS)) not installed; their cross-checks will skip"
	@touch $(STAMP)

setup: $(STAMP) ## create .venv and install al_bench with dev extras (no-op when up to date)

run: setup ## one AL run on the bundled digits (python -m al_bench $(ARGS))
	$(BIN)/python -m al_bench $(ARGS)

pretrain: setup ## SimCLR encoder on the training images, no labels (digits: ~1.5 min on one core) -> results/runs/ssl/
	$(BIN)/python -m al_bench.pretrain $(ARGS)

test: setup ## the default test suite (slow tests excluded)
	$(PYTEST) -m "not slow" $(ARGS)

test-slow: setup ## only the tests marked slow (CI runs them after `make test`)
	$(PYTEST) -m slow $(ARGS)

test-all: setup ## every test
	$(PYTEST) $(ARGS)

lint: setup ## ruff lint + format check
	$(BIN)/ruff check al_bench tests scripts
	$(BIN)/ruff format --check al_bench tests scripts

format: setup ## ruff fix + format
	$(BIN)/ruff check --fix al_bench tests scripts
	$(BIN)/ruff format al_bench tests scripts

bench: setup ## benchmarks side by side with reference implementations -> results/bench/
	@for s in scripts/bench_*.py; do echo "== $$s"; $(BIN)/python $$s $(ARGS) || exit 1; done

suite-digits: setup ## every strategy x 5 seeds on the bundled digits -> results/digits/ (about 40 minutes on 2 cores)
	$(BIN)/python scripts/table.py suite-digits $(SMOKE_FLAG) $(ARGS)

suite-fmnist: setup ## every strategy x 3 seeds on Fashion-MNIST (Debian's dataset-fashion-mnist) -> results/fashion_mnist/
	$(BIN)/python scripts/table.py suite-fmnist $(SMOKE_FLAG) $(ARGS)

suite-fmnist-frozen: setup ## every strategy x 5 seeds on Fashion-MNIST, frozen EfficientNet-Lite0 features + linear head -> results/fashion_mnist_frozen/
	$(BIN)/python scripts/table.py suite-fmnist-frozen $(SMOKE_FLAG) $(ARGS)

suite-fmnist-realistic: setup ## 8 strategies x 3 seeds on Fashion-MNIST under imbalance (rho 10, 100), 20% label noise, 30% open set -> results/fashion_mnist_realistic/
	$(BIN)/python scripts/table.py suite-fmnist-realistic $(SMOKE_FLAG) $(ARGS)

table-svp: setup ## entropy, badge, vote_entropy selecting themselves vs through proxy=fewer_epochs / mlp_fewer_epochs x 3 seeds on digits -> results/svp/
	$(BIN)/python scripts/table.py svp $(SMOKE_FLAG) $(ARGS)

table-posterior-grid: setup ## bald, variation_ratio, vote_entropy x the 6 posterior sources x 3 seeds on digits -> results/posterior_grid/
	$(BIN)/python scripts/table.py posterior-grid $(SMOKE_FLAG) $(ARGS)

table-svp-fmnist: setup ## the SVP table on the Fashion-MNIST suite's protocol (LeNet, 100 + 100 x 9 labels) -> results/svp_fmnist/
	$(BIN)/python scripts/table.py svp-fmnist $(SMOKE_FLAG) $(ARGS)

table-posterior-grid-fmnist: setup ## the posterior grid on the Fashion-MNIST suite's protocol (LeNet, 100 + 100 x 9 labels) -> results/posterior_grid_fmnist/
	$(BIN)/python scripts/table.py posterior-grid-fmnist $(SMOKE_FLAG) $(ARGS)

table-dbal-digits: setup ## the DBAL protocol shape on digits, 5 seeds: labels needed for 90% / 95%
	$(BIN)/python scripts/table.py dbal-digits $(SMOKE_FLAG) $(ARGS)

table-dispersion table-isal table-ralif table-badge table-dbal table-ji table-batchbald: setup ## paper protocols (need the real datasets under data/; SMOKE=1: tiny files, seconds)
	$(BIN)/python scripts/table.py $(patsubst table-%,%,$@) $(SMOKE_FLAG) $(ARGS)

smoke-tables: setup ## every table above for 1 cycle of 1 epoch on tiny real-format files, in one process (CI)
	$(BIN)/python scripts/table.py $(TABLES) --smoke $(ARGS)

report: setup ## report of every run under results/runs (python -m al_bench.report)
	$(BIN)/python -m al_bench.report results/runs $(ARGS)

clean: ## remove raw runs and Hydra outputs (keeps committed reports)
	rm -rf outputs multirun results/runs results/sweeps
