"""App layer: the Textual dashboard (the only package allowed to import Textual)."""
