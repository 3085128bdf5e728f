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
start again (counted from the stop, and never from before the first connection: a client that starts late
on a slow machine still meets the whole pause), or --never-read.

Sending and closing (immediate mode): --send BYTES on each connection, right after accept() or, with
--send-at eof, once the client has half-closed (its FIN made recv() return 0) and the server still
writes; --stamp puts the send time in each write (a client reader reports its wake-up latency);
--shutdown half-closes after sending (FIN to the client, reading goes on); --so-linger 0 makes each
close() an abortive close (RST instead of FIN).

Events (JSON Lines on stdout, docs/guests.md lists every field): listening, accepted, read, eof,
write, reply, close, stop-reading, resume-reading, accept-queue (with --queue-interval), error, summary.

Example, in a host:  python3 guest/server.py --port 9000 --backlog 4 --accept never
"""
import argparse
import select
import socket
import sys
import time

import kernel
from kernel import Events, Stop

SEND_CHUNK = 65536     # bytes per send() of --send


def build_parser():
    p = argparse.ArgumentParser(prog="server.py", description=__doc__.split("\n\n")[0],
                                epilog=__doc__.split("\n\n", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bind", type=kernel.IPV4, default="0.0.0.0", help="address to listen on (default: all of this host's)")
    p.add_argument("--port", type=kernel.PORT, default=9000, help="port to listen on")
    p.add_argument("--backlog", type=kernel.COUNT, default=128, help="listen() backlog; the kernel caps it at net.core.somaxconn")
    p.add_argument("--accept", choices=("never", "immediate", "serial"), default="immediate", help="accept mode (above)")
    p.add_argument("--service-time", type=kernel.SECONDS, default=0.1, help="seconds per request in serial mode")
    p.add_argument("--io", choices=("blocking", "select", "epoll"), default="blocking", help="I/O model (above)")
    p.add_argument("--rcvbuf", type=kernel.SIZE, help="SO_RCVBUF asked on the listener (inherited by accepted sockets)")
    p.add_argument("--read-size", type=kernel.CHUNK, default=65536, help="bytes asked per recv()")
    p.add_argument("--read-pause", type=kernel.SECONDS, default=0.0, help="seconds to sleep between reads")
    p.add_argument("--stop-after", type=kernel.SIZE, help="stop reading after this many bytes")
    p.add_argument("--resume-after", type=kernel.SECONDS, help="seconds after stopping (at the earliest, the first connection) to start reading again")
    p.add_argument("--never-read", action="store_true", help="accept but never read")
    p.add_argument("--reply", type=kernel.PRINTABLE, default="ok\n", help="reply sent after serving a request in serial mode")
    p.add_argument("--send", type=kernel.SIZE, default=0, help="bytes to write on each connection (immediate mode)")
    p.add_argument("--send-at", choices=("accept", "eof"), default="accept",
                   help="when to write --send: right after accept(), or once the client half-closed (recv() returned 0)")
    p.add_argument("--stamp", action="store_true", help="start each write of --send with the send time (for wake-up latency)")
    p.add_argument("--shutdown", action="store_true",
                   help="after writing --send, shutdown(SHUT_WR): FIN to the client, keep reading until its EOF")
    p.add_argument("--so-linger", type=kernel.LINGER,
                   help="SO_LINGER on each connection with this timeout; 0: close() sends RST (abortive close)")
    p.add_argument("--queue-interval", type=kernel.SECONDS, default=0.0,
                   help="report the listener's accept queue (tcp_info) every SEC seconds")
    p.add_argument("--duration", type=kernel.SECONDS, default=0.0, help="exit after SEC seconds (0: until SIGTERM)")
    return p


def parse_args(argv=None):
    return build_parser().parse_args(argv)


# What the server prints: the lab derives its event schema from this, docs/guests.md lists it.
EVENTS = {
    "listening": {"doc": "listen() succeeded; what the kernel granted", "modes": None, "fields": {
        "backlog_asked": ["int", "the --backlog given (the student's input)"],
        "backlog": ["int", "the accept-queue limit the kernel kept: min(asked, net.core.somaxconn) (tcp_info)"],
        "rcvbuf_asked": ["int", "the --rcvbuf given (the student's input), null without it"],
        "rcvbuf": ["int", "SO_RCVBUF the kernel set on the listener (doubled, capped by rmem_max)"],
        "sndbuf": ["int", "SO_SNDBUF of the listener"],
        "congestion": ["str", "the listener's congestion control (TCP_CONGESTION; accepted sockets inherit it)"]}},
    "accepted": {"doc": "accept() returned a connection", "modes": None, "fields": {
        "rcvbuf": ["int", "SO_RCVBUF of the new socket"],
        "sndbuf": ["int", "SO_SNDBUF of the new socket"],
        "congestion": ["str", "the new socket's congestion control (TCP_CONGESTION)"]}},
    "read": {"doc": "one recv(): what it returned, or its errno (ECONNRESET: the client reset the connection)",
             "modes": None, "fields": {
        "asked": ["int", "bytes asked"],
        "got": ["int", "bytes returned"],
        "partial": ["bool", "got < asked"],
        "blocked_s": ["float", "seconds recv() waited (0 with select/epoll)"],
        "total": ["int", "bytes read so far"],
        "wake_latency_s": ["float", "seconds from the writer's send to this read returning (stamped data only)"]}},
    "eof": {"doc": "recv() returned 0: the client sent FIN (closed, or half-closed its side)", "modes": None,
            "fields": {"asked": ["int", "bytes asked"], "blocked_s": ["float", "seconds recv() waited"]}},
    "write": {"doc": "one send() of --send: the first three, partial ones, ones that blocked > 10 ms, failures",
              "modes": None, "fields": {
        "asked": ["int", "bytes asked"],
        "partial": ["bool", "returned < asked"],
        "blocked_s": ["float", "seconds send() waited"],
        "total": ["int", "bytes the kernel accepted so far on this connection"],
        "after_eof": ["bool", "written after the client's FIN (--send-at eof)"]}},
    "reply": {"doc": "serial mode: the reply was sent (or failed)", "modes": None, "fields": {
        "service_s": ["float", "the --service-time spent before replying"]}},
    "close": kernel.CLOSE_EVENT,
    "stop-reading": {"doc": "--stop-after reached: the server stops reading", "modes": None,
                     "fields": {"total": ["int", "bytes read so far"]}},
    "resume-reading": {"doc": "--resume-after elapsed: the server reads again", "modes": None,
                       "fields": {"total": ["int", "bytes read so far"]}},
    "accept-queue": {"doc": "the listener's accept queue, every --queue-interval", "modes": None, "fields": {
        "length": ["int", "connections waiting to be accepted (tcp_info tcpi_unacked)"],
        "backlog": ["int", "the limit (tcpi_sacked)"]}},
    "error": kernel.ERROR_EVENT,
    "summary": {"doc": "the last event, at exit (also after SIGTERM/SIGINT)", "modes": None, "fields": {
        "reason": ["str", "done, duration, SIGTERM, SIGINT or error"],
        "accepted": ["int", "connections accepted"],
        "reads": ["int", "recv() calls that returned data"],
        "partial_reads": ["int", "of those, how many returned less than asked"],
        "bytes": ["int", "bytes read"],
        "sent": ["int", "bytes written (--send and replies)"],
        "max_blocked_s": ["float", "the longest recv() wait"],
        "max_accept_queue": ["int", "the longest accept queue seen (with --queue-interval)"],
        **kernel.SUMMARY_ERROR_FIELDS}},
}


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
        self.sent = 0
        self.listener = None
        self.last_queue_report = 0.0

    # -- listening --------------------------------------------------------------------------
    def listen(self):
        s = kernel.tcp_socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if self.args.rcvbuf:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.args.rcvbuf)
        s.bind((self.args.bind, self.args.port))
        s.listen(self.args.backlog)
        info = kernel.tcp_info(s)
        self.ev.syscall("listening", "listen", 0, sock=s, backlog_asked=self.args.backlog,
                        backlog=info["sacked"], rcvbuf_asked=self.args.rcvbuf, **kernel.buffer_sizes(s))
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
        if self.args.so_linger is not None:
            kernel.set_linger(conn, self.args.so_linger)
        self.ev.syscall("accepted", "accept", conn.fileno(), sock=conn, **kernel.buffer_sizes(conn))
        return conn

    # -- sending and closing (immediate mode) -------------------------------------------------
    def send_data(self, conn, after_eof=False):
        """Write --send bytes with blocking send() calls (also under select/epoll: the loop waits)."""
        a = self.args
        was_blocking = conn.getblocking()
        conn.setblocking(True)
        total = 0
        try:
            while total < a.send:
                size = min(SEND_CHUNK, a.send - total)
                data = kernel.stamp_payload(size)[:size] if a.stamp else b"x" * size
                t0 = time.monotonic()
                try:
                    n = conn.send(data)
                except OSError as e:     # EPIPE/ECONNRESET: the client is gone; counted in summary.errors
                    self.ev.syscall("write", "send", -1, err=e, sock=conn, asked=size, after_eof=after_eof)
                    return False
                blocked = time.monotonic() - t0
                total += n
                self.sent += n
                partial = n < len(data)
                if partial or blocked > 0.01 or total <= 3 * SEND_CHUNK:
                    self.ev.syscall("write", "send", n, sock=conn, asked=len(data), partial=partial,
                                    blocked_s=round(blocked, 6), total=total, after_eof=after_eof)
            if a.shutdown:
                kernel.close_socket(self.ev, conn, shutdown_write=True)
            return True
        finally:
            conn.setblocking(was_blocking)

    def opened(self, conn):
        """Right after accept(): --send now unless it waits for the client's EOF."""
        if self.args.send and self.args.send_at == "accept":
            self.send_data(conn)

    def finished(self, conn, eof):
        """The client's side ended (EOF, or a reset when EOF is False): --send-at eof, then close."""
        if eof and self.args.send and self.args.send_at == "eof":
            self.send_data(conn, after_eof=True)
        kernel.close_socket(self.ev, conn)

    # -- reading ----------------------------------------------------------------------------
    def may_read(self):
        a = self.args
        if a.never_read:
            return False
        if a.stop_after is not None and self.total_read >= a.stop_after:
            if self.stopped_at is None and not self.accepted:
                return False     # nothing to stop reading yet: the pause starts with the first connection
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
        """One recv(); returns the bytes, b'' at EOF, None when it would block, False after an error."""
        asked = self.args.read_size
        if self.args.stop_after is not None:
            asked = max(1, min(asked, self.args.stop_after - self.total_read))
        t0 = time.monotonic()
        try:
            data = conn.recv(asked)
        except BlockingIOError as e:
            self.ev.syscall("read", "recv", -1, err=e, sock=conn, asked=asked)
            return None
        except OSError as e:     # ECONNRESET: the client reset the connection (counted in summary.errors)
            self.ev.syscall("read", "recv", -1, err=e, sock=conn, asked=asked)
            return False
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
        """Blocking reader for one connection (immediate + blocking mode): True at EOF, False after an error."""
        while True:
            while not self.may_read():
                time.sleep(0.05)
            data = self.read_once(conn)
            if not data:
                return data == b""

    def serve_request(self, conn, blocking=True):
        """Serial mode: read the request, spend the service time, reply, close."""
        data = self.read_once(conn, blocking)
        if data is None:
            return False
        if data:
            time.sleep(self.args.service_time)
            try:
                conn.setblocking(True)
                conn.sendall(self.args.reply.encode())
                self.sent += len(self.args.reply)
                self.ev.syscall("reply", "send", len(self.args.reply), sock=conn,
                                service_s=self.args.service_time)
            except OSError as e:
                self.ev.syscall("reply", "send", -1, err=e, sock=conn, service_s=self.args.service_time)
        kernel.close_socket(self.ev, conn)
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
            self.opened(conn)
            self.finished(conn, self.read_until_eof(conn))

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
                        if a.accept != "serial":
                            self.opened(conn)
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
                data = self.read_once(conn, blocking=False)
                if data in (b"", False):
                    poller.unregister(fd)
                    self.finished(conns.pop(fd), data == b"")

    def summary(self, reason):
        self.ev.summary(reason=reason, accepted=self.accepted, reads=self.reads, partial_reads=self.partial_reads,
                        bytes=self.total_read, sent=self.sent, max_blocked_s=round(self.max_blocked, 6),
                        max_accept_queue=self.max_queue)


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
