"""The guests' pure helpers (the socket behaviour itself is tested on real networks)."""
import socket
import struct
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "guest"))

import kernel  # noqa: E402
import synflood  # noqa: E402


def test_stamp_round_trip():
    data = kernel.stamp_payload(100, t=12.5)
    assert len(data) == 100
    assert kernel.read_stamp(data) == 12.5
    assert kernel.read_stamp(b"xxxx") is None


def test_errno_names():
    assert kernel.errno_name(11) == "EAGAIN"
    assert kernel.errno_name(ConnectionRefusedError(111, "x")) == "ECONNREFUSED"


def test_syn_segment_checksum_verifies():
    seg = synflood.syn_segment("10.0.0.2", "10.0.0.1", 40000, 9000, 123)
    sport, dport, seq, ack, off_flags = struct.unpack("!HHIIH", seg[:14])
    assert (sport, dport, seq, ack) == (40000, 9000, 123, 0)
    assert off_flags & 0x3F == 0x02            # SYN only
    pseudo = socket.inet_aton("10.0.0.2") + socket.inet_aton("10.0.0.1") + struct.pack("!BBH", 0, 6, len(seg))
    assert synflood.checksum(pseudo + seg) == 0


def test_tcp_info_of_a_loopback_listener():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(7)
    info = kernel.tcp_info(s)
    assert info["state"] == "LISTEN" and info["sacked"] == 7 and info["unacked"] == 0
    s.close()
