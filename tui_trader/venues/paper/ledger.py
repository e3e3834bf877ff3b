"""Venues layer: the paper account's books - cash, isolated positions, fees, funding. Exact Decimal.

Accounting identity (kept by every method, reconciled by tests to the cent):

    cash = starting balance + realised P&L - fees - funding
    equity = cash + unrealised P&L at the mark
    available = cash - position margin - margin frozen by open orders

Opening moves `notional / leverage` from available into the position's isolated margin and pays
the fee from cash. Reducing realises `sign * (exit - entry) * coins` and releases margin pro rata.
A liquidation loses the whole isolated margin: its realised P&L is `-margin` (the remaining
equity of the position is the exchange's, as on MEXC); no fee is charged on top.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from tui_trader.domain.errors import OrderRejected, PositionNotFound
from tui_trader.domain.liquidation import LiqForm, liquidation_price, maintenance_margin_rate
from tui_trader.domain.models import ZERO, Account, Instrument, MarginMode, Position, Side


class InsufficientBalance(OrderRejected):
    """Not enough available balance for the margin and fee (MEXC 2005)."""

    def __init__(self, message: str) -> None:
        super().__init__(message, code=2005)


@dataclass
class PaperPosition:
    symbol: str
    side: Side
    contracts: Decimal
    entry: Decimal
    leverage: int
    margin: Decimal
    opened_ms: int
    contract_size: Decimal
    liq: Decimal | None = None
    realized: Decimal = ZERO
    fees: Decimal = ZERO
    funding: Decimal = ZERO
    stop_loss: Decimal | None = None
    take_profit: Decimal | None = None
    tag: str = ""
    position_id: str = ""

    @property
    def coins(self) -> Decimal:
        return self.contracts * self.contract_size

    def upnl(self, mark: Decimal | None) -> Decimal:
        if mark is None:
            return ZERO
        return self.side.sign * (mark - self.entry) * self.coins


@dataclass
class Ledger:
    cash: Decimal
    liquidation_fee_rate: Decimal = Decimal("0.0006")
    positions: dict[tuple[str, Side], PaperPosition] = field(default_factory=dict)
    frozen: Decimal = ZERO
    fees_paid: Decimal = ZERO
    funding_paid: Decimal = ZERO
    realized: Decimal = ZERO
    starting_balance: Decimal = ZERO
    _next_id: int = 1

    def __post_init__(self) -> None:
        if not self.starting_balance:
            self.starting_balance = self.cash

    # --- queries --------------------------------------------------------------------------

    @property
    def position_margin(self) -> Decimal:
        return sum((p.margin for p in self.positions.values()), ZERO)

    @property
    def available(self) -> Decimal:
        return self.cash - self.position_margin - self.frozen

    def unrealized(self, marks: dict[str, Decimal]) -> Decimal:
        return sum((p.upnl(marks.get(p.symbol)) for p in self.positions.values()), ZERO)

    def account(self, marks: dict[str, Decimal]) -> Account:
        return Account("USDT", self.cash, self.position_margin, self.frozen, self.unrealized(marks))

    def position(self, symbol: str, side: Side) -> PaperPosition | None:
        return self.positions.get((symbol, side))

    def snapshot(self, p: PaperPosition, mark: Decimal | None, ts_ms: int, flat: bool = False) -> Position:
        """Domain view of a paper position (contracts 0 when it just went flat)."""
        return Position(
            symbol=p.symbol, side=p.side, contracts=ZERO if flat else p.contracts, contract_size=p.contract_size,
            entry_price=p.entry, leverage=p.leverage, margin_mode=MarginMode.ISOLATED, margin=ZERO if flat else p.margin,
            liquidation_price=p.liq, mark_price=mark, realized_pnl=p.realized, position_id=p.position_id,  # type: ignore[arg-type]
            opened_ms=p.opened_ms, updated_ms=ts_ms, tag=p.tag,
        )

    # --- changes --------------------------------------------------------------------------

    def open(self, instr: Instrument, side: Side, contracts: Decimal, price: Decimal, leverage: int,
             fee_rate: Decimal, ts_ms: int, tag: str = "") -> tuple[PaperPosition, Decimal]:
        """Open or add to the isolated position; returns it and the fee paid."""
        notional = contracts * instr.contract_size * price
        margin = notional / Decimal(leverage)
        fee = notional * fee_rate
        if margin + fee > self.available:
            raise InsufficientBalance(f"needs {margin + fee:.4f} USDT margin+fee, {self.available:.4f} available")
        pos = self.positions.get((instr.symbol, side))
        if pos is None:
            pos = PaperPosition(instr.symbol, side, contracts, price, leverage, margin, ts_ms, instr.contract_size,
                                tag=tag, position_id=f"P{self._next_id}")
            self._next_id += 1
            self.positions[(instr.symbol, side)] = pos
        else:
            if pos.leverage != leverage:
                raise OrderRejected(f"leverage {leverage} differs from the open position's {pos.leverage}", code=2021)
            total = pos.contracts + contracts
            pos.entry = (pos.entry * pos.contracts + price * contracts) / total
            pos.contracts = total
            pos.margin += margin
        pos.fees += fee
        self.cash -= fee
        self.fees_paid += fee
        self._update_liq(pos, instr)
        return pos, fee

    def reduce(self, instr: Instrument, side: Side, contracts: Decimal, price: Decimal, fee_rate: Decimal) -> tuple[PaperPosition, Decimal, Decimal, Decimal, bool]:
        """Reduce (never flip) the position by at most its size.

        Returns the position, contracts actually closed, realised P&L, fee, and whether it is now flat.
        """
        pos = self.positions.get((instr.symbol, side))
        if pos is None or pos.contracts <= 0:
            raise PositionNotFound(f"no {side.value} position on {instr.symbol}", code=2009)
        qty = min(contracts, pos.contracts)
        coins = qty * instr.contract_size
        realized = side.sign * (price - pos.entry) * coins
        fee = coins * price * fee_rate
        released = pos.margin * qty / pos.contracts
        pos.margin -= released
        pos.contracts -= qty
        pos.realized += realized
        pos.fees += fee
        self.cash += realized - fee
        self.realized += realized
        self.fees_paid += fee
        flat = pos.contracts <= 0
        if flat:
            del self.positions[(instr.symbol, side)]
        else:
            self._update_liq(pos, instr)
        return pos, qty, realized, fee, flat

    def liquidate(self, symbol: str, side: Side) -> tuple[PaperPosition, Decimal]:
        """Remove the position, losing its isolated margin; returns it and the loss (as realised P&L)."""
        pos = self.positions.pop((symbol, side))
        loss = -pos.margin
        pos.realized += loss
        self.cash += loss
        self.realized += loss
        pos.margin = ZERO
        return pos, loss

    def charge_funding(self, symbol: str, mark: Decimal, rate: Decimal) -> list[tuple[PaperPosition, Decimal]]:
        """Funding on every position of `symbol`: value x rate; longs pay shorts when the rate is positive."""
        out = []
        for pos in [p for p in self.positions.values() if p.symbol == symbol]:
            amount = pos.side.sign * pos.coins * mark * rate  # > 0 = paid by this account
            pos.funding += amount
            self.cash -= amount
            self.funding_paid += amount
            out.append((pos, amount))
        return out

    def _update_liq(self, pos: PaperPosition, instr: Instrument) -> None:
        mmr = maintenance_margin_rate(instr, pos.contracts)
        pos.liq = liquidation_price(pos.side, pos.entry, pos.coins, pos.margin, mmr, self.liquidation_fee_rate, LiqForm.CONSERVATIVE)
