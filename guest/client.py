#!/usr/bin/env python3
"""tcplab client: connect, write or read against a server, reporting what the kernel did.

Modes (the first argument):
  connect  open --count connections, --parallel at a time (default: all at once, non-blocking) or
           at --rate per second. Each ends as connected, refused, reset or timeout, with its latency.
           With --request the client sends that many bytes and waits for a reply (a request/response
           client); connections are held --hold seconds, then closed.
  write    one connection; write --write-size bytes per call, blocking or --nonblocking, with
           --sndbuf. Reports partial writes (returned < asked), EAGAIN, time blocked in write, and
           bytes the kernel accepted against bytes the peer acknowledged (tcp_info, SIOCOUTQ).
  read     one connection; blocking reads, reporting how long each waits and (when the sender stamped
           its data, e.g. server.py --send 3000 --stamp) how fast the reader wakes after the data was sent.

Closing (write and read modes), in this order once the work is done:
  --shutdown     shutdown(SHUT_WR), a half-close: FIN to the server while this side keeps reading
                 until the server closes (write mode: after the writes; read mode: right after connecting).
  --keep-open    stay connected SEC (formerly --linger, which still works; it is not SO_LINGER).
  --so-linger    SO_LINGER on with SEC (also on each connection of the connect mode); --so-linger 0
                 makes close() an abortive close: RST instead of FIN, the peer's recv() fails with
                 ECONNRESET.

Events (JSON Lines on stdout, docs/guests.md lists every field): connect, reply, write, eagain, queues,
read, eof, close, error, summary.

Examples, in a host:
  python3 guest/client.py connect 10.0.0.1:9000 --count 10 --timeout 3
  python3 guest/client.py write 10.0.0.1:9000 --nonblocking --write-size 65536 --duration 3
  python3 guest/client.py write 10.0.0.1:9000 --total 100000 --keep-open 0.5 --so-linger 0
"""
import argparse
import select
import selectors
import socket
import sys
import time

import kernel
from kernel import Events, Stop

