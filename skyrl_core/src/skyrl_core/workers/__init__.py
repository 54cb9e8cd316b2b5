"""Ray worker groups: training workers (policy, ref, critic) and inference engine actors."""
