#!/usr/bin/env bash
# GPU checks on one CUDA GPU (or two), in under 8 minutes.
# Usage: bash benchmarks/gpu_check.sh [components|vllm|sglang ...] (default: all three).
# Every part prints what it ran; the exit status is 1 if any part failed.
#
# components: benchmarks/gpu_components.py, without Ray (FSDP2 and DeepSpeed steps on CUDA with NCCL, weight transfer
#   between two plain processes, `hf` generation on CUDA; PASS/FAIL/SKIP per check), then the `gpu`-marked tests of
#   skyrl-core, skyrl-fsdp and skyrl-deepspeed when those are installed. The interpreter is $PYTHON, else .venv/bin/python
#   when it exists, else python3: a bare machine needs only torch with CUDA and transformers (attrs and pluggy, pure
#   Python, are pip-installed if missing; the repository's packages are used from their src folders).
# vllm, sglang: the `gpu`-marked tests of each engine backend. The two pin different torch versions, so each runs in a
#   virtual environment of its own, made on first use next to the workspace: .venv-vllm (skyrl-core +
#   skyrl-vllm[engine]) and .venv-sglang (skyrl-core + skyrl-sglang[engine]).
set -euo pipefail
cd "$(dirname "$0")/.."
parts=("${@:-components vllm sglang}")
read -r -a parts <<<"${parts[*]}"
status=0

run_components() {
  local py="${PYTHON:-}"
  if [[ -z "${py}" ]]; then
    if [[ -x .venv/bin/python ]]; then py=.venv/bin/python; else py=python3; fi
  fi
  "${py}" -c "import attrs, pluggy" 2>/dev/null || "${py}" -m pip install -q attrs pluggy
  echo "== components: $("${py}" -c "import torch, transformers; print('torch', torch.__version__, 'CUDA', torch.version.cuda, 'GPUs', torch.cuda.device_count(), 'transformers', transformers.__version__)")"
  timeout 300 "${py}" benchmarks/gpu_components.py || status=1
  local files=()
  for dist_and_file in skyrl-core:tests/test_workers_and_sync.py skyrl-fsdp:plugins/skyrl_fsdp/tests/test_fsdp_gpu.py \
      skyrl-deepspeed:plugins/skyrl_deepspeed/tests/test_deepspeed_gpu.py; do
    if "${py}" -c "import importlib.metadata as m, pytest; m.version('${dist_and_file%%:*}')" 2>/dev/null; then
      files+=("${dist_and_file#*:}")
    else
      echo "SKIP ${dist_and_file#*:}: ${dist_and_file%%:*} or pytest is not installed for ${py} (make setup installs both)"
    fi
  done
  if [[ ${#files[@]} -gt 0 ]]; then
    timeout 300 "${py}" -m pytest -q -m gpu -p no:cacheprovider --timeout=280 "${files[@]}" || status=1
  fi
}

run_backend() {
  local backend="$1" venv=".venv-$1"
  if [[ ! -x "${venv}/bin/python" ]]; then
    python3 -m venv "${venv}"
    "${venv}/bin/pip" install -q --upgrade pip
    # The engine extra brings the CUDA torch the engine pins; skyrl-core takes that torch as it is.
    "${venv}/bin/pip" install -q -e "./plugins/skyrl_${backend}[engine]" -e ./skyrl_core pytest pytest-timeout
  fi
  echo "== ${backend}: $("${venv}/bin/python" -c "import importlib.metadata as m; print('${backend}', m.version('${backend}'), 'torch', m.version('torch'))")"
  timeout 420 "${venv}/bin/python" -m pytest -q -m gpu -p no:cacheprovider --timeout=400 \
    "plugins/skyrl_${backend}/tests" || status=1
}

for part in "${parts[@]}"; do
  case "${part}" in
    components) run_components ;;
    vllm|sglang) run_backend "${part}" ;;
    *) echo "unknown part '${part}': use components, vllm or sglang" >&2; exit 2 ;;
  esac
done
exit "${status}"
