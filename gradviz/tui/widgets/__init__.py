"""The stepper's panes: graph, inspector, tape, status bar, findings."""
