"""Weight sync: streaming the policy's new weights into the inference engines after each step.

The interface (:class:`WeightTransport`, :class:`WeightSender`, :class:`WeightReceiver`, :class:`WeightChunk`,
:class:`WeightUpdateRequest`, :class:`WeightSyncInitInfo`) lives in :mod:`skyrl_core.weight_sync.base` (imported
on first use here, so that the config classes of this package load without torch).
"""

from typing import Any

__all__ = ["WeightChunk", "WeightReceiver", "WeightSender", "WeightSyncInitInfo", "WeightTransport",
           "WeightUpdateRequest"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from skyrl_core.weight_sync import base

        return getattr(base, name)
    raise AttributeError(name)
