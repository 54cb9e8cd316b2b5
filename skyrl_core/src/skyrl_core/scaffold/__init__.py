"""``skyrl new``: generate plugin packages from templates (``skyrl new env NAME``)."""

from skyrl_core.scaffold.generator import EnvNames, generate_env, render_env, validate_name

__all__ = ["EnvNames", "generate_env", "render_env", "validate_name"]
