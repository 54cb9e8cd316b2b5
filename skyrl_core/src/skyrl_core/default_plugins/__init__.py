"""Built-in plugins of skyrl-core; they register through the same hooks as any installed plugin."""
