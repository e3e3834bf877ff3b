"""Backtest tests."""
