"""The stepper in a browser: a self-contained HTML page (`export --html`) and the terminal app served (`step --serve`)."""
