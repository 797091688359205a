"""Wake-ups between processes on one SQLite file: what NOTIFY and LISTEN are on
PostgreSQL.

A store that listens (``SqliteStore.listen``) opens a Unix stream socket in a hidden
directory beside its database file (``.<file's name>.wake/``: a user's ``rm
agentos.db*`` leaves it alone). Every store on the file, listening or not, sends the
wake-ups its commits make (``Store.wake``: a channel and a note) to each socket
there: a line per wake-up, all of a loop turn's in one write to each peer. So a
grant, a submit or an append in one process wakes the waiters of the others at once,
not at their next poll.

A wake-up stays a hint (the database says what happened), so nothing here may hold up
a commit or grow without bound, and a line that may have been missed is made up for
by a ``*`` line (every channel, with no note: read again):

- a new connection begins with one (the peer may have listened before we knew);
- a peer that reads slowly has what it has not read kept, up to ``MAX_BACKLOG``
  bytes; past that it is owed one, written once it has read the rest;
- a socket nobody answers (its process ended, even by SIGKILL) is removed by the
  first sender that finds it so; a listener's socket is made under another name and
  renamed once it answers, so no sender takes it for such a one;
- a listener hangs up on a connection that sends anything but lines of ours, and
  takes at most ``MAX_READERS`` connections.

A sender notices a new peer by the directory's modification time (one ``stat`` a
flush) and lists it again at least every ``RELIST_NS``; while that time is within
``RACY_NS`` of its last listing it lists at every flush (a coarse or whole-second
clock can give two changes one time).

The directory must be a directory of this user's alone (mode 0700, checked before it
is used): processes of another user on the same file neither listen nor reach the
listeners, and are left to their polls, as are processes that reach the file
through another mount.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import stat
import time
from collections.abc import Callable

log = logging.getLogger(__name__)

ALL = "*"  # a channel name meaning every channel, with no note
_ALL_LINE = f"{ALL}\t\n".encode()
MAX_BACKLOG = 256 * 1024  # bytes kept for a peer that reads slowly
MAX_LINE = 64 * 1024  # a listener hangs up on a longer line
MAX_READERS = 256  # connections a listener takes at once
READ_SIZE = 64 * 1024
BACKLOG = 128  # connections waiting to be accepted
RACY_NS = 2_000_000_000  # a listing this close to the directory's last change is redone
RELIST_NS = 1_000_000_000  # and any listing this old
RETRY_S = 1.0  # a listener out of file descriptors accepts again after this
KEEP_S = 5.0  # seconds between a listener's looks that its socket's file is still there
PATH_MAX = 100  # bytes of a socket's path (the kernel takes at most 107)

Deliver = Callable[[str, str], None]


def directory_of(database: str) -> str:
    """Where the sockets of ``database``'s listeners are (by its real path: a link
    to the file leads every process to the same place)."""
    folder, name = os.path.split(os.path.realpath(database))
    return os.path.join(folder, f".{name}.wake")


def _ours(found: os.stat_result) -> bool:
    return (stat.S_ISDIR(found.st_mode) and found.st_uid == os.geteuid()
            and not found.st_mode & 0o077)


def _running() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


class _Peer:
    __slots__ = ("backlog", "loop", "owed", "sock")

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.backlog = bytearray(_ALL_LINE)  # not yet taken by the peer
        self.owed = False  # lines were dropped: ALL once the backlog is out
        self.loop: asyncio.AbstractEventLoop | None = None  # where its writer waits


class WakeSockets:
    """The sockets of one store: its peers' (to send to) and, while it listens, its
    own (``open``/``close_listener``), whose lines go to ``deliver(channel, note)``."""

    def __init__(self, database: str, deliver: Deliver) -> None:
        self.directory = directory_of(database)
        self._deliver = deliver
        self._lines: list[str] = []  # wake-ups of this loop turn, not yet sent
        self._flushing: asyncio.AbstractEventLoop | None = None  # where a flush waits
        self._peers: dict[str, _Peer] = {}
        self._listed: tuple[int, int] | None = None  # (directory's mtime, listed at), ns
        self._dirfd: int | None = None  # for a path too long for a socket's address
        self._name: str | None = None  # our own socket's file name, while listening
        self._server: socket.socket | None = None
        self._readers: dict[int, tuple[socket.socket, bytearray]] = {}
        self._loop: asyncio.AbstractEventLoop | None = None  # the listener's
        self._listeners = 0
        self._warned = False

    # -- sending ----------------------------------------------------------

    def send(self, channel: str, note: str) -> None:
        """Tell every peer, once this loop turn ends (with the turn's other wake-ups);
        one with a note (a grant, which its waiter waits for) and what came before it
        at once: on SQLite the caller may go on with statements on the loop, a queue
        join after a release, before the turn ends."""
        if "\n" in note or "\t" in note:
            note = ""  # (no note of ours has either: a bare wake-up says as much)
        self._lines.append(f"{channel}\t{note}\n")
        loop = _running()
        if loop is None or note:
            self.flush()
        elif self._flushing is not loop:  # (one due on a loop since stopped may never run)
            self._flushing = loop
            loop.call_soon(self.flush)

    def flush(self) -> None:
        """Send what ``send`` gathered, to every peer the directory lists now."""
        self._flushing = None
        if not self._lines:
            return
        data = "".join(dict.fromkeys(self._lines)).encode()
        self._lines.clear()
        for name in self._current_peers():
            self._write(name, data)

    def _current_peers(self) -> list[str]:
        try:
            found = os.lstat(self.directory)
        except OSError:
            found = None
        if found is None or not _ours(found):  # nobody listens (or not ours to trust)
            self._listed = None
            for name in list(self._peers):
                self._drop(name)
            return []
        mtime, now = found.st_mtime_ns, time.time_ns()
        listed = self._listed
        if listed is None or listed[0] != mtime or listed[1] - mtime < RACY_NS or \
                now - listed[1] > RELIST_NS:
            self._relist(mtime, found.st_ino, now)
        return list(self._peers)

    def _relist(self, mtime: int, inode: int, now: int) -> None:
        if self._dirfd is not None and os.fstat(self._dirfd).st_ino != inode:
            os.close(self._dirfd)  # the directory was made again
            self._dirfd = None
        try:
            names = {name for name in os.listdir(self.directory) if name.endswith(".sock")}
        except OSError:
            names = set()
        names.discard(self._name or "")
        for name in set(self._peers) - names:
            self._drop(name)
        missed = [name for name in names - set(self._peers) if not self._connect(name)]
        self._listed = None if missed else (mtime, now)  # (a failed one: again next time)

    def _connect(self, name: str) -> bool:
        """Connect to ``name``; False where it may listen and could not be reached."""
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.setblocking(False)
        try:
            sock.connect(self._address(name))
        except ConnectionRefusedError:  # nobody listens there: its process has ended
            sock.close()
            with contextlib.suppress(OSError):
                os.unlink(self._address(name))
            return True
        except FileNotFoundError:  # gone meanwhile
            sock.close()
            return True
        except OSError:  # its queue is full, or it is not ours to reach
            sock.close()
            return False
        self._peers[name] = _Peer(sock)
        return True

    def _write(self, name: str, data: bytes) -> None:
        peer = self._peers[name]
        if peer.backlog or peer.owed:
            self._keep(peer, data, whole=True)
            if peer.loop is None or peer.loop is not _running():
                self._drain(name)  # its writer's loop stopped: from this one
            return
        try:
            sent = peer.sock.send(data)
        except BlockingIOError:
            sent = 0
        except OSError:  # the listener has gone
            self._drop(name)
            return
        if sent < len(data):
            self._keep(peer, data[sent:], whole=sent == 0)
            self._wait_writable(peer, name)

    @staticmethod
    def _keep(peer: _Peer, data: bytes, *, whole: bool) -> None:
        # the rest of a line already begun is always kept, or the stream's lines break
        if not whole or len(peer.backlog) + len(data) <= MAX_BACKLOG:
            peer.backlog += data
        else:
            peer.owed = True

    def _wait_writable(self, peer: _Peer, name: str) -> None:
        loop = _running()
        if peer.loop is loop:
            return
        self._stop_waiting(peer)
        if loop is not None:  # (none: the process is ending, the rest is lost)
            loop.add_writer(peer.sock, self._drain, name)
            peer.loop = loop

    @staticmethod
    def _stop_waiting(peer: _Peer) -> None:
        if peer.loop is not None and not peer.loop.is_closed():
            peer.loop.remove_writer(peer.sock)
        peer.loop = None

    def _drain(self, name: str) -> None:
        """Write a peer's backlog (then what it is owed) as far as it takes it."""
        peer = self._peers.get(name)
        if peer is None:
            return
        while True:
            if not peer.backlog and peer.owed:
                peer.backlog += _ALL_LINE
                peer.owed = False
            if not peer.backlog:
                self._stop_waiting(peer)
                return
            try:
                sent = peer.sock.send(peer.backlog)
            except BlockingIOError:
                self._wait_writable(peer, name)
                return
            except OSError:
                self._drop(name)
                return
            del peer.backlog[:sent]

    def _drop(self, name: str) -> None:
        peer = self._peers.pop(name, None)
        if peer is None:
            return
        self._stop_waiting(peer)
        peer.sock.close()
        self._listed = None  # what the directory holds now decides

    def _address(self, name: str) -> str:
        path = os.path.join(self.directory, name)
        if len(os.fsencode(path)) <= PATH_MAX:
            return path
        if self._dirfd is None:  # Linux: the directory by its descriptor, a short path
            self._dirfd = os.open(self.directory, os.O_RDONLY | os.O_DIRECTORY)
        return f"/proc/self/fd/{self._dirfd}/{name}"

    # -- listening --------------------------------------------------------

    def open(self) -> bool:
        """Listen (calls are counted: ``close_listener`` each); False where the
        socket cannot be made (its owner then polls, as before)."""
        if self._server is None and not self._bind():
            return False
        self._listeners += 1
        return True

    def _bind(self) -> bool:
        stem = f"{os.getpid()}-{os.urandom(4).hex()}"
        server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        made = None
        try:
            with contextlib.suppress(FileExistsError):
                os.mkdir(self.directory, 0o700)
            if not _ours(os.lstat(self.directory)):
                raise PermissionError(f"{self.directory} is not a directory of ours alone")
            server.setblocking(False)
            made = self._address(stem + ".new")
            server.bind(made)
            server.listen(BACKLOG)
            os.rename(made, self._address(stem + ".sock"))  # answers already: now seen
        except OSError as exc:
            server.close()
            if made is not None:
                with contextlib.suppress(OSError):
                    os.unlink(made)
            if not self._warned:
                self._warned = True
                log.warning("no wake-up socket in %s (waiters poll instead): %s",
                            self.directory, exc, extra={"action": "wake_socket_failed"})
            return False
        self._name, self._server = stem + ".sock", server
        self._loop = asyncio.get_running_loop()
        self._loop.add_reader(server.fileno(), self._accept)
        return True

    def keep(self) -> None:
        """Make the socket again if its file was removed (a user's cleanup: senders
        would not find it), or if making it again failed last time."""
        if self._listeners <= 0:
            return
        if self._server is None or self._name is None:
            self._bind()
            return
        try:
            os.stat(self._address(self._name))
        except FileNotFoundError:
            self._unbind()
            self._bind()
        except OSError:
            pass

    def close_listener(self) -> None:
        self._listeners -= 1
        if self._listeners <= 0:
            self._listeners = 0
            self._unbind()

    def _unbind(self) -> None:
        if self._server is None:
            return
        assert self._loop is not None and self._name is not None
        live = not self._loop.is_closed()
        for fd, (conn, _) in list(self._readers.items()):
            if live:
                self._loop.remove_reader(fd)
            conn.close()
        self._readers.clear()
        if live:
            self._loop.remove_reader(self._server.fileno())
        self._server.close()
        with contextlib.suppress(OSError):
            os.unlink(self._address(self._name))
        self._server = self._name = None

    def _accept(self) -> None:
        server, loop = self._server, self._loop
        assert server is not None and loop is not None
        while True:
            try:
                conn, _ = server.accept()
            except (BlockingIOError, InterruptedError):
                return
            except ConnectionAbortedError:
                continue
            except OSError as exc:  # out of file descriptors: accept again later
                log.warning("wake-up socket cannot accept: %s", exc,
                            extra={"action": "wake_socket_accept_failed"})
                loop.remove_reader(server.fileno())
                loop.call_later(RETRY_S, self._accept_again, server)
                return
            if len(self._readers) >= MAX_READERS:
                conn.close()
                continue
            conn.setblocking(False)
            self._readers[conn.fileno()] = (conn, bytearray())
            loop.add_reader(conn.fileno(), self._read, conn.fileno())

    def _accept_again(self, server: socket.socket) -> None:
        if server is self._server and self._loop is not None and not self._loop.is_closed():
            self._loop.add_reader(server.fileno(), self._accept)

    def _read(self, fd: int) -> None:
        conn, buffer = self._readers[fd]
        try:
            data = conn.recv(READ_SIZE)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self._hang_up(fd)
            return
        buffer += data
        end = buffer.rfind(b"\n")
        if end < 0:
            if len(buffer) > MAX_LINE:
                self._hang_up(fd)
            return
        lines = bytes(buffer[:end]).split(b"\n")
        del buffer[:end + 1]
        for line in lines:
            channel, tab, note = line.partition(b"\t")
            try:
                if not tab or len(line) > MAX_LINE:
                    raise ValueError("not a wake-up")
                self._deliver(channel.decode(), note.decode())
            except ValueError:  # (UnicodeDecodeError too) not one of ours: hang up
                self._hang_up(fd)
                return

    def _hang_up(self, fd: int) -> None:
        conn, _ = self._readers.pop(fd)
        assert self._loop is not None
        self._loop.remove_reader(fd)
        conn.close()

    def close(self) -> None:
        """Send what is gathered, stop listening, close every socket."""
        self.flush()
        self._listeners = 0
        self._unbind()
        for name in list(self._peers):
            self._drop(name)
        if self._dirfd is not None:
            os.close(self._dirfd)
            self._dirfd = None
