"""Renderers: the same events as JSON lines, raw text or rich pretty output."""
