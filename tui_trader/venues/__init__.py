"""Venues layer: everything that talks to a market - MEXC, the paper venue, recorded data replay."""
