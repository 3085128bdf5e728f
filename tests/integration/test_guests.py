"""The guest programs on a real network: what each reports must agree with what the kernel counted."""
from pathlib import Path

import pytest

from lab.guests import guest_argv
from lab.network import LabNetwork, NetworkSpec

from .helpers import counter, deltas, events, guest, snapshot, wait_until

pytestmark = pytest.mark.root
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def lab():
    with LabNetwork(NetworkSpec("single", args=[3]), purpose="test guests") as lab:
        yield lab


def test_partial_read(lab):
    server = guest(lab, "h1", "server", "--port", 9200, "--read-size", 1 << 20, ready="listening")
    client = guest(lab, "h2", "client", "write", "10.0.0.1:9200", "--total", 3000, "--write-size", 3000,
                   "--delay", 0.2, "--stamp", "--linger", 0.5)
    assert client.wait(10)
    read = server.wait_event("read", 5)
    server.stop()
    assert read["asked"] == 1 << 20
    assert read["got"] == 3000 and read["partial"] is True
    # The read blocked from accept() until the client's data arrived (about --delay).
    assert 0.1 < read["blocked_s"] < 2.0
    assert 0 <= read["wake_latency_s"] < 0.5


def test_full_receive_buffer_nonblocking_writer(lab):
    before = snapshot(lab, "h1", "h2")
    server = guest(lab, "h1", "server", "--port", 9201, "--never-read", ready="listening")
    client = guest(lab, "h2", "client", "write", "10.0.0.1:9201", "--nonblocking", "--duration", 2)
    assert client.wait(10)
    d = deltas(lab, before)
    server.stop()
    summary = client.summary()
    assert summary["partial_writes"] >= 1
    assert summary["eagain"] >= 1
    assert summary["accepted"] > summary["acked"], "bytes accepted by the kernel but not acknowledged"
    assert counter(d["h1"], "TcpExt.TCPToZeroWindowAdv") >= 1
    assert counter(d["h2"], "TcpExt.TCPWinProbe") >= 1
    # And not the other way round.
    assert counter(d["h2"], "TcpExt.TCPToZeroWindowAdv") == 0
    assert counter(d["h1"], "TcpExt.TCPWinProbe") == 0


def test_full_receive_buffer_blocking_writer_blocks(lab):
    server = guest(lab, "h1", "server", "--port", 9202, "--never-read", ready="listening")
    client = guest(lab, "h3", "client", "write", "10.0.0.1:9202", "--duration", 1.5)
    assert client.wait(10)
    server.stop()
    summary = client.summary()
    assert summary["reason"] == "duration"          # still blocked in send() when time ran out
    assert summary["max_blocked_s"] > 0.5
    assert summary["eagain"] == 0


@pytest.mark.parametrize("backlog", [2, 4])
def test_accept_queue_holds_backlog_plus_one(lab, backlog):
    before = snapshot(lab, "h1", "h2", "h3")
    port = 9210 + backlog
    server = guest(lab, "h1", "server", "--port", port, "--backlog", backlog, "--accept", "never",
                   "--queue-interval", 0.1, ready="listening")
    client = guest(lab, "h2", "client", "connect", f"10.0.0.1:{port}", "--count", backlog + 5,
                   "--parallel", 1, "--timeout", 1.5, "--hold", 0.1)
    assert client.wait(30)
    server.stop()
    d = deltas(lab, before)
    summary = client.summary()
    assert summary["connected"] == backlog + 1
    assert summary["timeout"] == 4
    assert server.summary()["max_accept_queue"] == backlog + 1
    assert counter(d["h1"], "TcpExt.ListenOverflows") >= 1
    assert counter(d["h1"], "TcpExt.ListenDrops") >= counter(d["h1"], "TcpExt.ListenOverflows")
    for host in ("h2", "h3"):
        assert counter(d[host], "TcpExt.ListenOverflows") == 0
        assert counter(d[host], "TcpExt.ListenDrops") == 0
    assert counter(d["h2"], "TcpExt.TCPSynRetrans") >= 1


def test_connect_outcomes_refused(lab):
    client = guest(lab, "h2", "client", "connect", "10.0.0.1:9299", "--count", 3)
    assert client.wait(10)
    assert client.summary()["refused"] == 3
    assert {e["errno"] for e in events(client, "connect")} == {"ECONNREFUSED"}


