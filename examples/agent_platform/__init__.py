"""Agent platform store (seed 001): see README.md."""

from examples.agent_platform.scenario import EXAMPLE

__all__ = ["EXAMPLE"]
