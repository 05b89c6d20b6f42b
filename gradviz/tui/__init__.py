"""The stepper's terminal UI (`gradviz step`). Only its screens, widgets and app import
textual; its logic (timeline, scene, drawing, picture, inspector_text, actions) does not,
so tests and benchmarks use it directly and the rest of gradviz starts without textual."""
