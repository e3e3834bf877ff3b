"""Venues layer: the paper venue - a simulated MEXC futures account (fills, fees, funding, liquidation)."""
