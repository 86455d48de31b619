"""Presentation: display names, formats and notes, figures, overlays, summaries, the report."""
