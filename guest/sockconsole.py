#!/usr/bin/env python3
"""tcplab socket console: drive one TCP socket by hand and see the kernel's answer to each call.

Run it inside a host (from `tcplab cli`: `sockconsole h1`, or by hand:
`python3 guest/sockconsole.py --name h1`). Every command prints one line: what the kernel returned
(bytes, a queue length) or the errno name and what it means.

  listen PORT [BACKLOG]    socket(), bind() to all addresses, listen()
  accept                   accept() one connection from the accept queue; it becomes the current one
  connect HOST PORT        connect() a new socket; it becomes the current one
  send N                   send() N bytes on the current connection (a short count is a partial write)
  recv N                   recv() up to N bytes (fewer is a partial read; 0 means the peer closed)
  nonblock on|off          O_NONBLOCK on the current socket(s): calls return EAGAIN instead of waiting
  setsockopt rcvbuf|sndbuf N   SO_RCVBUF/SO_SNDBUF (the kernel doubles what you ask)
  setsockopt linger N|off  SO_LINGER: with 0, close sends RST (an abortive close); off: a FIN
  shutdown                 shutdown(SHUT_WR): send FIN, keep reading (a half-close)
  queues                   bytes in the receive queue (SIOCINQ) and the write queue (SIOCOUTQ);
                           for a listener, the accept queue and its backlog
  info                     tcp_info: state, rtt, cwnd, windows, retransmits, probes
  close                    close the current connection (or the listener when there is none)
  help [COMMAND]           this text
  quit                     leave (closes every socket)
"""
import argparse
import cmd
import socket
import struct
import sys

import kernel

HELP = __doc__.split("\n\n")[2]


def explain(err):
    name = kernel.errno_name(err)
    return f"{name}: {kernel.ERRNO_MEANING.get(name, err.strerror or str(err))}"


