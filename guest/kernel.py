"""What the guest programs share: JSON Lines events and the kernel's view of one socket.

Standard library only (guests start inside hosts with a bare interpreter and must start fast);
nothing here imports from lab/.

Every event is one JSON object on one line of stdout:
    {"t": 12.3456, "prog": "server", "event": "read", "syscall": "recv", "result": 1448,
     "errno": null, "local": "10.0.0.1:9000", "peer": "10.0.0.2:40312", ...}
`t` is CLOCK_MONOTONIC in seconds: the same clock in every host of one machine, so events of
different hosts can be put on one timeline.
"""
import argparse
import errno as errno_mod
import fcntl
import json
import math
import os
import re
import signal
import socket
import struct
import sys
import time

SIOCINQ = 0x541B      # FIONREAD: bytes in the receive queue, not yet read
SIOCOUTQ = 0x5411     # TIOCOUTQ: bytes in the write queue, not yet acknowledged by the peer
SIOCOUTQNSD = 0x894B  # bytes in the write queue not yet sent at all

# struct tcp_info from <linux/tcp.h>, up to tcpi_snd_wnd (Linux 5.4+); shorter answers are padded.
_TCP_INFO = struct.Struct("=8B24I4Q6I4Q2I2Q4I")
_TCP_INFO_FIELDS = (
    "state ca_state retransmits probes backoff options wscale flags "
    "rto ato snd_mss rcv_mss unacked sacked lost retrans fackets "
    "last_data_sent last_ack_sent last_data_recv last_ack_recv "
    "pmtu rcv_ssthresh rtt rttvar snd_ssthresh snd_cwnd advmss reordering rcv_rtt rcv_space total_retrans "
    "pacing_rate max_pacing_rate bytes_acked bytes_received "
    "segs_out segs_in notsent_bytes min_rtt data_segs_in data_segs_out "
    "delivery_rate busy_time rwnd_limited sndbuf_limited delivered delivered_ce "
    "bytes_sent bytes_retrans dsack_dups reord_seen rcv_ooopack snd_wnd"
).split()
TCP_STATES = {1: "ESTABLISHED", 2: "SYN_SENT", 3: "SYN_RECV", 4: "FIN_WAIT1", 5: "FIN_WAIT2",
              6: "TIME_WAIT", 7: "CLOSE", 8: "CLOSE_WAIT", 9: "LAST_ACK", 10: "LISTEN", 11: "CLOSING"}

ERRNO_MEANING = {
    "EAGAIN": "would block: the queue is full (write) or empty (read) and the socket is non-blocking",
    "ECONNREFUSED": "refused: the peer answered the SYN with RST (nothing listens there)",
    "ECONNRESET": "reset: the peer sent RST (e.g. tcp_abort_on_overflow, or it closed with unread data)",
    "ETIMEDOUT": "timed out: no answer to the SYN (or data) after the kernel's retries",
    "EINPROGRESS": "in progress: a non-blocking connect has started; wait for writability",
    "EPIPE": "broken pipe: writing after the connection was shut down",
    "ENOTCONN": "not connected",
    "EADDRINUSE": "address in use: another socket holds this port",
    "EISCONN": "already connected",
    "EINVAL": "invalid argument",
}


def errno_name(err):
    """OSError or errno number -> 'EAGAIN' (EWOULDBLOCK is the same number on Linux)."""
    num = err.errno if isinstance(err, OSError) else err
    return errno_mod.errorcode.get(num, str(num)) if num is not None else None


def addr(pair):
    if not pair:
        return None
    return f"{pair[0]}:{pair[1]}"


def endpoints(sock):
    try:
        local = addr(sock.getsockname())
    except OSError:
        local = None
    try:
        peer = addr(sock.getpeername())
    except OSError:
        peer = None
    return local, peer


def tcp_info(sock):
    """The kernel's struct tcp_info for SOCK as a dict (times in microseconds, as the kernel keeps them).

    For a listener, `unacked` is the accept-queue length and `sacked` the backlog.
    """
    raw = sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, _TCP_INFO.size)
    raw = raw.ljust(_TCP_INFO.size, b"\0")
    info = dict(zip(_TCP_INFO_FIELDS, _TCP_INFO.unpack(raw)))
    info["state"] = TCP_STATES.get(info["state"], str(info["state"]))
    return info


def _ioctl_int(sock, request):
    return struct.unpack("i", fcntl.ioctl(sock.fileno(), request, b"\0\0\0\0"))[0]


