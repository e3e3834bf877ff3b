"""Domain layer: the 5-section strategy - file schema, condition evaluation, state machine."""

DEFAULT_STRATEGY_NAME = "pump_short"
DEFAULT_STRATEGY_FILE = "pump_short.toml"
