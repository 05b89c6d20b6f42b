"""The stepper's terminal UI. Only this package imports textual (and not its textual-free
helpers: timeline, picture, node_text), so the rest of gradviz starts without it."""