def queues(sock):
    """{'inq': bytes received not read, 'outq': bytes written not acked, 'notsent': not yet sent}."""
    return {"inq": _ioctl_int(sock, SIOCINQ), "outq": _ioctl_int(sock, SIOCOUTQ),
            "notsent": _ioctl_int(sock, SIOCOUTQNSD)}


def buffer_sizes(sock):
    """What the kernel granted this socket: its buffer limits and its congestion control."""
    return {"rcvbuf": sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF),
            "sndbuf": sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF),
            "congestion": congestion(sock)}


def congestion(sock):
    """The socket's congestion control algorithm, as the kernel reports it (TCP_CONGESTION)."""
    try:
        return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, 16).split(b"\0", 1)[0].decode()
    except OSError:
        return None


def tcp_socket():
    """A TCP socket with the congestion control the lab chose for this host (TCPLAB_CONGESTION): set per socket,
    because a network namespace may only default to algorithms the machine allows (root may set any the kernel
    has). Accepted sockets inherit their listener's."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    wanted = os.environ.get("TCPLAB_CONGESTION")
    if wanted:
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_CONGESTION, wanted.encode())
    return s


class Events:
    """Writes one JSON event per line; counts them for the summary."""

    def __init__(self, prog, out=None):
        self.prog = prog
        self.out = out or sys.stdout
        self.counts = {}
        self.errors = 0
        self.last_errno = None

    def emit(self, event, sock=None, **fields):
        record = {"t": round(time.monotonic(), 6), "prog": self.prog, "event": event}
        if sock is not None:
            record["local"], record["peer"] = endpoints(sock)
        record.update(fields)
        self.counts[event] = self.counts.get(event, 0) + 1
        try:
            self.out.write(json.dumps(record) + "\n")
            self.out.flush()
        except BrokenPipeError:
            pass
        return record

    def syscall(self, event, syscall, result=None, err=None, sock=None, **fields):
        """An event for one system call: its result, or the errno name when it failed."""
        name = errno_name(err) if err is not None else None
        if name is not None and name not in NOT_ERRORS:
            self.errors += 1         # counted here so that no failure can miss the summary
            self.last_errno = name
        return self.emit(event, sock=sock, syscall=syscall, result=result, errno=name, **fields)

    def summary(self, **fields):
        """The last event: FIELDS plus how many system calls failed, so `errors == 0` can fail."""
        return self.emit("summary", **fields, errors=self.errors, last_errno=self.last_errno)


def set_linger(sock, seconds):
    """SO_LINGER on with SECONDS: close() waits up to SECONDS for unsent data; with 0 it sends RST at once."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, seconds))


def close_socket(ev, sock, shutdown_write=False):
    """close() SOCK (or shutdown(SHUT_WR) it) and report a `close` event with what the kernel held then.

    how: `fin` (a plain close: the kernel sends FIN, or RST when received data was left unread),
    `abort` (SO_LINGER on with 0 s: RST, whatever is queued is dropped), `shutdown-write` (FIN sent,
    the socket still reads). state/unread/unsent are read just before the call.
    """
    try:
        state, q = tcp_info(sock)["state"], queues(sock)
        unread, unsent = q["inq"], q["outq"]
    except OSError:
        state = unread = unsent = None
    onoff, seconds = struct.unpack("ii", sock.getsockopt(socket.SOL_SOCKET, socket.SO_LINGER, 8))
    linger = seconds if onoff else None
    how = "shutdown-write" if shutdown_write else ("abort" if linger == 0 else "fin")
    local, peer = endpoints(sock)
    err = state_after = None
    t0 = time.monotonic()
    try:
        if shutdown_write:
            sock.shutdown(socket.SHUT_WR)
            state_after = tcp_info(sock)["state"]
        else:
            sock.close()
    except OSError as e:
        err = e
    return ev.syscall("close", "shutdown" if shutdown_write else "close", -1 if err else 0, err=err,
                      local=local, peer=peer, how=how, state=state, state_after=state_after, unread=unread,
                      unsent=unsent, linger=linger, blocked_s=round(time.monotonic() - t0, 6))


