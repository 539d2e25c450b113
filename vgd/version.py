"""The version of vgd: one place, read by the package, the checkpoint writer and pyproject.toml."""

__version__ = "0.1.0"
