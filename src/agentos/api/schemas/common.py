"""What every resource model shares: the base class, the timestamp type, pages."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, ClassVar, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, PlainSerializer


class Model(BaseModel):
    """A resource as the API sends it; unknown fields are ignored (a newer server).
    Fields read as attributes (``task.status``) or, as in the JSON, by name
    (``task["status"]``), so code written against the SDK's earlier dict answers
    keeps working."""

    # a model's validator is built when first used, not when its module is imported: a
    # CLI call or an SDK client builds the few it reads (a server's route builds those it
    # names when FastAPI makes it, and the OpenAPI document is the same). Safe from
    # several threads at once with pydantic's rebuild lock, which 2.14.4 (pyproject's
    # floor) has
    model_config = ConfigDict(extra="ignore", defer_build=True)

    def __getitem__(self, key: str) -> Any:
        if key not in type(self).model_fields:
            raise KeyError(key)
        return getattr(self, key)

    def get(self, key: str, default: Any = None) -> Any:
        """The field ``key``, or ``default`` when the model has no such field."""
        return self[key] if key in type(self).model_fields else default


# ``datetime.isoformat()`` on the wire (``+00:00``), as every other answer writes times
Timestamp = Annotated[datetime, PlainSerializer(lambda moment: moment.isoformat(),
                                                return_type=str, when_used="json")]

Item = TypeVar("Item")


class Page(Model, Generic[Item]):
    """One page of a list route. Each list names its items after the resource
    (``{"tasks": [...]}``) and its cursor after what it pages by (``next_after``,
    ``next_before_seq``...): None on the last page, else the value to send back as
    the parameter ``CURSOR`` names. ``items()`` and ``next_params()`` read any page
    alike (the SDK's ``iterate`` follows them)."""

    ITEMS: ClassVar[str]  # the field holding the items
    CURSOR: ClassVar[tuple[str, str]]  # (the next-page field, the query parameter it feeds)

    def items(self) -> list[Item]:
        found: list[Item] = getattr(self, self.ITEMS)
        return found

    def next_params(self) -> dict[str, Any] | None:
        """The query parameters of the next page, or None after the last."""
        field, parameter = self.CURSOR
        value = getattr(self, field)
        return None if value is None else {parameter: value}

    @property
    def more(self) -> bool:
        """Whether more items follow this page."""
        return self.next_params() is not None


class SeqPage(Page[Item]):
    """A page of a list in sequence order (``next_after_seq``), or newest first with
    ``order=desc`` (``next_before_seq``): events, tasks."""

    next_after_seq: int | None = None
    next_before_seq: int | None = None

    def next_params(self) -> dict[str, Any] | None:
        if self.next_after_seq is not None:
            return {"after_seq": self.next_after_seq}
        if self.next_before_seq is not None:
            return {"before_seq": self.next_before_seq}
        return None
