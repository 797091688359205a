"""A process's cache for hot reads: agent definitions, latest versions, deployed models,
and whatever else registers a kind (config overrides, capability switches).

    value = await cache.of(store).get("agent", key, load)   # load() on a miss
    await cache.changed(store, conn)                         # in a write transaction

Freshness. A write transaction that changes a cached thing calls ``changed``: when
it commits, this process's cache is emptied at once (before the writer's next
statement runs), so no reader here sees a value older than its own last write;
a load that began before the commit does not store what it read. Other processes
learn of it on ``CHANNEL`` (PostgreSQL NOTIFY; on a SQLite file, the wake-up
sockets of ``store.sqlite_wakes``), and through Redis pub/sub when
``AGENTOS_REDIS_URL`` is set (``start``), within milliseconds. Every entry also
lives at most ``ttl_s``: one second unless such a channel is up (then a minute, a
safety net for a lost notification), so processes that no notification reaches
still converge within a second. A change empties the whole cache: writes
to these things are rare, reads are what the cache is for.

Hits and misses are counted per kind (``counters``) for /metrics.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
import weakref
from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncConnection

from agentos.aio import wait_wakeup
from agentos.config import Settings
from agentos.store import Store

log = logging.getLogger("agentos.cache")

CHANNEL = "agentos_cache"  # notified by every commit that changed something cached
SHORT_TTL = 1.0  # seconds an entry lives when no other process can tell us of a change
LONG_TTL = 60.0  # seconds an entry lives while NOTIFY or Redis tells us of changes
REDIS_RETRY = 1.0  # seconds between reconnects to Redis
MAX_ENTRIES = 10_000  # past this the cache starts over (a bound, not an eviction policy)

T = TypeVar("T")


class Cache:
    """The cache of one store in this process (``of(store)``)."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.enabled = True
        self.ttl_s: float | None = None  # None: SHORT_TTL or LONG_TTL, as channels allow
        self.hits: Counter[str] = Counter()
        self.misses: Counter[str] = Counter()
        self._entries: dict[tuple[str, str], tuple[Any, float]] = {}
        self._generation = 0  # grows with every change: a load that spans one is not kept
        self._changed = store.wakeup(CHANNEL)  # set by commits here and notifications
        self._relay: _RedisRelay | None = None

    # -- reads ----------------------------------------------------------

    async def get(self, kind: str, key: str, load: Callable[[], Awaitable[T]]) -> T:
        """The cached value of (kind, key), else ``load()``'s (kept unless a change
        committed meanwhile). A load that raises is not cached."""
        if not self.enabled:
            return await load()
        self._catch_up()
        entry = self._entries.get((kind, key))
        if entry is not None and entry[1] > time.monotonic():
            self.hits[kind] += 1
            value: T = entry[0]
            return value
        self.misses[kind] += 1
        generation = self._generation
        value = await load()
        self._catch_up()
        if generation == self._generation:
            if len(self._entries) >= MAX_ENTRIES:
                self._entries.clear()
            self._entries[(kind, key)] = (value, time.monotonic() + self.ttl())
        return value

    def ttl(self) -> float:
        if self.ttl_s is not None:
            return self.ttl_s
        told = CHANNEL in self.store.listening or (self._relay is not None and self._relay.live)
        return LONG_TTL if told else SHORT_TTL

    def clear(self) -> None:
        """Forget every entry (what a change does)."""
        self._entries.clear()
        self._generation += 1

    def _catch_up(self) -> None:
        if self._changed.is_set():  # a commit here or elsewhere changed something
            self._changed.clear()
            self.clear()

    def counters(self) -> dict[str, dict[str, int]]:
        """Hits and misses by kind since the process started."""
        return {kind: {"hits": self.hits[kind], "misses": self.misses[kind]}
                for kind in sorted(set(self.hits) | set(self.misses))}

    # -- cross-process --------------------------------------------------

    async def start(self, redis_url: str | None = None) -> None:
        """Relay changes through Redis pub/sub as well (NOTIFY needs nothing started
        here: the process's LISTEN connection includes ``CHANNEL``)."""
        if redis_url and self._relay is None:
            self._relay = _RedisRelay(self, redis_url)
            await self._relay.start()

    async def stop(self) -> None:
        if self._relay is not None:
            await self._relay.stop()
            self._relay = None


