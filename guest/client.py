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
           its data, see server --send) how fast the reader wakes after the data was sent.

Events (JSON Lines on stdout, see docs/guests.md): connect, reply, write, eagain, queues, read, eof,
summary.

Examples, in a host:
  python3 guest/client.py connect 10.0.0.1:9000 --count 10 --timeout 3
  python3 guest/client.py write 10.0.0.1:9000 --nonblocking --write-size 65536 --duration 3
"""
import argparse
import selectors
import socket
import sys
import time

import kernel
from kernel import Events, Stop


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="client.py", description=__doc__.split("\n\n")[0],
                                epilog=__doc__.split("\n\n", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("mode", choices=("connect", "write", "read"))
    p.add_argument("server", help="HOST:PORT, e.g. 10.0.0.1:9000")
    g = p.add_argument_group("connect")
    g.add_argument("--count", type=kernel.nonneg_int, default=1, help="connections to open")
    g.add_argument("--parallel", type=kernel.nonneg_int, default=0, help="at most this many connecting at once (0: all)")
    g.add_argument("--rate", type=kernel.nonneg_float, default=0.0, help="start this many connections per second instead")
    g.add_argument("--timeout", type=kernel.nonneg_float, default=5.0, help="give up on a connection after SEC (outcome timeout)")
    g.add_argument("--request", type=kernel.nonneg_int, default=0, help="send this many bytes once connected, then wait for a reply")
    g.add_argument("--hold", type=kernel.nonneg_float, default=0.0, help="keep each connection open SEC before closing it")
    g.add_argument("--watch", type=kernel.nonneg_float, default=0.05,
                   help="after connecting, watch SEC for a RST (tcp_abort_on_overflow) before counting it connected")
    g = p.add_argument_group("write")
    g.add_argument("--sndbuf", type=kernel.nonneg_int, help="SO_SNDBUF to ask for (the kernel doubles it)")
    g.add_argument("--write-size", type=kernel.nonneg_int, default=65536, help="bytes asked per send()")
    g.add_argument("--nonblocking", action="store_true", help="O_NONBLOCK: send() returns EAGAIN instead of blocking")
    g.add_argument("--total", type=kernel.nonneg_int, default=0, help="stop after this many bytes accepted (0: until --duration)")
    g.add_argument("--delay", type=kernel.nonneg_float, default=0.0, help="wait SEC after connecting before the first write")
    g.add_argument("--stamp", action="store_true", help="start each write with the send time (for wake-up latency)")
    g.add_argument("--pause", type=kernel.nonneg_float, default=0.0, help="sleep SEC between writes")
    g = p.add_argument_group("read")
    g.add_argument("--read-size", type=kernel.nonneg_int, default=65536)
    p.add_argument("--start-at", type=kernel.nonneg_float, default=0.0,
                   help="begin at this CLOCK_MONOTONIC time (shared by all hosts): several clients burst together")
    p.add_argument("--duration", type=kernel.nonneg_float, default=0.0, help="stop after SEC (default: when the work is done)")
    p.add_argument("--linger", type=kernel.nonneg_float, default=0.0, help="after the work, stay connected SEC before closing")
    return p.parse_args(argv)


class Conn:
    """One connection attempt of the connect mode, moving connecting -> waiting reply -> done."""

    def __init__(self, index, target, args):
        self.index, self.args = index, args
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
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
    results.update(connected=0, refused=0, reset=0, timeout=0, error=0)
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
    stats.update(results, attempts=args.count, max_latency_s=round(lat[-1], 6) if lat else None,
                 median_latency_s=round(lat[len(lat) // 2], 6) if lat else None)


def open_connection(args, ev, target):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if args.sndbuf:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, args.sndbuf)
    t0 = time.monotonic()
    try:
        s.settimeout(args.timeout)
        s.connect(target)
    except OSError as e:
        ev.syscall("connect", "connect", -1, err=e if e.errno else OSError(110, ""), outcome="failed",
                   latency_s=round(time.monotonic() - t0, 6))
        raise
    s.settimeout(None)
    ev.syscall("connect", "connect", 0, sock=s, outcome="connected", latency_s=round(time.monotonic() - t0, 6),
               sndbuf_asked=args.sndbuf, **kernel.buffer_sizes(s))
    return s


def write_mode(args, ev, target, stats):
    s = open_connection(args, ev, target)
    if args.delay:
        time.sleep(args.delay)
    s.setblocking(not args.nonblocking)
    stats.update({"writes": 0, "partial_writes": 0, "eagain": 0, "accepted": 0, "max_blocked_s": 0.0,
             "blocked_total_s": 0.0, "first_eagain_after": None})
    payload = b"x" * args.write_size
    last_queue = 0.0
    t0 = None      # set while inside send(): a stop there must still count the time blocked
    try:
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
                select_wait(s)
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
    except (BrokenPipeError, ConnectionResetError) as e:
        ev.syscall("write", "send", -1, err=e, sock=s)
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
        if args.linger:
            time.sleep(args.linger)
        s.close()


def select_wait(s):
    import select
    select.select([], [s], [], 0.05)


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
    stats.update({"reads": 0, "bytes": 0, "partial_reads": 0, "max_blocked_s": 0.0, "max_wake_latency_s": None})
    while True:
        t0 = time.monotonic()
        data = s.recv(args.read_size)
        blocked = time.monotonic() - t0
        if not data:
            ev.syscall("eof", "recv", 0, sock=s, blocked_s=round(blocked, 6))
            break
        stats["reads"] += 1
        stats["bytes"] += len(data)
        stats["partial_reads"] += len(data) < args.read_size
        stats["max_blocked_s"] = max(stats["max_blocked_s"], round(blocked, 6))
        sent_at = kernel.read_stamp(data)
        extra = {}
        if sent_at is not None:
            extra["wake_latency_s"] = round(time.monotonic() - sent_at, 6)
            stats["max_wake_latency_s"] = max(stats["max_wake_latency_s"] or 0, extra["wake_latency_s"])
        ev.syscall("read", "recv", len(data), sock=s, asked=args.read_size, got=len(data),
                   partial=len(data) < args.read_size, blocked_s=round(blocked, 6), **extra)
    s.close()


MODES = {"connect": connect_mode, "write": write_mode, "read": read_mode}


def main(argv=None):
    args = parse_args(argv)
    ev = Events("client")
    kernel.stop_on_signals()
    if args.duration:
        kernel.stop_after(args.duration)
    host, port = kernel.parse_hostport(args.server, default_host="127.0.0.1")
    stats, reason = {}, "done"
    try:
        if args.start_at:
            time.sleep(max(0.0, args.start_at - time.monotonic()))
        MODES[args.mode](args, ev, (host, port), stats)
    except Stop as e:
        reason = str(e)
    except OSError as e:
        ev.syscall("error", args.mode, -1, err=e, message=str(e))
        ev.emit("summary", mode=args.mode, reason="error", **stats)
        return 1
    ev.emit("summary", mode=args.mode, reason=reason, **stats)
    return 0


if __name__ == "__main__":
    sys.exit(main())
