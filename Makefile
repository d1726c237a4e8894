# Two commands matter: `make demo` (the first run: an INN and a classical AE trained on the embedded
# digits data, analysed and compared, in a few minutes) and `make test`. `make demo-zoo` tours every family.
# Both create or reuse .venv and install the pinned, tested environment from constraints.txt.
# `pip install torch==2.13.0` first: on a machine without CUDA it takes the CPU build, and
# with torch already satisfied the range in pyproject.toml never pulls a CUDA build.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
DEMO_OUT ?= demo-output
DEMO_ZOO_OUT ?= demo-zoo-output
TORCH_CPU_INDEX ?= https://download.pytorch.org/whl/cpu

.PHONY: install demo demo-zoo test test-fast bench gpu-check reproduce-gpu lint clean

install: $(STAMP)

$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade "pip>=23.2"
	@# torch first, never a CUDA build on a machine without CUDA: a local wheel if pip's
	@# find-links has one, else the CPU index when there is no GPU, else the default index.
	$(PY) -m pip install --quiet --no-index --no-deps "torch==2.13.0" 2>/dev/null \
	  || { command -v nvidia-smi >/dev/null 2>&1 \
	       && $(PY) -m pip install --quiet -c constraints.txt "torch==2.13.0" \
	       || $(PY) -m pip install --quiet -c constraints.txt "torch==2.13.0" --index-url $(TORCH_CPU_INDEX); }
	$(PY) -m pip install --quiet -c constraints.txt "torch==2.13.0" -e ".[test,dev]"
	$(PY) -c "import torch, FrEIA, infoprobe, models; print('installed torch', torch.__version__, 'infoprobe', infoprobe.__version__)"
	touch $(STAMP)

demo: $(STAMP)
	$(PY) analyses/demo.py --out $(DEMO_OUT)

demo-zoo: $(STAMP)
	$(PY) analyses/demo_zoo.py --out $(DEMO_ZOO_OUT)

test: $(STAMP)
	$(PY) -m pytest -q

test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not slow"

bench: $(STAMP)
	$(PY) benchmarks/run_all.py

# On a GPU machine (README "On a GPU"). GPU_CHECK_ARGS="--device cpu --tiny" is the CPU dry run.
GPU_CHECK_ARGS ?=
gpu-check: $(STAMP)
	$(PY) benchmarks/gpu_check.py $(GPU_CHECK_ARGS)

# Full-scale training + analyses; resumable. REPRODUCE_ARGS="--dry-run" prints the commands.
REPRODUCE_ARGS ?=
reproduce-gpu: $(STAMP)
	$(PY) benchmarks/reproduce_gpu.py $(REPRODUCE_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check infoprobe models analyses benchmarks tests
	$(VENV)/bin/mypy infoprobe models

clean:
	rm -rf $(VENV) $(DEMO_OUT) $(DEMO_ZOO_OUT) .pytest_cache .ruff_cache .mypy_cache
