"""Can this process load an agent version's handler? What an import or a publish
warns about, without refusing: the server may lack what a worker has (its
``PYTHONPATH``, the program a ``command`` runs), and a worker that cannot load a
handler leaves its tasks to one that can (``worker.loop``)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any

from agentos.registry import AgentVersion
from agentos.worker import handlers


def load_error(definition: dict[str, Any]) -> str | None:
    """Why the handler of ``definition`` cannot be loaded here, or None."""
    try:
        handlers.load(definition)
    except Exception as exc:  # an import error, a missing program, anything it raises
        return f"{type(exc).__name__}: {exc}"
    return None


async def warnings(versions: Iterable[AgentVersion]) -> list[dict[str, str]]:
    """A ``handler_unloadable`` warning for each version whose handler this server
    cannot load (imported in a thread: a module's import may take its time)."""
    out = []
    for version in versions:
        why = await asyncio.to_thread(load_error, version.definition)
        if why is not None:
            out.append({"name": version.name, "version": version.version,
                        "code": "handler_unloadable",
                        "message": f"this server cannot load the handler ({why}); its tasks "
                                   "wait for a worker that can (PYTHONPATH, the program "
                                   "installed)"})
    return out
