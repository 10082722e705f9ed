"""Maintainer tooling for the TinyTorch repository (not part of the package)."""
