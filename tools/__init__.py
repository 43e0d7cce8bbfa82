"""Build-time tools for forgectl's source tree (not installed with the package)."""
