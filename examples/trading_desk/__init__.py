"""Trading desk (seed 003): see README.md."""

from examples.trading_desk.scenario import EXAMPLE

__all__ = ["EXAMPLE"]
