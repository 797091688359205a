"""The storage seam: one ``Store`` owns the engine, transactions and driver errors.

Domain modules take a ``Store`` and run their own SQLAlchemy Core statements in
``store.read()`` or ``store.write()``. The SQLite and PostgreSQL subclasses
override only what truly differs: URLs, connection setup, how a write
transaction begins, and how driver errors become domain errors.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager, contextmanager
from typing import TYPE_CHECKING, Any, ClassVar

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError, PendingRollbackError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from agentos.errors import AgentOSError
from agentos.store import errors

if TYPE_CHECKING:
    from agentos.store.events import Events
    from agentos.store.locks import Locks
    from agentos.store.routes import Routes
    from agentos.store.tasks import Tasks

log = logging.getLogger("agentos.store")
# work a before-commit hook does on the driver connection, inside its transaction
DriverWork = Callable[[Any], Awaitable[None]]
# a before-commit hook's form for driver blocks (``Store.driver(hooked=True)``): asked
# as the block begins, it answers the work to run at the block's end, or None
DriverHook = Callable[[], DriverWork | None]
# a folding block's offer (``Store.folding``): the parameters its one statement sends to
# do the hooks' work itself (the audit row's, ``store.audit.fragment``), or None: none due
Fold = Callable[[], dict[str, Any] | None]


class Foldable(ABC):
    """Driver work one statement can carry instead (``Store.folding``). An ABC, not a
    runtime-checkable Protocol: ``folding`` asks ``isinstance`` on every audited or hot
    write, and a Protocol's check looks up each member (12 µs a check here, 0.2 with an
    ABC; once a lock's acquire, once its release)."""

    @abstractmethod
    async def __call__(self, db: Any) -> None: ...

    @abstractmethod
    def fold(self) -> dict[str, Any] | None:
        """The parameters of the statement's part that does this work (None: none due);
        the work is the statement's from then on."""

    @abstractmethod
    def unfold(self) -> None:
        """The statement that took the work did not do it (it changed nothing, or the
        database refused it): the work is due again."""


UNCHANGED = "agentos_unchanged"  # conn.info key: the transaction changed nothing worth a record
# a driver block that changed nothing (``Store.nothing_changed`` given its driver
# connection): its hooks do not run, as an UNCHANGED transaction leaves no audit row
_block_unchanged: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "agentos_driver_block_unchanged", default=False)
NOTIFIED = "agentos_notified"  # conn.info key: the channels the transaction notifies


class Wakeup(asyncio.Event):
    """A wake-up (``Store.wakeup``) with the payloads of the notifications that set it,
    at most ``MAX_NOTES`` between two ``clear`` calls (a dropped note is only a hint
    lost: its owner reads the database instead). ``bare``: since the last ``clear`` it
    was also set with no note, or a note was dropped (a commit in this process that
    named nothing, a LISTEN connection that came back), so ``notes`` alone may not say
    what changed."""

    MAX_NOTES = 64

    def __init__(self) -> None:
        super().__init__()
        self.notes: list[str] = []
        self.bare = False

    def clear(self) -> None:
        super().clear()
        self.notes.clear()
        self.bare = False


@asynccontextmanager
async def committed(engine: AsyncEngine) -> AsyncIterator[AsyncConnection]:
    """``engine.begin()``'s block, a few event loop rounds cheaper where it commits.
    SQLAlchemy closes a connection in a task of its own, so that a cancellation cannot
    cut the close short; waiting for that task costs its caller three rounds of the
    event loop, each a whole round on a busy server (a router batch: 3 of its 14).
    After a commit the close does no I/O: the pool's reset finds nothing to roll back
    (psycopg may still yield to the loop once, and a cancellation landing there makes
    the pool drop the connection and keep its slot free), so it is closed in place.
    After an error (a rollback may wait for the server) SQLAlchemy's own exit closes
    it."""
    conn = await engine.connect()
    try:
        async with conn.begin():
            yield conn
    except BaseException:
        await conn.__aexit__(None, None, None)  # its guarded close (it ignores the error)
        raise
    await conn.close()


