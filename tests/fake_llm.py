"""The OpenAI-compatible server the suite talks to instead of an LLM provider: the one
outside service it fakes. It ships with the examples (``examples/simulators/llm.py``),
whose demos use it when no real endpoint is configured; see there for its answers."""

from examples.simulators.llm import DIMENSIONS, SYNONYMS, USAGE, FakeLlm, embedding

__all__ = ["DIMENSIONS", "SYNONYMS", "USAGE", "FakeLlm", "embedding"]
