"""The stepper's screens: the stepper itself, help, and jump-to-node."""
