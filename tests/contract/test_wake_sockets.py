"""Wake-ups between processes on one SQLite file (``store.sqlite_wakes``): a commit in
one process wakes another's listener at once, with its note; a listener killed with
SIGKILL leaves a socket the next sender removes; a peer that sends what is not ours
is hung up on; a peer that does not read costs a sender bounded memory and is owed a
wake-up of every channel; listeners that come after a sender listed the directory are
reached; a directory others may read is not used; a removed socket file is made
again; a file whose path is too long for a socket's address still works."""

import asyncio
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest

from agentos import locks
from agentos.locks import Claim
from agentos.store import Store, open_store, sqlite_wakes
from agentos.store import locks as store_locks
from agentos.store.sqlite_wakes import WakeSockets

CHANNEL = "agentos_test_wakes"
R = "device:pixel-7"


@pytest.fixture
def sqlite_url(sqlite_template: Path, tmp_path: Path) -> str:
    path = tmp_path / "agentos.db"
    shutil.copyfile(sqlite_template, path)
    return f"sqlite:///{path}"


@asynccontextmanager
async def listening(store: Store, channels: list[str]) -> AsyncIterator[None]:
    task = asyncio.create_task(store.listen(channels))
    try:
        async with asyncio.timeout(10):
            while not set(channels) <= store.listening:
                await asyncio.sleep(0.01)
        yield
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def short(path: Path | str) -> str:
    """``path`` as a socket's address: by its directory's descriptor where too long."""
    path = str(path)
    if len(path) <= 100:
        return path
    fd = os.open(os.path.dirname(path), os.O_RDONLY)  # (kept open for the test's life)
    return f"/proc/self/fd/{fd}/{os.path.basename(path)}"


def sockets(url: str) -> list[str]:
    directory = sqlite_wakes.directory_of(url.removeprefix("sqlite:///"))
    return sorted(os.listdir(directory)) if os.path.isdir(directory) else []


async def woken(store: Store, channel: str, action: object) -> list[str]:
    """The notes ``channel``'s wake-up in ``store`` got after ``action()`` ran."""
    wakeup = store.wakeup(channel)
    try:
        wakeup.clear()
        action()  # type: ignore[operator]
        await asyncio.wait_for(wakeup.wait(), 10)
        return list(wakeup.notes)
    finally:
        store.forget_wakeup(channel, wakeup)


# A waiter in another process, every poll of it put off for an hour: only the grant's
# own wake-up can end its wait in time.
WAITER = textwrap.dedent("""
    import asyncio, sys
    from agentos import locks
    from agentos.locks import Claim, waiting
    from agentos.store import open_store, locks as store_locks
    for name in ("POLL_FIRST", "POLL", "POLL_LISTENING", "STAMP_POLL", "STAMP_READ"):
        setattr(waiting, name, 3600.0)

    async def main():
        store = open_store(sys.argv[1])
        listener = asyncio.create_task(store.listen([store_locks.CHANNEL]))
        while store_locks.CHANNEL not in store.listening:
            await asyncio.sleep(0.01)
        looks = []
        look = store.locks.look
        async def counted(*args):
            looks.append(args)
            return await look(*args)
        store.locks.look = counted
        got = await locks.acquire(store, "device:pixel-7", Claim("child"), wait_s=60)
        print(got.granted, got.grants[0].token if got.granted else 0, len(looks), flush=True)
        listener.cancel()
        await store.close()

    asyncio.run(main())
""")


async def test_a_grant_in_one_process_wakes_a_waiter_in_another_with_its_note(
        sqlite_url: str) -> None:
    store = open_store(sqlite_url)
    child = None
    try:
        held = (await locks.acquire(store, R, Claim("parent"))).grants[0]
        child = subprocess.Popen([sys.executable, "-c", WAITER, sqlite_url],
                                 stdout=subprocess.PIPE, text=True)
        async with asyncio.timeout(60):
            while not any(w["owner"] == "child" for w in (await locks.get(store, R))["queue"]):
                await asyncio.sleep(0.02)
        await asyncio.sleep(0.2)  # parked on its wake-up
        await locks.release(store, R, "parent", held.token)
        out, _ = await asyncio.to_thread(child.communicate, timeout=30)
        granted, token, looks = out.split()
        assert (granted, int(token)) == ("True", held.token + 1)
        assert looks == "0", "the waiter read the lock back: the grant's note did not name it"
        assert (await locks.get(store, R))["holder"]["owner"] == "child"
    finally:
        if child is not None and child.poll() is None:
            child.kill()
            child.communicate(timeout=10)
        await store.close()


