"""The Python SDK: ``Client``, a synchronous HTTP client for an AgentOS server."""

from __future__ import annotations

from agentos.sdk.client import Client

__all__ = ["Client"]
