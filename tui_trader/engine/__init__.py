"""Engine layer: event bus, clock, core task supervision, risk, watchdog, execution. No Textual, no I/O libraries."""
