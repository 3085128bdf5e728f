#!/usr/bin/env python3
"""tcplab server: listen, accept (or not) and read (or not), reporting what the kernel did.

Accept modes:
  never      listen() and never accept: the accept queue fills to backlog+1, further SYNs or
             handshake ACKs are dropped (the host's TcpExt.ListenOverflows/ListenDrops count them).
  immediate  accept connections and read them as --read-* says: with --io blocking one at a time (an
             iterative server), with select/epoll all at once.
  serial     the classic single-threaded server: accept one connection, read its request, spend
             --service-time on it, reply, close, then accept the next one.

I/O models (--io): blocking calls, select(), or epoll. With select/epoll the server drains the accept
queue before serving each request.

Reading: --read-size bytes per recv() (a partial read returns less), --read-pause between reads,
--stop-after BYTES then stop reading (the receive buffer fills: zero window), --resume-after SEC to
start again, or --never-read.

Events (JSON Lines on stdout, see docs/guests.md): listening, accepted, read (asked, got, partial,
blocked_s, wake_latency_s when the writer stamped its data), eof, reply, stop-reading,
resume-reading, accept-queue (with --queue-interval), summary.

Example, in a host:  python3 guest/server.py --port 9000 --backlog 4 --accept never
"""
import argparse
import select
import socket
import sys
import time

import kernel
from kernel import Events, Stop


