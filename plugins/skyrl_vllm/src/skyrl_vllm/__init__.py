"""skyrl-vllm: the ``vllm`` inference backend and the ``cuda_ipc`` weight-sync transport.

Importing this package (and :mod:`skyrl_vllm.plugin`) imports neither vLLM nor torch: the engine and the
transport are registered as ``"module:Class"`` strings and loaded when a run uses them.
"""

#: The vLLM release this plugin is written against (``pip install "skyrl-vllm[engine]"`` installs it).
VLLM_VERSION = "0.32.0"
