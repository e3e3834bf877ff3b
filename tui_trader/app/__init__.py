"""App layer: command line, settings loading, wiring, headless runner and the Textual dashboard."""