class Store(ABC):
    """A connection pool to one AgentOS database and the transactions on it.

    Each concept whose statements differ by backend has its interface here, the
    backend's own chosen once when the store opens: ``store.tasks``,
    ``store.events``, ``store.locks``, ``store.routes``.
    """

    dialect: ClassVar[str]
    # statements run on the event loop (SQLite): one that takes 50 ms holds every other
    # coroutine (HTTP requests too) for 50 ms, so long work is cut into short pieces
    inline: ClassVar[bool] = False
    # what a statement may raise: SQLAlchemy's wrapper, and the driver's own errors from
    # named SQL sent on the driver connection (all translated by ``translate``)
    driver_errors: ClassVar[tuple[type[BaseException], ...]] = (DBAPIError,
                                                                PendingRollbackError)
    tasks: Tasks
    events: Events
    locks: Locks
    routes: Routes
    # seconds a reader waits for news before it looks again with no wake-up (a
    # safety net where ``listen`` runs: PostgreSQL's NOTIFY, a SQLite file's sockets)
    poll_interval: ClassVar[float] = 0.25

    def __init__(self, url: str, *, pool_size: int = 10) -> None:
        self.url = url
        self.pool_size = pool_size
        self.engine: Any = self._create_engine()
        # channel -> wake-up set after a commit that notified it (here or, on
        # PostgreSQL, in another process)
        self._wakeups: dict[str, list[Wakeup]] = {}
        # run at the end of every write transaction, inside it (the audit log's row)
        self._before_commit: list[Callable[[Any], Awaitable[None]]] = []
        # each hook's form for driver blocks (None: it has none)
        self._driver_hooks: list[DriverHook | None] = []
        # channels other processes' commits wake here (a ``listen`` is up), and how
        # many of the listens running now take each
        self.listening: set[str] = set()
        self._listens: Counter[str] = Counter()

    # -- hooks the backends override ------------------------------------

    @abstractmethod
    def _create_engine(self) -> AsyncEngine:
        """Each backend builds its engine."""

    @asynccontextmanager
    async def _write_connection(self) -> AsyncIterator[AsyncConnection]:
        async with committed(self.engine) as conn:
            yield conn

    def translate(self, exc: BaseException) -> AgentOSError:
        """A driver error as a domain error (``store.errors``: the driver's text is
        logged, never passed on)."""
        if self.dialect == "postgresql":
            return errors.from_postgres(exc)
        return errors.from_sqlite(exc)

    # -- the seam -------------------------------------------------------

    @asynccontextmanager
    async def read(self) -> AsyncIterator[AsyncConnection]:
        """A connection for reads; nothing it does is committed."""
        try:
            async with self.engine.connect() as conn:
                yield conn
        except self.driver_errors as exc:
            raise self.translate(exc) from exc

    def write(self) -> AbstractAsyncContextManager[AsyncConnection]:
        """One write transaction: committed when the block ends, rolled back on error."""
        return self._tracked(self._write_connection(), self._before_commit)

    @asynccontextmanager
    async def _tracked(self, connection: AbstractAsyncContextManager[AsyncConnection],
                       hooks: Sequence[Callable[[Any], Awaitable[None]]] = (),
                       ) -> AsyncIterator[AsyncConnection]:
        """What every write does around its connection (a transaction, or PostgreSQL's
        autocommit statement), written once: it collects the channels the block
        ``notify``s and wakes this process's listeners once it has committed, runs
        ``hooks`` as its last step, clears the no-change mark, and turns driver errors
        into domain errors."""
        notified: set[str] = set()
        try:
            async with connection as conn:
                conn.info[NOTIFIED] = notified
                try:
                    yield conn
                    for hook in hooks:
                        await hook(conn)
                finally:
                    # an invalidated session (PostgreSQL's, see postgres.py) takes its info along
                    if not getattr(conn, "invalidated", False):
                        del conn.info[NOTIFIED]
                        conn.info.pop(UNCHANGED, None)
        except self.driver_errors as exc:
            raise self.translate(exc) from exc
        for channel in notified:  # committed: wake this process's listeners now
            self.wake(channel)

    def statement(self) -> AbstractAsyncContextManager[AsyncConnection]:
        """A connection for a write that is one statement, committed on its own.

        Where the backend can and no hook must run inside the transaction
        (PostgreSQL, autocommit) it saves the BEGIN and COMMIT round trips;
        otherwise it is a write transaction.
        """
        return self.write()

    @asynccontextmanager
    async def driver(self, *, hooked: bool = False) -> AsyncIterator[Any]:
        """The driver-level connection for the hot path's named statements, or None
        where the backend has none (the caller then takes ``statement()``).

        While before-commit hooks are set (a server's audit row) a block sees None,
        unless it is ``hooked``: a write that changes something (so the request's audit
        row belongs with it), whose hooks then run on the driver connection as the
        block's last step, in its transaction (on PostgreSQL the block is then one
        transaction, not autocommit). None if a hook has no driver form."""
        yield None

    @asynccontextmanager
    async def folding(self, able: bool = True) -> AsyncIterator[tuple[Any, Fold | None]]:
        """``driver(hooked=True)`` for a block that is one statement able to do the
        hooks' work itself (PostgreSQL: the audit row's CTEs in the statement, so an
        audited write is one round trip, not BEGIN, the write, the row and COMMIT).

        With the connection comes ``fold``: called once the block knows what its write
        names (``audit.names``) and before its statement, it answers the parameters to
        send with the statement's variant that does the work, or None (send the plain
        one). The statement is then alone, in autocommit. Where the work cannot be
        folded (SQLite, whose hooks cost no round trip; a hook without the form) ``fold``
        is None and the hooks run as the block's last step, as in ``driver``. A block
        whose statement changed nothing must say so with ``nothing_changed``: the work is
        then due again (the request's audit row goes with its next write, a full path's
        transaction say). A statement the database refuses is rolled back whole: the
        work is due again too; after any other error it stays done (the statement may
        have committed it) or there was no change to record. ``able`` False: the write
        cannot carry the work (it is several statements, or its audit row names what
        only its result says), so ``driver(hooked=True)``, with no ``fold``."""
        async with self.driver(hooked=True) as db:
            yield db, None

    @asynccontextmanager
    async def driver_read(self) -> AsyncIterator[Any]:
        """The driver-level connection for one short read of named SQL, whatever hooks
        are set (PostgreSQL's, in autocommit), or None where the backend has none for
        reads (SQLite's writes; it has ``read_row``): then the caller takes ``read()``."""
        yield None

    def _driver_work(self, hooked: bool) -> list[DriverWork] | None:
        """What the before-commit hooks do at the end of a driver block (``_end_block``):
        nothing where none is set; None (no driver block) where one is and the block is
        not ``hooked``, or a hook has no driver form. A driver block begins here."""
        if not self._before_commit:
            return []
        _block_unchanged.set(False)  # read by this block's end step (``_end_block``)
        if not hooked:
            return None
        work = []
        for hook in self._driver_hooks:
            if hook is None:
                return None
            if (found := hook()) is not None:
                work.append(found)
        return work

    @staticmethod
    async def _end_block(work: list[DriverWork], db: Any) -> None:
        """A driver block's last step, in its transaction: the hooks' ``work``, unless the
        block said it changed nothing."""
        if Store._said_unchanged():
            return
        for hook in work:
            await hook(db)

    @staticmethod
    def _said_unchanged() -> bool:
        """Whether this driver block said it changed nothing (``nothing_changed``): a
        word for this block only, spent by reading it."""
        said = _block_unchanged.get()
        _block_unchanged.set(False)
        return said

    @staticmethod
    def nothing_changed(conn: Any) -> None:
        """Mark this write transaction as no change worth recording (an empty claim, a
        worker's presence, a lock that was held): it leaves no audit row. Given a driver
        block's connection (``driver(hooked=True)``): that block's hooks do not run; a
        folding block's (``folding``) folded work is due again."""
        info = getattr(conn, "info", None)
        if isinstance(info, dict):  # a write transaction's (SQLAlchemy's info dict)
            info[UNCHANGED] = True
        else:  # a driver connection: sqlite3's (no info) or psycopg's (its own kind)
            _block_unchanged.set(True)

    def before_commit(self, hook: Callable[[Any], Awaitable[None]],
                      on_driver: DriverHook | None = None) -> None:
        """Run ``hook(conn)`` as the last step of every write transaction that succeeds;
        ``on_driver``: its form for a ``hooked`` driver block (see ``driver``)."""
        if hook not in self._before_commit:
            self._before_commit.append(hook)
            self._driver_hooks.append(on_driver)

    async def lock_table(self, conn: AsyncConnection, table: str) -> None:
        """Keep every other transaction from writing ``table`` until this write
        transaction ends (two servers doing the same first-start step). SQLite's write
        transaction already excludes every other writer."""
        return None  # not abstract: SQLite's is this; PostgreSQL's store overrides it

    # -- notify / listen ------------------------------------------------

    async def notify(self, conn: AsyncConnection, channel: str, *, sent: bool = False) -> None:
        """Wake ``channel``'s listeners once this write transaction commits.

        ``sent``: the caller's own SQL already notified other processes.
        """
        conn.info[NOTIFIED].add(channel)

    def wakeup(self, channel: str) -> Wakeup:
        """A new event, set whenever a commit notifies ``channel``; its owner clears it.

        A wake-up is only a hint to re-read the database: one may be lost (or
        arrive without news) and nothing is lost with it. Its ``notes`` keep the
        payloads the notifications carried since the owner last cleared them.
        """
        event = Wakeup()
        self._wakeups.setdefault(channel, []).append(event)
        return event

    def forget_wakeup(self, channel: str, event: Wakeup) -> None:
        """Stop setting ``event`` (a waiter that is done with it)."""
        waiters = self._wakeups.get(channel, [])
        if event in waiters:
            waiters.remove(event)

    def change_stamp(self) -> object | None:
        """Something that differs after any commit to the database, from any process,
        read without a round trip; None where the backend has none (a poller then reads
        the database each time)."""
        return None

    def wake(self, channel: str, note: str = "") -> None:
        """Set ``channel``'s wake-ups (a ``note``: the notification's payload)."""
        for event in self._wakeups.get(channel, ()):
            if note and len(event.notes) < Wakeup.MAX_NOTES:
                event.notes.append(note)
            else:
                event.bare = True
            event.set()

    async def listen(self, channels: list[str]) -> None:
        """Deliver other processes' notifications on ``channels`` until cancelled
        (PostgreSQL: LISTEN; a SQLite file: ``sqlite_wakes``), with ``listening``
        naming them while it does. Where there is no way (an in-memory database),
        readers poll instead."""
        await asyncio.Event().wait()

    @contextmanager
    def listening_on(self, channels: Sequence[str]) -> Iterator[None]:
        """``channels`` count as listened to within the block (a ``listen``'s while it
        is up): another listen of the same channels ending keeps them."""
        for channel in channels:
            self._listens[channel] += 1
            self.listening.add(channel)
        try:
            yield
        finally:
            for channel in channels:
                self._listens[channel] -= 1
                if self._listens[channel] <= 0:
                    del self._listens[channel]
                    self.listening.discard(channel)

    async def refresh_statistics(self, tables: tuple[str, ...]) -> list[str]:
        """Bring the planner's statistics of ``tables`` up to date where they lag far
        behind the rows; returns the tables analyzed (SQLite plans need none)."""
        return []

    async def unwritable(self) -> str | None:
        """Why the database would refuse a change now (an error code of
        ``store.errors``), or None: for /ready, without changing anything."""
        return None

    async def ping(self) -> None:
        """The database answers (else a domain error). A pooled session the server has
        ended (a restart, pg_terminate_backend) fails when used and the pool drops it
        (SQLAlchemy's disconnect handling): a new session is asked before it counts."""
        for tries_left in (1, 0):
            try:
                async with self.read() as conn:
                    await conn.execute(text("SELECT 1"))
                return
            except AgentOSError as exc:
                if exc.code != errors.UNAVAILABLE or not tries_left:
                    raise

    def pool_status(self) -> dict[str, Any]:
        pool: Any = self.engine.pool
        figures: dict[str, Any] = {"class": type(pool).__name__, "size": self.pool_size}
        for name in ("checkedin", "checkedout", "overflow"):
            if hasattr(pool, name):
                figures[name.replace("checked", "checked_")] = getattr(pool, name)()
        return figures

    async def close(self) -> None:
        await self.engine.dispose()
