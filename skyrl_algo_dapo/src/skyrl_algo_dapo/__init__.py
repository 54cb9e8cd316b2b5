"""DAPO (Yu et al. 2025, "DAPO: An Open-Source LLM Reinforcement Learning System at Scale") for skyrl.

``skyrl run --algo dapo`` selects the preset :data:`skyrl_algo_dapo.preset.DAPO`; its keys live in
``trainer.algorithm.presets.dapo`` (:class:`skyrl_algo_dapo.config.DapoConfig`). This module imports nothing heavy.
"""
