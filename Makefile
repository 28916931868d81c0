# The two entry points the README opens with. Both set up .venv first (only when needed).
export HF_HUB_OFFLINE := 1
export FLWR_TELEMETRY_ENABLED := 0
export FLWR_DISABLE_RUNTIME_DEPENDENCY_INSTALLATION := 1
export FLWR_DISABLE_UPDATE_CHECK := 1

.PHONY: setup demo test lint
setup:
	@bash scripts/setup.sh

demo: setup
	.venv/bin/fedlingua compare --config configs/demo.toml

test: setup
	OMP_NUM_THREADS=1 .venv/bin/python -m ruff check src tests benchmarks
	OMP_NUM_THREADS=1 .venv/bin/python -m pytest -q

lint: setup
	.venv/bin/python -m ruff check src tests benchmarks
	.venv/bin/python -m ruff format --check src tests benchmarks