LISTENER = textwrap.dedent("""
    import asyncio, sys
    from agentos.store import open_store

    async def main():
        store = open_store(sys.argv[1])
        task = asyncio.create_task(store.listen(["agentos_test_wakes"]))
        await asyncio.sleep(0.1)
        print("listening", flush=True)
        await task

    asyncio.run(main())
""")


async def test_a_socket_left_by_a_killed_listener_is_removed_by_the_next_sender(
        sqlite_url: str) -> None:
    sender, here = open_store(sqlite_url), open_store(sqlite_url)
    child = subprocess.Popen([sys.executable, "-c", LISTENER, sqlite_url],
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        assert (await asyncio.to_thread(child.stdout.readline)).strip() == "listening"
        child.send_signal(signal.SIGKILL)
        child.wait(10)
        assert len(sockets(sqlite_url)) == 1  # left behind
        async with listening(here, [CHANNEL]):
            assert len(sockets(sqlite_url)) == 2
            notes = await woken(here, CHANNEL, lambda: sender.wake(CHANNEL, "after"))
            assert notes == ["after"]
            assert len(sockets(sqlite_url)) == 1  # the killed one's, removed
        assert sockets(sqlite_url) == []  # and ours, when it stopped listening
    finally:
        if child.poll() is None:
            child.kill()
        child.wait(10)
        assert child.stdout is not None
        child.stdout.close()
        await sender.close()
        await here.close()


async def test_a_peer_that_sends_what_is_not_ours_is_hung_up_on(sqlite_url: str) -> None:
    sender, here = open_store(sqlite_url), open_store(sqlite_url)
    try:
        async with listening(here, [CHANNEL]):
            [name] = sockets(sqlite_url)
            path = sqlite_wakes.directory_of(sqlite_url.removeprefix("sqlite:///")) + "/" + name
            for hostile in (b"no tab here\n", b"\xff\xfe\t\xff\n",
                            b"x" * (sqlite_wakes.MAX_LINE + 10)):
                peer = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                peer.connect(short(path))
                peer.sendall(hostile)
                peer.settimeout(10)
                assert await asyncio.to_thread(peer.recv, 10) == b"", "not hung up on"
                peer.close()
            notes = await woken(here, CHANNEL, lambda: sender.wake(CHANNEL, "still here"))
            assert notes == ["still here"]
    finally:
        await sender.close()
        await here.close()


async def test_a_peer_that_does_not_read_costs_bounded_memory_and_is_owed_a_wake_up(
        tmp_path: Path) -> None:
    directory = Path(sqlite_wakes.directory_of(str(tmp_path / "agentos.db")))
    directory.mkdir(mode=0o700)
    deaf = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)  # accepts, never reads
    deaf.bind(short(directory / "1-deaf.sock"))
    deaf.listen(1)
    sender = WakeSockets(str(tmp_path / "agentos.db"), lambda channel, note: None)
    try:
        lines = 20_000
        started = time.monotonic()
        for i in range(lines):  # each its own flush, as each its own loop turn
            sender.send(CHANNEL, f"granted {i} 1 2026-12-06T00:00:00+00:00")
            sender.flush()
        assert time.monotonic() - started < 30  # none of them waited for the peer
        [peer] = sender._peers.values()
        assert peer.owed and len(peer.backlog) <= sqlite_wakes.MAX_BACKLOG
        conn, _ = deaf.accept()
        conn.settimeout(0.5)
        received = bytearray()
        while True:  # what the loop does while the peer takes more
            sender._drain("1-deaf.sock")
            try:
                chunk = await asyncio.to_thread(conn.recv, 1 << 20)
            except TimeoutError:
                chunk = b""
            received += chunk
            if not chunk and not peer.backlog and not peer.owed:
                break
        text = received.decode().splitlines()
        assert text[0] == "*\t"  # a new connection's: what it missed before
        assert text[1] == f"{CHANNEL}\tgranted 0 1 2026-12-06T00:00:00+00:00"
        assert all(line.startswith(CHANNEL + "\tgranted ") for line in text[1:-1])
        assert len(text) - 2 < lines and text[-1] == "*\t"  # the rest owed as one
        conn.close()
    finally:
        sender.close()
        deaf.close()


