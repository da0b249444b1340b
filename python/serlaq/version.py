"""The package version, importable from any layer (the package root re-exports it)."""

__version__ = "0.1.0"