_caches: weakref.WeakKeyDictionary[Store, Cache] = weakref.WeakKeyDictionary()


def of(store: Store) -> Cache:
    """This process's cache of ``store``."""
    found = _caches.get(store)
    if found is None:
        found = _caches[store] = Cache(store)
    return found


async def changed(store: Store, conn: AsyncConnection) -> None:
    """Call in a write transaction that changes something cached: every process's
    cache forgets it once the transaction commits."""
    relay = of(store)._relay
    await store.notify(conn, CHANNEL)
    if relay is not None:  # wakes this process's publisher only (no NOTIFY is sent)
        await store.notify(conn, relay.committed_channel, sent=True)


async def start(store: Store, settings: Settings) -> Cache:
    """Configure this process's cache of ``store`` from the settings (on or off, the
    TTL, the Redis relay) and start the relay; ``stop`` at shutdown."""
    cache = of(store)
    cache.enabled = settings.cache_enabled
    cache.ttl_s = settings.cache_ttl_s
    await cache.start(settings.redis_url)
    return cache


async def stop(store: Store) -> None:
    await of(store).stop()


def counters() -> dict[str, dict[str, int]]:
    """Hits and misses by kind, over every store of this process."""
    total: dict[str, Counter[str]] = {}
    for cache in list(_caches.values()):
        for kind, figures in cache.counters().items():
            total.setdefault(kind, Counter()).update(figures)
    return {kind: dict(figures) for kind, figures in sorted(total.items())}


class _RedisRelay:
    """Publishes this process's committed changes on Redis and clears the cache on
    other processes' (each message names its sender, which ignores its own)."""

    def __init__(self, cache: Cache, url: str) -> None:
        self.cache = cache
        self.url = url
        self.live = False  # subscribed: other processes' changes reach us
        self.sender = f"{os.getpid()}-{os.urandom(4).hex()}"
        # woken by this process's commits that called changed(), never by other processes
        self.committed_channel = f"{CHANNEL}_{self.sender}"
        self._committed = cache.store.wakeup(self.committed_channel)
        self._tasks: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        import redis.asyncio as redis

        self._client = redis.Redis.from_url(self.url)
        self._tasks = [asyncio.create_task(self._subscribe(), name="cache-redis-in"),
                       asyncio.create_task(self._publish(), name="cache-redis-out")]

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks = []
        await self._client.aclose()
        self.cache.store.forget_wakeup(self.committed_channel, self._committed)
        self.live = False

    async def _publish(self) -> None:
        while True:
            await wait_wakeup(self._committed, LONG_TTL)
            if not self._committed.is_set():
                continue
            self._committed.clear()
            try:
                await self._client.publish(CHANNEL, self.sender)
            except Exception as exc:  # others converge within their short TTL
                log.warning("cache change not published on Redis: %s", exc,
                            extra={"action": "cache_publish_failed"})

    async def _subscribe(self) -> None:
        while True:
            try:
                async with self._client.pubsub() as pubsub:
                    await pubsub.subscribe(CHANNEL)
                    self.live = True
                    self.cache.clear()  # whatever changed while we were not listening
                    async for message in pubsub.listen():
                        if message.get("type") == "message" and \
                                message.get("data") != self.sender.encode():
                            self.cache._changed.set()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                log.warning("Redis subscription lost: %s", exc,
                            extra={"action": "cache_redis_lost"})
            finally:
                self.live = False
            await asyncio.sleep(REDIS_RETRY)