CLOSE_EVENT = {
    "doc": "the program closed a connection (close()) or shut down its sending side (shutdown(SHUT_WR))",
    "modes": None,
    "fields": {
        "how": ["str", "fin (plain close(): FIN, or RST when received data was left unread), abort "
                       "(SO_LINGER 0 s: RST), or shutdown-write (FIN sent, the socket still reads)"],
        "state": ["str", "the TCP state just before the call (tcp_info); CLOSE: the peer had reset it"],
        "state_after": ["str", "after shutdown(): the TCP state right after it (FIN_WAIT1: the FIN is out); "
                               "null after close()"],
        "unread": ["int", "bytes received and not read (SIOCINQ) just before the call"],
        "unsent": ["int", "bytes written and not yet acknowledged (SIOCOUTQ) just before the call"],
        "linger": ["int", "the socket's SO_LINGER seconds, null when SO_LINGER is off"],
        "blocked_s": ["float", "seconds the call took (close() waits up to SO_LINGER for unsent data)"],
    },
}
ERROR_EVENT = {
    "doc": "a system call failed and the program stopped",
    "modes": None,
    "fields": {"message": ["str", "the error as the program saw it"]},
}


class Stop(Exception):
    """Raised by SIGTERM/SIGINT so that a guest writes its summary and exits 0."""


def stop_on_signals():
    def handler(signum, frame):
        raise Stop(signal.Signals(signum).name)
    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def stop_after(seconds):
    """Raise Stop('duration') in the main thread after SECONDS, wherever it is blocked."""
    def handler(signum, frame):
        raise Stop("duration")
    signal.signal(signal.SIGALRM, handler)
    signal.setitimer(signal.ITIMER_REAL, seconds)


# -- argument types -------------------------------------------------------------------------------
# Every option of every guest has one of these as its argparse `type=`. Each checks a finite value in a
# documented range (a scenario file is untrusted input: `write-size: 1e9` would allocate a gigabyte as
# root, `nan` passes every comparison) and carries its schema as `.schema`, which the lab turns into the
# scenario-file schema and docs/guests.md prints: one source of truth for what each flag accepts.

_INT = re.compile(r"-?[0-9]+")
_FLOAT = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_PORT_RE = r"(?:[1-9][0-9]{0,3}|[1-5][0-9]{4}|6[0-4][0-9]{3}|65[0-4][0-9]{2}|655[0-2][0-9]|6553[0-5])"
_IPV4_RE = r"(?:(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\.){3}(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])"
_HOST_PLACEHOLDER_RE = r"\{[a-z0-9][a-z0-9-]*\}"
MiB = 1 << 20


def _typed(check, name, schema, doc):
    check.__name__ = name          # argparse names the type in its own messages
    check.__doc__ = doc
    check.schema = schema
    return check


def integer(minimum, maximum, name, doc):
    """An argparse type: a whole number in [MINIMUM, MAXIMUM]."""
    def check(text):
        text = str(text).strip()
        if not _INT.fullmatch(text):
            raise argparse.ArgumentTypeError(f"expected a whole number {minimum}-{maximum} ({doc}), got {text!r}")
        value = int(text)
        if not minimum <= value <= maximum:
            raise argparse.ArgumentTypeError(f"{value} is out of range: {name} must be {minimum}-{maximum} ({doc})")
        return value
    return _typed(check, name, {"type": "int", "minimum": minimum, "maximum": maximum}, doc)


def real(minimum, maximum, name, doc):
    """An argparse type: a finite number in [MINIMUM, MAXIMUM] (NaN and infinity refused)."""
    def check(text):
        text = str(text).strip()
        value = float(text) if _FLOAT.fullmatch(text) else None
        if value is None or not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"expected a number {minimum:g}-{maximum:g} ({doc}), got {text!r}")
        if not minimum <= value <= maximum:
            raise argparse.ArgumentTypeError(f"{value:g} is out of range: {name} must be {minimum:g}-{maximum:g} ({doc})")
        return value
    return _typed(check, name, {"type": "float", "minimum": minimum, "maximum": maximum}, doc)


def text(pattern, max_length, name, doc):
    """An argparse type: a string matching PATTERN, at most MAX_LENGTH characters."""
    compiled = re.compile(pattern)

    def check(value):
        value = str(value)
        if len(value) > max_length or not compiled.fullmatch(value):
            raise argparse.ArgumentTypeError(f"{value[:40]!r} is not {doc}")
        return value
    return _typed(check, name, {"type": "str", "pattern": pattern, "max_length": max_length}, doc)


def _hostport(text_):
    """HOST:PORT after the lab substituted {HOST}: an IPv4 address and a port -> (host, port)."""
    value = str(text_).strip()
    m = re.fullmatch(f"({_IPV4_RE}):({_PORT_RE})", value)
    if not m:
        if re.search(_HOST_PLACEHOLDER_RE, value):
            raise argparse.ArgumentTypeError(f"{value!r}: no host by that name in this network")
        raise argparse.ArgumentTypeError(f"expected HOST:PORT (an IPv4 address or {{host}}, and a port "
                                         f"1-65535), got {value[:40]!r}")
    return value


