"""Widgets of the dashboard (the positions table)."""
