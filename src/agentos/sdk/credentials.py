"""The credentials ``agentos login`` keeps: one token per server URL, in a file only
its owner can read (``$XDG_CONFIG_HOME/agentos/credentials.json``, mode 0600)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any


def path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "agentos" / "credentials.json"


def _read() -> dict[str, Any]:
    try:
        data = json.loads(path().read_text("utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _key(url: str) -> str:
    return url.rstrip("/")


def load(url: str) -> str | None:
    """The token stored for ``url``, if any."""
    entry = _read().get(_key(url))
    token = entry.get("token") if isinstance(entry, dict) else None
    return token if isinstance(token, str) else None


def save(url: str, token: str, **about: Any) -> Path:
    """Store ``token`` for ``url``; the file is created 0600 (and its folder 0700)."""
    data = _read()
    data[_key(url)] = {"token": token, **about}
    return _write(data)


def forget(url: str) -> bool:
    """Drop the token stored for ``url``; whether there was one."""
    data = _read()
    if data.pop(_key(url), None) is None:
        return False
    _write(data)
    return True


def _write(data: dict[str, Any]) -> Path:
    target = path()
    target.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temporary = target.with_suffix(".tmp")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as out:
        json.dump(data, out, indent=2)
    os.chmod(temporary, 0o600)  # an older file of that name may have kept wider rights
    os.replace(temporary, target)
    return target