class SocketConsole(cmd.Cmd):
    intro = "tcplab socket console: type help for the commands, quit to leave."

    def __init__(self, name="sock"):
        super().__init__()
        self.prompt = f"{name}> "
        self.listener = None
        self.conn = None
        self.nonblocking = False

    # each command: parse, make one system call, print one line
    def do_listen(self, arg):
        port, backlog = self._ints(arg, 1, 2, "listen PORT [BACKLOG]", maximum=65535)
        if port is None:
            return
        backlog = backlog if backlog is not None else 128
        s = kernel.tcp_socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("0.0.0.0", port))
            s.listen(backlog)
        except OSError as e:
            s.close()
            return self.say(explain(e))
        s.setblocking(not self.nonblocking)
        self.listener = s
        info = kernel.tcp_info(s)
        self.say(f"listening on 0.0.0.0:{port}, backlog {info['sacked']} (asked {backlog}; capped by net.core.somaxconn)")

    def do_accept(self, arg):
        if not self.listener:
            return self.say("no listener: listen PORT first")
        try:
            conn, peer = self.listener.accept()
        except OSError as e:
            return self.say(explain(e))
        conn.setblocking(not self.nonblocking)
        self.conn = conn
        local, peer = kernel.endpoints(conn)
        self.say(f"accepted {peer} -> {local}")

    def do_connect(self, arg):
        parts = arg.split()
        if len(parts) != 2 or not parts[1].isdigit() or not 0 < int(parts[1]) < 65536:
            return self.say("usage: connect HOST PORT (PORT 1-65535)")
        s = kernel.tcp_socket()
        s.setblocking(not self.nonblocking)
        try:
            s.connect((parts[0], int(parts[1])))
        except BlockingIOError as e:
            self.conn = s
            return self.say(explain(e))
        except OSError as e:
            s.close()
            return self.say(explain(e))
        self.conn = s
        local, peer = kernel.endpoints(s)
        self.say(f"connected {local} -> {peer}")

    def do_send(self, arg):
        (n,) = self._ints(arg, 1, 1, "send N")
        if n is None or not self._need_conn():
            return
        try:
            sent = self.conn.send(b"x" * n)
        except OSError as e:
            return self.say(explain(e))
        note = "" if sent == n else f" of {n} asked (partial write: the write queue is full)"
        self.say(f"sent {sent} bytes{note}")

    def do_recv(self, arg):
        (n,) = self._ints(arg, 1, 1, "recv N")
        if n is None or not self._need_conn():
            return
        try:
            data = self.conn.recv(n)
        except KeyboardInterrupt:
            return self.say("interrupted (recv was blocking: nothing had arrived)")
        except OSError as e:
            return self.say(explain(e))
        if not data:
            return self.say("received 0 bytes: EOF, the peer closed its side")
        note = "" if len(data) == n else f" of {n} asked (partial read: that is all that had arrived)"
        self.say(f"received {len(data)} bytes{note}")

    def do_nonblock(self, arg):
        if arg.strip() not in ("on", "off"):
            return self.say("usage: nonblock on|off")
        self.nonblocking = arg.strip() == "on"
        for s in (self.listener, self.conn):
            if s:
                s.setblocking(not self.nonblocking)
        self.say(f"O_NONBLOCK {'on: calls that would wait return EAGAIN' if self.nonblocking else 'off: calls wait'}")

    def do_setsockopt(self, arg):
        parts = arg.split()
        if len(parts) == 2 and parts[0] == "linger" and (parts[1] == "off" or parts[1].isdigit()):
            return self._linger(parts[1])
        if len(parts) != 2 or parts[0] not in ("rcvbuf", "sndbuf") or not parts[1].isdigit() or int(parts[1]) > 1 << 30:
            return self.say("usage: setsockopt rcvbuf|sndbuf N (N up to 1073741824), or setsockopt linger N|off")
        s = self.conn or self.listener
        if s is None:
            s = self.conn = kernel.tcp_socket()
            s.setblocking(not self.nonblocking)
        opt = socket.SO_RCVBUF if parts[0] == "rcvbuf" else socket.SO_SNDBUF
        s.setsockopt(socket.SOL_SOCKET, opt, int(parts[1]))
        got = s.getsockopt(socket.SOL_SOCKET, opt)
        self.say(f"SO_{parts[0].upper()} asked {parts[1]}, kernel set {got} (doubled for its own bookkeeping; "
                 f"capped by net.core.{'rmem' if opt == socket.SO_RCVBUF else 'wmem'}_max)")

    def _linger(self, value):
        if not self._need_conn():
            return
        on, seconds = (0, 0) if value == "off" else (1, min(int(value), 600))
        self.conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", on, seconds))
        if not on:
            return self.say("SO_LINGER off: close sends FIN and returns at once (the kernel sends what is queued)")
        if seconds == 0:
            return self.say("SO_LINGER on, 0 s: close sends RST and drops what is queued (an abortive close)")
        self.say(f"SO_LINGER on, {seconds} s: close waits up to {seconds} s for queued data to be acknowledged")

    def do_shutdown(self, arg):
        if not self._need_conn():
            return
        try:
            self.conn.shutdown(socket.SHUT_WR)
        except OSError as e:
            return self.say(explain(e))
        state = kernel.tcp_info(self.conn)["state"]
        self.say(f"shutdown(SHUT_WR): FIN sent, state {state}; recv still works until the peer closes")

    def do_queues(self, arg):
        parts = []
        if self.conn:
            try:
                q = kernel.queues(self.conn)
                parts.append(f"recv-q {q['inq']} bytes (SIOCINQ), send-q {q['outq']} bytes (SIOCOUTQ, "
                             f"{q['notsent']} not yet sent)")
            except OSError as e:
                parts.append(explain(e))
        if self.listener:
            info = kernel.tcp_info(self.listener)
            parts.append(f"accept queue {info['unacked']} of backlog {info['sacked']}")
        self.say("; ".join(parts) if parts else "no socket: listen or connect first")

    def do_info(self, arg):
        s = self.conn or self.listener
        if s is None:
            return self.say("no socket: listen or connect first")
        i = kernel.tcp_info(s)
        self.say(f"state {i['state']} rtt {i['rtt'] / 1000:.3f} ms cwnd {i['snd_cwnd']} snd_wnd {i['snd_wnd']} "
                 f"rcv_space {i['rcv_space']} unacked {i['unacked']} retrans {i['total_retrans']} "
                 f"probes {i['probes']} backoff {i['backoff']} bytes_acked {i['bytes_acked']} "
                 f"bytes_received {i['bytes_received']}")

    def do_close(self, arg):
        if self.conn:
            q = kernel.queues(self.conn) if self.conn.fileno() >= 0 else {"inq": 0}
            onoff, seconds = struct.unpack("ii", self.conn.getsockopt(socket.SOL_SOCKET, socket.SO_LINGER, 8))
            self.conn.close()
            self.conn = None
            if onoff and seconds == 0:
                return self.say("closed the connection: RST sent (SO_LINGER 0, an abortive close)")
            if q["inq"]:
                return self.say(f"closed the connection: RST sent ({q['inq']} bytes received were never read)")
            return self.say("closed the connection: FIN sent")
        if self.listener:
            self.listener.close()
            self.listener = None
            return self.say("closed the listener")
        self.say("nothing to close")

    def do_help(self, arg):
        if arg:
            for line in HELP.splitlines():
                if line.strip().startswith(arg):
                    return self.say(line.strip())
        print(HELP, flush=True)

    def do_quit(self, arg):
        for s in (self.conn, self.listener):
            if s:
                s.close()
        return True

    do_exit = do_quit
    do_EOF = do_quit  # noqa: N815 (cmd's name for end of input)

    def default(self, line):
        self.say(f"unknown command {line.split()[0]!r}: type help")

    def emptyline(self):
        return False

    # helpers
    def say(self, text):
        print(text, flush=True)

    def _need_conn(self):
        if self.conn is None:
            self.say("no connection: connect HOST PORT, or listen and accept")
            return False
        return True

    def _ints(self, arg, least, most, usage, maximum=64 << 20):
        parts = arg.split()
        if not least <= len(parts) <= most or not all(p.isdigit() and int(p) <= maximum for p in parts):
            self.say(f"usage: {usage} (whole numbers up to {maximum})")
            return [None] * most
        values = [int(p) for p in parts]
        return values + [None] * (most - len(values))


def build_parser():
    p = argparse.ArgumentParser(prog="sockconsole.py", description=__doc__.split("\n\n")[0],
                                epilog=__doc__.split("\n\n", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--name", type=kernel.NAME, default="sock", help="the prompt (the host's name)")
    return p


def parse_args(argv=None):
    return build_parser().parse_args(argv)


# The console prints lines of text for a person, not JSON events.
EVENTS = {}


def main(argv=None):
    args = parse_args(argv)
    console = SocketConsole(args.name)
    try:
        console.cmdloop()
    except KeyboardInterrupt:
        print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
