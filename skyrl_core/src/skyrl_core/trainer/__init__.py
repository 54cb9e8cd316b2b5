"""The RL training loop on Ray."""
