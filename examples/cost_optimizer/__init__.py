"""Cost optimizer (seed 004): see README.md."""

from examples.cost_optimizer.scenario import EXAMPLE

__all__ = ["EXAMPLE"]
