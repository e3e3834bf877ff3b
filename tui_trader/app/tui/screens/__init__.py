"""The dashboard's screens: positions (default), paper sessions, backtests, event log, help."""
