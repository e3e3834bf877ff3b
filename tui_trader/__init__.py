"""tui-trader: a terminal console for MEXC USDT-margined perpetual futures."""

__version__ = "0.1.0"
