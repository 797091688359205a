"""The Python SDK: ``Client`` (blocking) and ``AsyncClient`` (asyncio), the same
methods on both, results as the models of ``agentos.api.schemas``."""

from __future__ import annotations

from agentos.sdk.aio import AsyncClient
from agentos.sdk.client import Client
from agentos.sdk.core import WaitTimedOut

__all__ = ["AsyncClient", "Client", "WaitTimedOut"]
