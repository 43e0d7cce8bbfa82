"""The command line: click wiring only (options, help, choosing a renderer)."""
