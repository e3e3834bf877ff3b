"""Backtest layer: strategies over recorded candles through the paper-trading stack, metrics, sweeps."""
