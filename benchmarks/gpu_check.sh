#!/usr/bin/env bash
# GPU checks: the tests marked `gpu` of the engine backends, on one CUDA GPU, in under 8 minutes.
#
# vLLM and SGLang pin different torch versions, so each backend runs in a virtual environment of its own, made on
# first use next to the workspace: .venv-vllm (skyrl-core + skyrl-vllm[engine]) and .venv-sglang (skyrl-core +
# skyrl-sglang[engine]). Usage: bash benchmarks/gpu_check.sh [vllm|sglang ...]   (default: both)
set -euo pipefail
cd "$(dirname "$0")/.."
backends=("${@:-vllm sglang}")
read -r -a backends <<<"${backends[*]}"
status=0
for backend in "${backends[@]}"; do
  venv=".venv-${backend}"
  if [[ ! -x "${venv}/bin/python" ]]; then
    python3 -m venv "${venv}"
    "${venv}/bin/pip" install -q --upgrade pip
    # The engine extra brings the CUDA torch the engine pins; skyrl-core takes that torch as it is.
    "${venv}/bin/pip" install -q -e "./plugins/skyrl_${backend}[engine]" -e ./skyrl_core pytest pytest-timeout
  fi
  echo "== ${backend}: $("${venv}/bin/python" -c "import importlib.metadata as m; print('${backend}', m.version('${backend}'), 'torch', m.version('torch'))")"
  timeout 420 "${venv}/bin/python" -m pytest -q -m gpu -p no:cacheprovider --timeout=400 \
    "plugins/skyrl_${backend}/tests" || status=1
done
exit "${status}"
