"""Business agent OS (seed 002): see README.md."""

from examples.business_os.scenario import EXAMPLE

__all__ = ["EXAMPLE"]
