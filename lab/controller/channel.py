"""The controller's control channel: a Unix socket that only the run which started the controller may use.

Three fences, each enough on its own against a different neighbour:
- the socket lives in the run directory (root-owned, not writable by others) with mode 0600, so no other
  user can connect;
- every connection's peer is checked with SO_PEERCRED: same uid, and the owner's PID with the owner's start
  time (a reused PID is not the owner), so another root process, e.g. a second run, is answered with an error
  and closed;
- a line is read in chunks and refused past protocol.MAX_LINE bytes, so memory stays bounded whatever is
  sent; every line gets an answer, and no request can end the connection's thread with an exception.

No os-ken here: the app hands in its request handler, so this is tested on real sockets without OpenFlow.
"""
import os
import socket
import stat
import struct
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from ..runrecord import process_start_time
from . import protocol

CHUNK = 4096
IDLE_TIMEOUT = 30.0           # a connection that sends nothing for this long is closed
DRAIN_BYTES, DRAIN_SECONDS = 1 << 20, 2.0   # read and dropped after a refusal, so that the answer arrives
MAX_CLIENTS = 8               # connections served at once; more are answered "busy"
SUN_PATH_MAX = 107            # sockaddr_un.sun_path holds 108 bytes with the NUL


class ChannelError(Exception):
    """The channel cannot be set up (the path or its directory is not safe)."""


class LineTooLong(Exception):
    pass


@dataclass(frozen=True)
class Owner:
    """The process allowed to talk: PID, its start time (clock ticks since boot) and uid."""
    pid: int
    start: int
    uid: int

    def refuses(self, pid, uid):
        """Why a peer with PID and UID may not use the channel, or None when it is the owner."""
        if uid != self.uid:
            return f"uid {uid} may not use this controller (only the run that started it, pid {self.pid})"
        if pid != self.pid or process_start_time(pid) != self.start:
            return f"pid {pid} is not the run that started this controller (pid {self.pid}): connection refused"
        return None


def peer_credentials(conn):
    """(pid, uid, gid) of the process that connected CONN, from the kernel (SO_PEERCRED)."""
    raw = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return struct.unpack("3i", raw)


def read_lines(recv, limit=protocol.MAX_LINE):
    """Yield the newline-terminated lines that RECV(n) delivers, without their newline, until EOF.

    Never holds more than LIMIT + CHUNK bytes: a line longer than LIMIT raises LineTooLong as soon as its
    first LIMIT + 1 bytes have arrived. A last line without a newline at EOF is yielded too.
    """
    buf = bytearray()
    while True:
        chunk = recv(CHUNK)
        if not chunk:
            if buf:
                yield bytes(buf)
            return
        start = len(buf)
        buf += chunk
        while True:
            nl = buf.find(b"\n", start)
            if nl < 0:
                break
            if nl > limit:
                raise LineTooLong(f"request longer than {limit} bytes: refused, connection closed")
            line = bytes(buf[:nl])
            del buf[:nl + 1]
            start = 0
            yield line
        if len(buf) > limit:
            raise LineTooLong(f"request longer than {limit} bytes: refused, connection closed")


def _check_directory(directory):
    """The socket's directory must belong to us and be writable by us alone (nobody may swap the socket)."""
    try:
        st = os.stat(directory)
    except FileNotFoundError:
        raise ChannelError(f"{directory}: no such directory (the run directory is created with the run record)") from None
    if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid() or st.st_mode & 0o022:
        raise ChannelError(f"{directory}: must be a directory owned by uid {os.geteuid()} and writable only by it "
                           f"(it is uid {st.st_uid}, mode {stat.S_IMODE(st.st_mode):o})")


def _refuse(conn, error):
    """Answer ERROR and close. Linux resets a Unix stream closed with unread data (the peer may then get
    ECONNRESET instead of the answer), so what the peer still sends is read and dropped first, within bounds."""
    conn.sendall(protocol.answer(error=error))
    conn.shutdown(socket.SHUT_WR)
    deadline, dropped = time.monotonic() + DRAIN_SECONDS, 0
    while dropped < DRAIN_BYTES and time.monotonic() < deadline:
        conn.settimeout(max(0.01, deadline - time.monotonic()))
        chunk = conn.recv(CHUNK * 16)
        if not chunk:
            break
        dropped += len(chunk)


class ControlChannel:
    """A listening Unix socket at PATH, mode 0600, serving HANDLER(request model) -> dict for OWNER only."""

    def __init__(self, path, owner, handler=None):
        self.path = Path(path)
        self.owner = owner
        self.handler = handler
        self._slots = threading.BoundedSemaphore(MAX_CLIENTS)
        self._sock = self._listen()

    def _listen(self):
        if len(os.fsencode(self.path)) > SUN_PATH_MAX:
            raise ChannelError(f"{self.path}: longer than the {SUN_PATH_MAX} bytes a Unix socket path may have")
        _check_directory(self.path.parent)
        try:
            existing = os.lstat(self.path)
        except FileNotFoundError:
            pass
        else:
            if not stat.S_ISSOCK(existing.st_mode):
                raise ChannelError(f"{self.path}: exists and is not a socket; refusing to replace it")
            # A killed controller's socket: the run id is this run's (its record was created exclusively).
            os.unlink(self.path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)         # born 0600: no window in which another user could connect
        try:
            sock.bind(str(self.path))
        finally:
            os.umask(old)
        os.chmod(self.path, 0o600)
        st = os.lstat(self.path)
        self._inode = (st.st_dev, st.st_ino)
        sock.listen(MAX_CLIENTS)
        return sock

    def serve_forever(self):
        """Accept connections until close(); each is served on its own thread."""
        while True:
            try:
                conn, _ = self._sock.accept()
            except OSError:
                return                # closed
            threading.Thread(target=self._client, args=(conn,), daemon=True).start()

    def close(self):
        """Stop listening and remove the socket file (only if it is still ours)."""
        try:
            st = os.lstat(self.path)
            ours = (st.st_dev, st.st_ino) == self._inode
        except OSError:
            ours = False
        self._sock.close()
        if ours:
            self.path.unlink(missing_ok=True)

    def _client(self, conn):
        with conn:
            conn.settimeout(IDLE_TIMEOUT)
            try:
                pid, uid, _ = peer_credentials(conn)
                why = self.owner.refuses(pid, uid)
                if why:
                    return _refuse(conn, why)
                if not self._slots.acquire(blocking=False):
                    return _refuse(conn, f"busy: {MAX_CLIENTS} connections already open")
                try:
                    self._serve(conn)
                finally:
                    self._slots.release()
            except OSError:
                pass                  # the peer went away or went quiet: nothing left to answer

    def _serve(self, conn):
        try:
            for line in read_lines(conn.recv):
                conn.sendall(self.respond(line))
        except LineTooLong as e:
            _refuse(conn, e)

    def respond(self, line):
        """The answer to one request line: the handler's result, or an error saying what was wrong."""
        try:
            request = protocol.parse(line)
            return protocol.answer(self.handler(request))
        except protocol.ProtocolError as e:
            return protocol.answer(error=e)
        except Exception as e:  # noqa: BLE001 (a failing rule must still be answered, and the thread live on)
            return protocol.answer(error=f"{type(e).__name__} while serving the request: {str(e)[:200]}")
