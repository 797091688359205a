"""QA fleet (seed 000): see README.md."""

from examples.qa_fleet.scenario import EXAMPLE

__all__ = ["EXAMPLE"]
