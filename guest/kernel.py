"""What the guest programs share: JSON Lines events and the kernel's view of one socket.

Standard library only (guests start inside hosts with a bare interpreter and must start fast);
nothing here imports from lab/.

Every event is one JSON object on one line of stdout:
    {"t": 12.3456, "prog": "server", "event": "read", "syscall": "recv", "result": 1448,
     "errno": null, "local": "10.0.0.1:9000", "peer": "10.0.0.2:40312", ...}
`t` is CLOCK_MONOTONIC in seconds: the same clock in every host of one machine, so events of
different hosts can be put on one timeline.
"""
import errno as errno_mod
import fcntl
import json
import os
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
    return {"rcvbuf": sock.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF),
            "sndbuf": sock.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF)}


class Events:
    """Writes one JSON event per line; counts them for the summary."""

    def __init__(self, prog, out=None):
        self.prog = prog
        self.out = out or sys.stdout
        self.counts = {}

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
        return self.emit(event, sock=sock, syscall=syscall, result=result,
                         errno=errno_name(err) if err is not None else None, **fields)


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


def nonneg_int(text):
    """argparse type: a whole number >= 0 (sizes, counts, ports)."""
    value = int(text)
    if value < 0:
        raise ValueError(text)
    return value


def nonneg_float(text):
    """argparse type: seconds or a rate >= 0."""
    value = float(text)
    if value < 0:
        raise ValueError(text)
    return value


nonneg_int.__name__ = "non-negative integer"
nonneg_float.__name__ = "non-negative number"


def parse_hostport(text, default_host="0.0.0.0"):
    host, sep, port = text.rpartition(":")
    if not sep:
        return default_host, int(text)
    return host or default_host, int(port)


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
