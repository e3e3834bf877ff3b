"""`python -m tui_trader` runs the same entry point as the `tui-trader` script."""

from tui_trader.app.cli import main

raise SystemExit(main())
