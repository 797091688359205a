"""Named durable subscriptions: a type glob and a cursor the consumer moves."""

from __future__ import annotations

from agentos.api.schemas.common import Model, Page, Timestamp


class Subscription(Model):
    name: str
    type: str  # the event-type glob it receives
    cursor_seq: int  # the last event acknowledged
    created_at: Timestamp
    acked_at: Timestamp | None
    head_seq: int | None = None  # the log's head when read (how far behind it is)


class SubscriptionPage(Page[Subscription]):
    ITEMS = "subscriptions"
    CURSOR = ("next_after", "after")
    subscriptions: list[Subscription]
    next_after: str | None = None