HOSTPORT = _typed(_hostport, "HOST:PORT", {"type": "str", "pattern": f"(?:{_IPV4_RE}|{_HOST_PLACEHOLDER_RE}):{_PORT_RE}",
                                           "max_length": 64, "placeholder": "host"},
                  "an address and port: 10.0.0.1:9000, or {h1}:9000 in a scenario (the lab puts in h1's address)")

CLOCK_MAX = 1e9     # CLOCK_MONOTONIC seconds since boot: 30 years


_CLOCK_NUMBER = real(0, CLOCK_MAX, "clock time", "CLOCK_MONOTONIC seconds")


def _clock(text_):
    value = _CLOCK_NUMBER(text_)
    if value - time.monotonic() > 600:
        raise argparse.ArgumentTypeError(f"{value:g} is more than 600 s in the future (now {time.monotonic():.3f})")
    return value


CLOCK = _typed(_clock, "clock time", {"type": "float", "minimum": 0, "maximum": CLOCK_MAX, "placeholder": "t0"},
               "a CLOCK_MONOTONIC time, at most 600 s ahead: {t0+0.5} in a scenario (the timeline's start + 0.5 s)")
PORT = integer(1, 65535, "port", "a TCP port")
SIZE = integer(0, 64 * MiB, "size", "bytes, up to 64 MiB")
CHUNK = integer(1, 64 * MiB, "chunk", "bytes per call, 1 to 64 MiB")
COUNT = integer(0, 100000, "count", "a count")
SECONDS = real(0, 600, "seconds", "seconds")
TIMEOUT = real(0.01, 600, "timeout", "seconds, 0.01 to 600")
RATE = real(0, 1e6, "rate", "per second")
LINGER = integer(0, 600, "linger", "whole seconds for SO_LINGER; 0: close() sends RST")
IPV4 = text(_IPV4_RE, 15, "address", "an IPv4 address")
PRINTABLE = text(r"[ -~\t\n]*", 4096, "text", "printable ASCII text, at most 4096 characters")
NAME = text(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,31}", 32, "name", "a name: letters, digits, _ . -, at most 32")


def parse_hostport(value):
    """'10.0.0.1:9000' (checked by HOSTPORT) -> ('10.0.0.1', 9000)."""
    host, _, port = HOSTPORT(value).rpartition(":")
    return host, int(port)


# Each program declares what it prints as plain data, read by the lab (its event schema) and gendocs.py:
#   EVENTS = {NAME: {"doc": one line, "modes": [client modes it is printed in] or None (any),
#                    "fields": {FIELD: [TYPE, meaning] or [TYPE, meaning, [modes that print it]]}}}
# TYPE is int, float, bool or str; any value may be null (not applicable, not measured). The fields
# below are common to every event (those of a system call only where the event reports one).
COMMON_FIELDS = {
    "t": ["float", "CLOCK_MONOTONIC in seconds: one clock for every host of the machine, so events line up"],
    "prog": ["str", "the program: server, client or synflood"],
    "event": ["str", "what happened (the event's name)"],
    "local": ["str", "ADDR:PORT of this end of the socket (events about a socket)"],
    "peer": ["str", "ADDR:PORT of the other end, null when not connected (events about a socket)"],
    "syscall": ["str", "the system call observed: listen, accept, connect, send, recv, close, shutdown..."],
    "result": ["int", "what it returned: bytes, a descriptor, 0 at EOF, -1 on error"],
    "errno": ["str", "the errno name when it failed (EAGAIN, ECONNREFUSED, ECONNRESET, EPIPE, ETIMEDOUT), else null"],
}
SUMMARY_ERROR_FIELDS = {
    "errors": ["int", "system calls that failed with an errno other than EAGAIN/EINPROGRESS (0: no error)"],
    "last_errno": ["str", "the errno name of the last of those failures, null when there was none"],
}
NOT_ERRORS = ("EAGAIN", "EINPROGRESS")


def monotonic():
    return time.monotonic()


def stamp_payload(size, t=None):
    """SIZE bytes starting with the sender's monotonic time, so a reader can time its wake-up."""
    head = b"TS%.9f\n" % (time.monotonic() if t is None else t)
    return (head + b"x" * max(0, size - len(head)))[:max(size, len(head))]


def read_stamp(data):
    """The sender's monotonic time at the start of DATA, or None."""
    if data.startswith(b"TS"):
        end = data.find(b"\n")
        if end > 2:
            try:
                return float(data[2:end])
            except ValueError:
                return None
    return None


def pid():
    return os.getpid()
