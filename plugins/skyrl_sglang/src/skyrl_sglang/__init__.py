"""skyrl-sglang: the ``sglang`` inference backend over SGLang's offline engine.

Importing this package (and :mod:`skyrl_sglang.plugin`) imports neither SGLang nor torch: the engine is registered
as a ``"module:Class"`` string and loaded when a run uses it.
"""

#: The SGLang release this plugin is written against (``pip install "skyrl-sglang[engine]"`` installs it).
SGLANG_VERSION = "0.5.23"
