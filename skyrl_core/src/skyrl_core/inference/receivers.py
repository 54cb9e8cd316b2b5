"""Building an engine's weight receivers from the transport named in the sync's init info."""

from __future__ import annotations

from skyrl_core.weight_sync.base import WeightReceiver, WeightSyncInitInfo

#: The key of ``WeightSyncInitInfo.extra`` under which the engine actor passes the ``generator.<transport>`` section.
TRANSPORT_CONFIG_KEY = "transport_config"


def build_receiver(info: WeightSyncInitInfo, rank: int) -> WeightReceiver:
    """The receiver of transport ``info.transport`` (registered under ``weight_sync_backends`` in this process's
    plugin manager) for ``rank``, built as ``receiver_cls(config=..., init_info=info, rank=rank)``; not connected."""
    from skyrl_core.plugins import get_plugin_manager

    transport = get_plugin_manager().registry("weight_sync_backends")[info.transport]
    return transport.receiver_cls(config=info.extra.get(TRANSPORT_CONFIG_KEY), init_info=info, rank=rank)
