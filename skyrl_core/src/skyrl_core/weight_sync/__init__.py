"""Weight sync: moving the policy's new weights into the inference engines after each step."""

from skyrl_core.weight_sync.base import WeightSpec, WeightSyncBackend

__all__ = ["WeightSpec", "WeightSyncBackend"]
