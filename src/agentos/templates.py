"""The starter agent definitions shipped in the package."""

from __future__ import annotations

from importlib import resources

from agentos.errors import NotFound


def names() -> list[str]:
    folder = resources.files("agentos").joinpath("templates")
    return sorted(p.name.removesuffix(".yaml") for p in folder.iterdir()
                  if p.name.endswith(".yaml"))


def read(name: str) -> str:
    if name not in names():
        raise NotFound(f"no template named {name} (have: {', '.join(names())})",
                       code="template_not_found")
    return resources.files("agentos").joinpath("templates", f"{name}.yaml").read_text("utf-8")