def test_serial_server_replies_after_service_time(lab):
    server = guest(lab, "h1", "server", "--port", 9220, "--accept", "serial", "--service-time", 0.1,
                   ready="listening")
    client = guest(lab, "h2", "client", "connect", "10.0.0.1:9220", "--count", 3, "--request", 10,
                   "--timeout", 5)
    assert client.wait(10)
    server.stop()
    replies = sorted(e["latency_s"] for e in events(client, "reply"))
    assert len(replies) == 3
    # One request at a time: the third waits for two services before its own.
    assert replies[0] >= 0.09 and replies[2] >= 0.29


@pytest.mark.parametrize("drop_rsts", [True, False])
def test_syn_sender_makes_syncookies(lab, drop_rsts):
    lab.set_sysctls("h1", {"net.ipv4.tcp_max_syn_backlog": 128, "net.ipv4.tcp_syncookies": 1})
    before = snapshot(lab, "h1", "h3")
    port = 9230 + drop_rsts
    server = guest(lab, "h1", "server", "--port", port, "--backlog", 64, "--accept", "never", ready="listening")
    flood = guest(lab, "h3", "synflood", f"10.0.0.1:{port}", "--count", 400, "--rate", 4000,
                  *(["--drop-rsts"] if drop_rsts else []))
    assert flood.wait(15)
    server.stop()
    d = deltas(lab, before)
    assert flood.summary()["sent"] == 400
    if drop_rsts:
        assert counter(d["h1"], "TcpExt.SyncookiesSent") >= 1
        assert [e["action"] for e in events(flood, "rst-rule")] == ["added", "removed"]
        # h3's kernel still answers each SYN-ACK with a RST (OutRsts counts it) but the rule inside h3
        # drops it: the server receives the 400 SYNs and nothing else.
        assert counter(d["h1"], "Tcp.InSegs") == 400
        assert counter(d["h1"], "TcpExt.EmbryonicRsts") == 0
    else:
        # Each RST frees its half-open connection at once: the SYN queue never fills, no cookies.
        assert counter(d["h1"], "Tcp.InSegs") > 400
        assert counter(d["h1"], "TcpExt.EmbryonicRsts") >= 1
        assert counter(d["h1"], "TcpExt.SyncookiesSent") == 0


def test_socket_console_on_two_hosts(lab, tmp_path):
    pexpect = pytest.importorskip("pexpect")
    consoles = {}
    try:
        for host in ("h1", "h2"):
            argv = ["mnexec", "-a", str(lab.host(host).pid), *guest_argv("sockconsole", ["--name", host])]
            c = pexpect.spawn(argv[0], argv[1:], encoding="utf-8", timeout=10)
            c.logfile_read = open(tmp_path / f"{host}.log", "w")
            c.expect(f"{host}> ")
            consoles[host] = c

        def run(host, command, pattern):
            c = consoles[host]
            c.sendline(command)
            c.expect(pattern)
            match = c.match
            c.expect(f"{host}> ")
            return match

        run("h1", "listen 9240 4", r"backlog 4")
        run("h2", "connect 10.0.0.1 9240", r"connected 10\.0\.0\.2:\d+ -> 10\.0\.0\.1:9240")
        m = run("h1", "queues", r"accept queue (\d+) of backlog (\d+)")
        assert m.groups() == ("1", "4")
        run("h1", "accept", r"accepted 10\.0\.0\.2")
        run("h2", "send 5000", r"sent 5000 bytes")
        assert wait_until(lambda: "recv-q 5000" in run("h1", "queues", r"recv-q \d+ bytes").group(0), 5)
        run("h1", "recv 1200", r"received 1200 bytes")
        m = run("h1", "queues", r"recv-q (\d+) bytes")
        assert m.group(1) == "3800"          # sent and not yet read
        run("h1", "nonblock on", r"O_NONBLOCK on")
        run("h1", "recv 100000", r"received 3800 bytes of 100000 asked \(partial read")
        run("h1", "recv 10", r"EAGAIN: would block")
        run("h2", "info", r"state ESTABLISHED")
        run("h1", "setsockopt rcvbuf 4096", r"kernel set 8192")
        for c in consoles.values():
            c.sendline("quit")
            c.expect(pexpect.EOF)
    finally:
        for c in consoles.values():
            c.close()
            c.logfile_read.close()