def build_parser():
    p = argparse.ArgumentParser(prog="client.py", description=__doc__.split("\n\n")[0],
                                epilog=__doc__.split("\n\n", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("mode", choices=("connect", "write", "read"), help="what to do (above)")
    p.add_argument("server", type=kernel.HOSTPORT, help="HOST:PORT of the server, e.g. 10.0.0.1:9000 ({h1}:9000 in a scenario)")
    g = p.add_argument_group("connect")
    g.add_argument("--count", type=kernel.COUNT, default=1, help="connections to open")
    g.add_argument("--parallel", type=kernel.COUNT, default=0, help="at most this many connecting at once (0: all)")
    g.add_argument("--rate", type=kernel.RATE, default=0.0, help="start this many connections per second instead (0: all at once)")
    g.add_argument("--timeout", type=kernel.TIMEOUT, default=5.0,
                   help="give up on a connection after SEC (outcome timeout; write/read modes: the connect's timeout)")
    g.add_argument("--request", type=kernel.SIZE, default=0, help="send this many bytes once connected, then wait for a reply")
    g.add_argument("--hold", type=kernel.SECONDS, default=0.0, help="keep each connection open SEC before closing it")
    g.add_argument("--watch", type=kernel.SECONDS, default=0.05,
                   help="after connecting, watch SEC for a RST (tcp_abort_on_overflow) before counting it connected")
    g = p.add_argument_group("write")
    g.add_argument("--sndbuf", type=kernel.SIZE, help="SO_SNDBUF to ask for (the kernel doubles it)")
    g.add_argument("--write-size", type=kernel.CHUNK, default=65536, help="bytes asked per send()")
    g.add_argument("--nonblocking", action="store_true", help="O_NONBLOCK: send() returns EAGAIN instead of blocking")
    g.add_argument("--total", type=kernel.SIZE, default=0, help="stop after this many bytes accepted (0: until --duration)")
    g.add_argument("--delay", type=kernel.SECONDS, default=0.0, help="wait SEC after connecting before the first write")
    g.add_argument("--stamp", action="store_true", help="start each write with the send time (for wake-up latency)")
    g.add_argument("--pause", type=kernel.SECONDS, default=0.0, help="sleep SEC between writes")
    g = p.add_argument_group("read")
    g.add_argument("--read-size", type=kernel.CHUNK, default=65536, help="bytes asked per recv()")
    g = p.add_argument_group("closing (write and read modes)")
    g.add_argument("--shutdown", action="store_true",
                   help="half-close after the work: shutdown(SHUT_WR) sends FIN, then read until the server closes")
    g.add_argument("--keep-open", "--linger", dest="keep_open", type=kernel.SECONDS, default=0.0,
                   help="after the work, stay connected SEC before closing (--linger is the old name; not SO_LINGER)")
    g.add_argument("--so-linger", type=kernel.LINGER,
                   help="SO_LINGER on with SEC (also in connect mode); 0: close() sends RST, an abortive close")
    p.add_argument("--start-at", type=kernel.CLOCK, default=0.0,
                   help="begin at this CLOCK_MONOTONIC time (shared by all hosts): several clients burst together")
    p.add_argument("--duration", type=kernel.SECONDS, default=0.0, help="stop after SEC (0: when the work is done)")
    return p


def parse_args(argv=None):
    return build_parser().parse_args(argv)


_READ_FIELDS = {
    "asked": ["int", "bytes asked"],
    "got": ["int", "bytes returned"],
    "partial": ["bool", "got < asked"],
    "blocked_s": ["float", "seconds recv() waited"],
    "total": ["int", "bytes read so far"],
    "wake_latency_s": ["float", "seconds from the writer's send to this read returning (stamped data only)"],
}
W, R, C = ["write"], ["read"], ["connect"]

# What the client prints, by mode: the lab derives its event schema from this, docs/guests.md lists it.
# A field is [type, meaning] or, when only some modes print it, [type, meaning, modes].
EVENTS = {
    "connect": {"doc": "a connection attempt ended: connected or failed", "modes": None, "fields": {
        "outcome": ["str", "connect mode: connected, refused, reset, timeout or error; write/read: connected or failed"],
        "latency_s": ["float", "seconds from connect() to the outcome (connect mode, with --request: to the reply)"],
        "index": ["int", "which connection (0 to --count - 1)", C],
        "phase": ["str", "where it ended: connect, handshake (reset while --watch), request, reply, hold", C],
        "total_s": ["float", "seconds from connect() to this event", C],
        "sndbuf_asked": ["int", "the --sndbuf given (the student's input), null without it", W + R],
        "rcvbuf": ["int", "SO_RCVBUF of the connected socket", W + R],
        "sndbuf": ["int", "SO_SNDBUF the kernel set (doubled, capped by wmem_max)", W + R],
        "congestion": ["str", "the socket's congestion control (TCP_CONGESTION)", W + R]}},
    "reply": {"doc": "with --request: the server's reply arrived", "modes": C, "fields": {
        "index": ["int", "which connection"],
        "latency_s": ["float", "seconds from connect() to the reply"]}},
    "write": {"doc": "one send(): the first three, partial ones, ones that blocked > 10 ms, failures "
                     "(EPIPE/ECONNRESET: the server reset or closed)", "modes": W, "fields": {
        "asked": ["int", "bytes asked"],
        "partial": ["bool", "returned < asked"],
        "blocked_s": ["float", "seconds send() waited"],
        "accepted": ["int", "bytes the kernel accepted so far"],
        "interrupted": ["bool", "true when the run ended inside this send() (result null)"]}},
    "eagain": {"doc": "the first EAGAIN (--nonblocking): the write queue was full", "modes": W, "fields": {
        "asked": ["int", "bytes asked"],
        "accepted": ["int", "bytes the kernel accepted before it"],
        "inq": ["int", "SIOCINQ"], "outq": ["int", "SIOCOUTQ: bytes written, not acknowledged"],
        "notsent": ["int", "bytes written, not yet sent"]}},
    "queues": {"doc": "the write queue against what the peer acknowledged, every 0.2 s and at the end", "modes": W,
               "fields": {
        "accepted": ["int", "bytes the kernel took from send()"],
        "acked": ["int", "bytes the peer acknowledged (tcp_info bytes_acked)"],
        "unacked": ["int", "SIOCOUTQ: bytes in the write queue"],
        "notsent": ["int", "bytes not yet sent at all"],
        "snd_wnd": ["int", "the peer's advertised window (tcp_info)"],
        "probes": ["int", "zero-window probes unanswered (tcp_info)"],
        "backoff": ["int", "retransmission backoff (tcp_info)"]}},
    "read": {"doc": "one recv(): what it returned, or its errno (ECONNRESET: the server reset the connection); "
                    "write mode reads only after --shutdown", "modes": W + R, "fields": dict(_READ_FIELDS)},
    "eof": {"doc": "recv() returned 0: the server closed (or half-closed) its side", "modes": W + R,
            "fields": {"asked": ["int", "bytes asked"], "blocked_s": ["float", "seconds recv() waited"]}},
    "close": dict(kernel.CLOSE_EVENT, modes=W + R),
    "error": dict(kernel.ERROR_EVENT, modes=None),
    "summary": {"doc": "the last event, at exit (also after SIGTERM/SIGINT or --duration)", "modes": None, "fields": {
        "mode": ["str", "connect, write or read"],
        "reason": ["str", "done, duration, SIGTERM, SIGINT or error"],
        "attempts": ["int", "connections attempted (--count)", C],
        "connected": ["int", "connections established", C],
        "refused": ["int", "answered by RST (nothing listening)", C],
        "reset": ["int", "reset after connecting (tcp_abort_on_overflow, or while waiting for a reply)", C],
        "timeout": ["int", "no answer within --timeout", C],
        "error": ["int", "other failures", C],
        "max_latency_s": ["float", "the slowest established connection, null when none", C],
        "median_latency_s": ["float", "the median established connection, null when none", C],
        "writes": ["int", "send() calls that returned", W],
        "partial_writes": ["int", "of those, how many took less than asked", W],
        "eagain": ["int", "send() calls that returned EAGAIN", W],
        "first_eagain_after": ["int", "bytes accepted before the first EAGAIN, null when none", W],
        "accepted": ["int", "bytes the kernel accepted from send()", W],
        "acked": ["int", "bytes the server acknowledged (tcp_info bytes_acked)", W],
        "outq": ["int", "SIOCOUTQ at the end: bytes written, not acknowledged", W],
        "notsent": ["int", "bytes not yet sent at the end", W],
        "blocked_total_s": ["float", "seconds spent blocked in send()", W],
        "max_blocked_s": ["float", "the longest send() (write) or recv() (read) wait", W + R],
        "reads": ["int", "recv() calls that returned data (write mode: after --shutdown)", W + R],
        "bytes_read": ["int", "bytes read after --shutdown", W],
        "bytes": ["int", "bytes read", R],
        "partial_reads": ["int", "reads that returned less than asked", R],
        "max_wake_latency_s": ["float", "the slowest wake-up after stamped data, null without stamps", R],
        **kernel.SUMMARY_ERROR_FIELDS}},
}


class Conn:
    """One connection attempt of the connect mode, moving connecting -> waiting reply -> done."""

    def __init__(self, index, target, args):
        self.index, self.args = index, args
        self.sock = kernel.tcp_socket()
        if args.so_linger is not None:
            kernel.set_linger(self.sock, args.so_linger)
        self.sock.setblocking(False)
        self.started = time.monotonic()
        self.connected_at = None
        self.outcome = None
        err = self.sock.connect_ex(target)
        self.immediate_err = err if err not in (0, 115) else None   # 115: EINPROGRESS


def connect_mode(args, ev, target, stats):
    sel = selectors.DefaultSelector()
    pending = list(range(args.count))
    live = {}
    results = stats
    latencies = []
    next_start = time.monotonic()
    held = []

    def finish(c, outcome, err=None, phase="connect"):
        c.outcome = outcome
        results[outcome] += 1
        latency = (c.connected_at or time.monotonic()) - c.started
        if outcome == "connected":
            latencies.append(latency)
        ev.syscall("connect", "connect", 0 if outcome == "connected" else -1, err=err, sock=c.sock,
                   index=c.index, outcome=outcome, phase=phase, latency_s=round(latency, 6),
                   total_s=round(time.monotonic() - c.started, 6))
        try:
            sel.unregister(c.sock)
        except (KeyError, ValueError):
            pass
        live.pop(c.index, None)
        if outcome == "connected" and args.hold:
            held.append((time.monotonic() + args.hold, c))
        else:
            c.sock.close()

    while pending or live:
        now = time.monotonic()
        room = (args.parallel or args.count) - len(live)
        while pending and room > 0 and (not args.rate or now >= next_start):
            c = Conn(pending.pop(0), target, args)
            room -= 1
            next_start += 1.0 / args.rate if args.rate else 0
            if c.immediate_err:
                finish(c, "refused" if c.immediate_err == 111 else "error", OSError(c.immediate_err, ""))
                continue
            live[c.index] = c
            sel.register(c.sock, selectors.EVENT_WRITE, c)
        for key, _ in sel.select(0.01):
            c = key.data
            if c.connected_at is None:
                # SO_ERROR reads and clears the pending error: only while connecting, or a later
                # ECONNRESET would be lost and recv() would see a plain EOF.
                err = c.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                if err:
                    name = kernel.errno_name(err)
                    outcome = {"ECONNREFUSED": "refused", "ECONNRESET": "reset", "ETIMEDOUT": "timeout"}.get(name, "error")
                    finish(c, outcome, OSError(err, ""))
                    continue
                c.connected_at = time.monotonic()
                if not args.request:
                    # Watch a moment for a reset: tcp_abort_on_overflow answers the handshake's ACK with RST.
                    sel.modify(c.sock, selectors.EVENT_READ, c)
                    continue
                try:
                    c.sock.send(b"r" * args.request)
                except OSError as e:
                    finish(c, "reset" if kernel.errno_name(e) in ("ECONNRESET", "EPIPE") else "error", e, "request")
                    continue
                sel.modify(c.sock, selectors.EVENT_READ, c)
                continue
            try:
                data = c.sock.recv(4096)
            except OSError as e:
                finish(c, "reset" if kernel.errno_name(e) == "ECONNRESET" else "error", e,
                       "reply" if args.request else "handshake")
                continue
            if args.request:
                ev.syscall("reply", "recv", len(data), sock=c.sock, index=c.index,
                           latency_s=round(time.monotonic() - c.started, 6))
            finish(c, "connected", phase="reply" if args.request else "hold")
        now = time.monotonic()
        for c in list(live.values()):
            if c.connected_at is not None and not args.request and now - c.connected_at >= args.watch:
                finish(c, "connected", phase="hold")
            elif now - c.started > args.timeout:
                finish(c, "timeout", OSError(110, ""), "reply" if c.connected_at else "connect")
    while held:
        until, c = held.pop(0)
        time.sleep(max(0.0, until - time.monotonic()))
        c.sock.close()
    lat = sorted(latencies)
    stats.update(max_latency_s=round(lat[-1], 6) if lat else None,
                 median_latency_s=round(lat[len(lat) // 2], 6) if lat else None)


def open_connection(args, ev, target):
    s = kernel.tcp_socket()
    if args.sndbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, args.sndbuf)
    if args.so_linger is not None:
        kernel.set_linger(s, args.so_linger)
    t0 = time.monotonic()
    try:
        s.settimeout(args.timeout)
        s.connect(target)
    except OSError as e:
        ev.syscall("connect", "connect", -1, err=e if e.errno else OSError(110, ""), outcome="failed",
                   latency_s=round(time.monotonic() - t0, 6))
        s.close()
        raise
    s.settimeout(None)
    ev.syscall("connect", "connect", 0, sock=s, outcome="connected", latency_s=round(time.monotonic() - t0, 6),
               sndbuf_asked=args.sndbuf, **kernel.buffer_sizes(s))
    return s


def read_to_eof(args, ev, s, counts):
    """Blocking reads until EOF (True) or an error such as ECONNRESET (False); COUNTS gets reads, bytes..."""
    total = 0
    while True:
        t0 = time.monotonic()
        try:
            data = s.recv(args.read_size)
        except OSError as e:     # ECONNRESET: the server reset the connection; counted in summary.errors
            ev.syscall("read", "recv", -1, err=e, sock=s, asked=args.read_size)
            return False
        blocked = time.monotonic() - t0
        if not data:
            ev.syscall("eof", "recv", 0, sock=s, asked=args.read_size, blocked_s=round(blocked, 6))
            return True
        total += len(data)
        counts["reads"] += 1
        counts["bytes"] += len(data)
        counts["partial_reads"] += len(data) < args.read_size
        counts["max_blocked_s"] = max(counts["max_blocked_s"], round(blocked, 6))
        sent_at = kernel.read_stamp(data)
        extra = {}
        if sent_at is not None:
            extra["wake_latency_s"] = round(time.monotonic() - sent_at, 6)
            counts["max_wake_latency_s"] = max(counts["max_wake_latency_s"] or 0, extra["wake_latency_s"])
        ev.syscall("read", "recv", len(data), sock=s, asked=args.read_size, got=len(data),
                   partial=len(data) < args.read_size, blocked_s=round(blocked, 6), total=total, **extra)


def end_connection(args, ev, s, counts, how, shutdown):
    """After the work (HOW: done, reset or stopped): SHUTDOWN and read to EOF, --keep-open, close."""
    if how == "done":
        if shutdown:
            kernel.close_socket(ev, s, shutdown_write=True)
            read_to_eof(args, ev, s, counts)
        if args.keep_open:
            time.sleep(args.keep_open)
    kernel.close_socket(ev, s)


def new_read_counts():
    return {"reads": 0, "bytes": 0, "partial_reads": 0, "max_blocked_s": 0.0, "max_wake_latency_s": None}


def write_mode(args, ev, target, stats):
    s = open_connection(args, ev, target)
    how = "stopped"    # until the loop ends by itself: a Stop (SIGTERM, --duration) closes at once
    t0 = None          # set while inside send(): a stop there must still count the time blocked
    try:
        if args.delay:
            time.sleep(args.delay)
        s.setblocking(not args.nonblocking)
        payload = b"x" * args.write_size
        last_queue = 0.0
        while not args.total or stats["accepted"] < args.total:
            size = min(args.write_size, args.total - stats["accepted"]) if args.total else args.write_size
            data = kernel.stamp_payload(size) if args.stamp else payload[:size]
            t0 = time.monotonic()
            try:
                n = s.send(data)
            except BlockingIOError as e:
                t0 = None
                stats["eagain"] += 1
                if stats["first_eagain_after"] is None:
                    stats["first_eagain_after"] = stats["accepted"]
                    ev.syscall("eagain", "send", -1, err=e, sock=s, asked=len(data), accepted=stats["accepted"],
                               **kernel.queues(s))
                select.select([], [s], [], 0.05)
                continue
            blocked = time.monotonic() - t0
            t0 = None
            stats["writes"] += 1
            stats["accepted"] += n
            stats["max_blocked_s"] = max(stats["max_blocked_s"], blocked)
            stats["blocked_total_s"] += blocked
            partial = n < len(data)
            stats["partial_writes"] += partial
            if partial or blocked > 0.01 or stats["writes"] <= 3:
                ev.syscall("write", "send", n, sock=s, asked=len(data), partial=partial,
                           blocked_s=round(blocked, 6), accepted=stats["accepted"])
            if time.monotonic() - last_queue > 0.2:
                report_queues(ev, s, stats)
                last_queue = time.monotonic()
            if args.pause:
                time.sleep(args.pause)
        how = "done"
    except OSError as e:      # EPIPE/ECONNRESET: the server reset or closed; counted in summary.errors
        t0 = None
        ev.syscall("write", "send", -1, err=e, sock=s, asked=args.write_size, accepted=stats["accepted"])
        how = "reset"
    finally:
        if t0 is not None:
            blocked = time.monotonic() - t0
            stats["max_blocked_s"] = max(stats["max_blocked_s"], blocked)
            stats["blocked_total_s"] += blocked
            ev.syscall("write", "send", None, sock=s, asked=args.write_size, interrupted=True,
                       blocked_s=round(blocked, 6), accepted=stats["accepted"])
        stats["blocked_total_s"] = round(stats["blocked_total_s"], 6)
        stats["max_blocked_s"] = round(stats["max_blocked_s"], 6)
        try:
            stats.update(report_queues(ev, s, stats))
        except OSError:
            pass
        s.setblocking(True)
        counts = new_read_counts()
        try:
            end_connection(args, ev, s, counts, how, args.shutdown)
        finally:
            stats.update(reads=counts["reads"], bytes_read=counts["bytes"])


def report_queues(ev, s, stats):
    info = kernel.tcp_info(s)
    q = kernel.queues(s)
    acked = max(0, info["bytes_acked"] - 1)   # bytes_acked counts the SYN
    fields = {"accepted": stats["accepted"], "acked": acked, "unacked": q["outq"], "notsent": q["notsent"],
              "snd_wnd": info["snd_wnd"], "probes": info["probes"], "backoff": info["backoff"]}
    ev.emit("queues", sock=s, **fields)
    return {"acked": acked, "outq": q["outq"], "notsent": q["notsent"]}


def read_mode(args, ev, target, stats):
    s = open_connection(args, ev, target)
    how = "stopped"
    try:
        if args.shutdown:     # half-close at once: the server sees EOF while it may still send
            kernel.close_socket(ev, s, shutdown_write=True)
        how = "done" if read_to_eof(args, ev, s, stats) else "reset"
    finally:
        end_connection(args, ev, s, stats, how, shutdown=False)     # a --shutdown was done above


MODES = {"connect": connect_mode, "write": write_mode, "read": read_mode}
# Every summary field of a mode is present from the start, so a check never reads a missing value.
INITIAL_STATS = {
    "connect": lambda a: {"attempts": a.count, "connected": 0, "refused": 0, "reset": 0, "timeout": 0, "error": 0,
                          "max_latency_s": None, "median_latency_s": None},
    "write": lambda a: {"writes": 0, "partial_writes": 0, "eagain": 0, "first_eagain_after": None, "accepted": 0,
                        "acked": 0, "outq": 0, "notsent": 0, "blocked_total_s": 0.0, "max_blocked_s": 0.0,
                        "reads": 0, "bytes_read": 0},
    "read": lambda a: new_read_counts(),
}


def main(argv=None):
    args = parse_args(argv)
    ev = Events("client")
    kernel.stop_on_signals()
    if args.duration:
        kernel.stop_after(args.duration)
    host, port = kernel.parse_hostport(args.server)
    stats, reason = INITIAL_STATS[args.mode](args), "done"
    try:
        if args.start_at:
            time.sleep(max(0.0, args.start_at - time.monotonic()))
        MODES[args.mode](args, ev, (host, port), stats)
    except Stop as e:
        reason = str(e)
    except OSError as e:
        ev.syscall("error", args.mode, -1, err=e, message=str(e))
        ev.summary(mode=args.mode, reason="error", **stats)
        return 1
    ev.summary(mode=args.mode, reason=reason, **stats)
    return 0


if __name__ == "__main__":
    sys.exit(main())
