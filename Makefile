# skyrl: the README's two commands are `make demo` and `make test`; both set everything up first.
# `make smoke` is the seconds-long pipeline run on a tiny random model.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
# torch goes first and pinned: an unpinned torch pulls a multi-GB CUDA build. Override on GPU machines.
TORCH_SPEC ?= torch==2.13.0
DISTS := skyrl_core skyrl_env_multiply skyrl_env_gsm8k skyrl_algo_dapo \
	plugins/skyrl_fsdp plugins/skyrl_deepspeed plugins/skyrl_vllm plugins/skyrl_sglang
STAMP := $(VENV)/.skyrl-setup
DEMO_DIR ?= demo_out
SMOKE_DIR ?= smoke_out

.PHONY: setup test demo smoke lint docs clean

setup: $(STAMP)

$(STAMP): Makefile requirements-dev.txt $(foreach d,$(DISTS),$(d)/pyproject.toml)
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade "pip>=24" "setuptools>=68" wheel
	$(PIP) install -q "$(TORCH_SPEC)"
	$(PIP) install -q --no-build-isolation $(foreach d,$(DISTS),-e ./$(d)) -r requirements-dev.txt
	touch $(STAMP)

test: setup
	SKYRL_STRICT_PLUGINS=1 WANDB_MODE=disabled $(PY) -m pytest

demo: setup
	WANDB_MODE=disabled bash scripts/demo.sh $(DEMO_DIR)

smoke: setup
	WANDB_MODE=disabled bash scripts/smoke.sh $(SMOKE_DIR)

lint: setup
	$(VENV)/bin/ruff check .

docs: setup
	$(PY) -m skyrl_core.config.docs > docs/config.md

clean:
	rm -rf $(VENV) $(DEMO_DIR) $(SMOKE_DIR)