def parse_args(argv=None):
    p = argparse.ArgumentParser(prog="server.py", description=__doc__.split("\n\n")[0],
                                epilog=__doc__.split("\n\n", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bind", default="0.0.0.0", help="address to listen on (default: all of this host's)")
    p.add_argument("--port", type=kernel.nonneg_int, default=9000)
    p.add_argument("--backlog", type=kernel.nonneg_int, default=128, help="listen() backlog; the kernel caps it at net.core.somaxconn")
    p.add_argument("--accept", choices=("never", "immediate", "serial"), default="immediate")
    p.add_argument("--service-time", type=kernel.nonneg_float, default=0.1, help="seconds per request in serial mode (default 0.1)")
    p.add_argument("--io", choices=("blocking", "select", "epoll"), default="blocking")
    p.add_argument("--rcvbuf", type=kernel.nonneg_int, help="SO_RCVBUF asked on the listener (inherited by accepted sockets)")
    p.add_argument("--read-size", type=kernel.nonneg_int, default=65536, help="bytes asked per recv()")
    p.add_argument("--read-pause", type=kernel.nonneg_float, default=0.0, help="seconds to sleep between reads")
    p.add_argument("--stop-after", type=kernel.nonneg_int, help="stop reading after this many bytes")
    p.add_argument("--resume-after", type=kernel.nonneg_float, help="seconds after stopping to start reading again")
    p.add_argument("--never-read", action="store_true", help="accept but never read")
    p.add_argument("--reply", default="ok\n", help="reply sent after serving a request in serial mode")
    p.add_argument("--queue-interval", type=kernel.nonneg_float, default=0.0,
                   help="report the listener's accept queue (tcp_info) every SEC seconds")
    p.add_argument("--duration", type=kernel.nonneg_float, default=0.0, help="exit after SEC seconds (default: until SIGTERM)")
    return p.parse_args(argv)


class Server:
    def __init__(self, args, events):
        self.args, self.ev = args, events
        self.total_read = 0
        self.partial_reads = 0
        self.reads = 0
        self.accepted = 0
        self.max_blocked = 0.0
        self.stopped_at = None
        self.max_queue = 0
        self.listener = None
        self.last_queue_report = 0.0

    # -- listening --------------------------------------------------------------------------
    def listen(self):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if self.args.rcvbuf:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.args.rcvbuf)
        s.bind((self.args.bind, self.args.port))
        s.listen(self.args.backlog)
        info = kernel.tcp_info(s)
        self.ev.syscall("listening", "listen", 0, sock=s, backlog_asked=self.args.backlog,
                        backlog=info["sacked"], rcvbuf_asked=self.args.rcvbuf,
                        rcvbuf=kernel.buffer_sizes(s)["rcvbuf"])
        self.listener = s

    def report_queue(self, force=False):
        if not self.args.queue_interval:
            return
        now = time.monotonic()
        if force or now - self.last_queue_report >= self.args.queue_interval:
            info = kernel.tcp_info(self.listener)
            self.max_queue = max(self.max_queue, info["unacked"])
            self.ev.emit("accept-queue", length=info["unacked"], backlog=info["sacked"])
            self.last_queue_report = now

    def accept(self):
        conn, peer = self.listener.accept()
        self.accepted += 1
        self.ev.syscall("accepted", "accept", conn.fileno(), sock=conn, **kernel.buffer_sizes(conn))
        return conn

    # -- reading ----------------------------------------------------------------------------
    def may_read(self):
        a = self.args
        if a.never_read:
            return False
        if a.stop_after is not None and self.total_read >= a.stop_after:
            if self.stopped_at is None:
                self.stopped_at = time.monotonic()
                self.ev.emit("stop-reading", total=self.total_read)
            if a.resume_after is not None and time.monotonic() - self.stopped_at >= a.resume_after:
                a.stop_after = None
                self.ev.emit("resume-reading", total=self.total_read)
                return True
            return False
        return True

    def read_once(self, conn, blocking=True):
        """One recv(); returns the bytes, b'' at EOF, None when it would block."""
        asked = self.args.read_size
        if self.args.stop_after is not None:
            asked = max(1, min(asked, self.args.stop_after - self.total_read))
        t0 = time.monotonic()
        try:
            data = conn.recv(asked)
        except BlockingIOError as e:
            self.ev.syscall("read", "recv", -1, err=e, sock=conn, asked=asked)
            return None
        except ConnectionResetError as e:
            self.ev.syscall("read", "recv", -1, err=e, sock=conn, asked=asked)
            return b""
        blocked = time.monotonic() - t0 if blocking else 0.0
        self.max_blocked = max(self.max_blocked, blocked)
        if not data:
            self.ev.syscall("eof", "recv", 0, sock=conn, asked=asked, blocked_s=round(blocked, 6))
            return b""
        self.reads += 1
        self.total_read += len(data)
        partial = len(data) < asked
        self.partial_reads += partial
        fields = {}
        sent_at = kernel.read_stamp(data)
        if sent_at is not None:
            fields["wake_latency_s"] = round(time.monotonic() - sent_at, 6)
        self.ev.syscall("read", "recv", len(data), sock=conn, asked=asked, got=len(data), partial=partial,
                        blocked_s=round(blocked, 6), total=self.total_read, **fields)
        if self.args.read_pause:
            time.sleep(self.args.read_pause)
        return data

    def read_until_eof(self, conn):
        """Blocking reader for one connection (immediate + blocking mode)."""
        while True:
            while not self.may_read():
                time.sleep(0.05)
            if self.read_once(conn) == b"":
                return

    def serve_request(self, conn, blocking=True):
        """Serial mode: read the request, spend the service time, reply, close."""
        data = self.read_once(conn, blocking)
        if data is None:
            return False
        if data:
            time.sleep(self.args.service_time)
            try:
                conn.sendall(self.args.reply.encode())
                self.ev.syscall("reply", "send", len(self.args.reply), sock=conn,
                                service_s=self.args.service_time)
            except OSError as e:
                self.ev.syscall("reply", "send", -1, err=e, sock=conn)
        conn.close()
        return True

    # -- main loops ---------------------------------------------------------------------------
    def run_blocking(self, deadline):
        a = self.args
        if a.accept == "never":
            while time.monotonic() < deadline:
                self.report_queue()
                time.sleep(min(0.05, a.queue_interval or 0.05))
            return
        if a.accept == "serial":
            while True:
                self.report_queue(force=True)
                conn = self.accept()
                self.serve_request(conn)
        while True:     # an iterative server: one connection at a time, to its end
            conn = self.accept()
            self.read_until_eof(conn)
            conn.close()

    def run_polling(self, deadline):
        """select/epoll: drain the accept queue, then serve or read whatever is ready."""
        a = self.args
        self.listener.setblocking(False)
        poller = Poller(a.io)
        if a.accept != "never":
            poller.register(self.listener)
        conns = {}
        while time.monotonic() < deadline:
            self.report_queue()
            reading = self.may_read()
            if not reading:
                time.sleep(0.02)     # level-triggered readiness would spin while reads are paused
            for fd in poller.wait(0.05 if reading else 0):
                if fd == self.listener.fileno():
                    while True:
                        try:
                            conn = self.accept()
                        except BlockingIOError:
                            break
                        conn.setblocking(False)
                        conns[conn.fileno()] = conn
                        poller.register(conn)
                    continue
                conn = conns.get(fd)
                if conn is None or not reading:
                    continue
                if a.accept == "serial":
                    if self.serve_request(conn, blocking=False):
                        poller.unregister(fd)
                        conns.pop(fd, None)
                    break   # one request per round: new connections are accepted first
                if self.read_once(conn, blocking=False) == b"":
                    poller.unregister(fd)
                    conns.pop(fd).close()

    def summary(self, reason):
        self.ev.emit("summary", reason=reason, accepted=self.accepted, reads=self.reads,
                     partial_reads=self.partial_reads, bytes=self.total_read,
                     max_blocked_s=round(self.max_blocked, 6), max_accept_queue=self.max_queue)


class Poller:
    """select() or epoll behind one small interface (file descriptors in, ready descriptors out)."""

    def __init__(self, kind):
        self.kind = kind
        self.fds = set()
        self.ep = select.epoll() if kind == "epoll" else None

    def register(self, sock):
        self.fds.add(sock.fileno())
        if self.ep:
            self.ep.register(sock.fileno(), select.EPOLLIN)

    def unregister(self, fd):
        self.fds.discard(fd)
        if self.ep:
            try:
                self.ep.unregister(fd)
            except OSError:
                pass

    def wait(self, timeout):
        if self.ep:
            return [fd for fd, _ in self.ep.poll(timeout)]
        if not self.fds:
            time.sleep(timeout)
            return []
        ready, _, _ = select.select(list(self.fds), [], [], timeout)
        return ready


def main(argv=None):
    args = parse_args(argv)
    ev = Events("server")
    kernel.stop_on_signals()
    server = Server(args, ev)
    reason = "done"
    try:
        server.listen()
        deadline = time.monotonic() + args.duration if args.duration else float("inf")
        if args.duration:
            kernel.stop_after(args.duration)
        if args.io == "blocking":
            server.run_blocking(deadline)
        else:
            server.run_polling(deadline)
    except Stop as e:
        reason = str(e)
    except OSError as e:
        ev.syscall("error", "socket", -1, err=e, message=str(e))
        reason = "error"
        server.summary(reason)
        return 1
    server.summary(reason)
    return 0


if __name__ == "__main__":
    sys.exit(main())
