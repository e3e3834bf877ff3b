"""Modal dialogs of the dashboard (confirmations)."""