async def test_listeners_that_come_one_after_another_are_each_reached(
        sqlite_url: str) -> None:
    """A sender that listed the directory before a listener came (or while another
    came in the same tick of the directory's clock) reaches it at its next flush."""
    sender, first, second = (open_store(sqlite_url) for _ in range(3))
    try:
        sender.wake(CHANNEL, "nobody")  # no directory yet
        async with listening(first, [CHANNEL]):
            assert await woken(first, CHANNEL, lambda: sender.wake(CHANNEL, "one")) == [
                "one"]
            async with listening(second, [CHANNEL]):  # within ms of the listing
                wakeup = second.wakeup(CHANNEL)
                wakeup.clear()
                notes = await woken(first, CHANNEL, lambda: sender.wake(CHANNEL, "two"))
                assert notes == ["two"]
                await asyncio.wait_for(wakeup.wait(), 10)
                assert "two" in wakeup.notes
    finally:
        for store in (sender, first, second):
            await store.close()


async def test_a_directory_not_ours_alone_is_not_used(sqlite_url: str) -> None:
    directory = sqlite_wakes.directory_of(sqlite_url.removeprefix("sqlite:///"))
    os.mkdir(directory, 0o755)
    os.chmod(directory, 0o755)  # (whatever the umask): others may read it
    store = open_store(sqlite_url)
    task = asyncio.create_task(store.listen([CHANNEL]))
    try:
        await asyncio.sleep(0.1)
        assert CHANNEL not in store.listening and os.listdir(directory) == []
        store.wake(CHANNEL, "to nobody")  # and sends to nothing there
        assert store._wakes is not None and store._wakes._peers == {}
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await store.close()


async def test_a_listener_whose_socket_file_was_removed_makes_it_again(
        sqlite_url: str) -> None:
    sender, here = open_store(sqlite_url), open_store(sqlite_url)
    try:
        async with listening(here, [CHANNEL]):
            [name] = sockets(sqlite_url)
            directory = sqlite_wakes.directory_of(sqlite_url.removeprefix("sqlite:///"))
            os.unlink(os.path.join(directory, name))
            assert here._wakes is not None
            here._wakes.keep()  # what its listen does every KEEP_S
            assert len(sockets(sqlite_url)) == 1
            assert await woken(here, CHANNEL, lambda: sender.wake(CHANNEL, "back")) == [
                "back"]
            # made again where it cannot be at first (the directory others may read),
            # then once it can
            [name] = sockets(sqlite_url)
            os.unlink(os.path.join(directory, name))
            os.chmod(directory, 0o755)
            here._wakes.keep()
            assert sockets(sqlite_url) == []
            os.chmod(directory, 0o700)
            here._wakes.keep()
            assert len(sockets(sqlite_url)) == 1
            assert await woken(here, CHANNEL, lambda: sender.wake(CHANNEL, "again")) == [
                "again"]
    finally:
        await sender.close()
        await here.close()


async def test_a_file_whose_path_is_too_long_for_a_socket_still_wakes(tmp_path: Path,
                                                                     sqlite_template: Path
                                                                     ) -> None:
    deep = tmp_path / ("d" * 60) / ("e" * 60)
    deep.mkdir(parents=True)
    shutil.copyfile(sqlite_template, deep / "agentos.db")
    url = f"sqlite:///{deep / 'agentos.db'}"
    sender, here = open_store(url), open_store(url)
    try:
        async with listening(here, [CHANNEL]):
            notes = await woken(here, CHANNEL, lambda: sender.wake(CHANNEL, "deep"))
            assert notes == ["deep"]
    finally:
        await sender.close()
        await here.close()


async def test_an_in_memory_store_has_no_listener_and_polls() -> None:
    store = open_store("sqlite:///:memory:")
    task = asyncio.create_task(store.listen([CHANNEL]))
    try:
        await asyncio.sleep(0.1)
        assert CHANNEL not in store.listening and not task.done()
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await store.close()


async def test_a_lock_waiter_in_a_listening_store_takes_no_stamp_polls(sqlite_url: str
                                                                      ) -> None:
    """Listening, a waiter no longer looks at the change stamp every millisecond."""
    holder, waiter_store = open_store(sqlite_url), open_store(sqlite_url)
    stamps: list[int] = []
    stamp = waiter_store.change_stamp

    def counted() -> object:
        stamps.append(1)
        return stamp()

    waiter_store.change_stamp = counted  # type: ignore[method-assign]
    try:
        async with listening(waiter_store, [store_locks.CHANNEL]):
            held = (await locks.acquire(holder, R, Claim("a"))).grants[0]
            waiter = asyncio.create_task(locks.acquire(waiter_store, R, Claim("b"),
                                                       wait_s=30))
            await asyncio.sleep(0.5)
            assert stamps == []
            await locks.release(holder, R, "a", held.token)
            assert (await asyncio.wait_for(waiter, 10)).granted
    finally:
        await holder.close()
        await waiter_store.close()
