"""Venues layer: the MEXC USDT-M futures client, its WebSocket feeds and the `MexcVenue` adapter.

Split one file per concern (see docs/style): constants, auth, errors, web_utils, rest, breaker,
client, parse, validation, ws_session, ws_public, ws_private, venue.
"""
