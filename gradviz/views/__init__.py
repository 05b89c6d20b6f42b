"""Views of a Trace: rich text for the terminal, JSON for other tools."""
