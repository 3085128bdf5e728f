from pathlib import Path

from lab import sockets

DATA = Path(__file__).parent.parent / "data"


def records(host):
    return sockets.parse_ss((DATA / f"ss-{host}.txt").read_text())


def test_listener_accept_queue_and_backlog():
    # Captured with listen(3), one accept() and four connects: three wait in the accept queue.
    (listener,) = sockets.listeners(records("h1"), port=9000)
    assert listener.accept_queue == 3
    assert listener.backlog == 3
    assert listener.skmem["rb"] == 131072


def test_receiver_with_unread_data():
    conns = sockets.connections(records("h1"), port=9000)
    assert len(conns) == 4
    full = max(conns, key=lambda r: r.recv_q)
    assert full.recv_q == 127992 and full.skmem["r"] == 129656
    assert full.info["snd_wnd"] == 64512
    assert full.info["rtt"] == 0.059 and full.info["rttvar"] == 0.029


def test_sender_blocked_by_zero_window():
    sender = max(records("h2"), key=lambda r: r.send_q)
    assert sender.send_q == 33112
    assert sender.info["notsent"] == 33112
    assert sender.info["backoff"] == 2              # probing a zero window
    assert sender.info["rwnd_limited_ms"] == 880
    assert sender.info["retrans"] == 0 and sender.info["retrans_total"] == 1
    assert sender.info["send"] == 115748318
    assert sender.peer_port == 9000


def test_non_socket_lines_are_ignored():
    assert sockets.parse_ss("\nState Recv-Q Send-Q\n") == []


def test_sample_rtt_is_the_slowest_connections_srtt():
    # The captured h1 has four connections on port 9000 with srtt 0.059, 0.01, 0.008 ms and one more.
    aggregate_sample = sockets.aggregate
    conns = sockets.connections(records("h1"), port=9000)
    expected = max(r.info["rtt"] for r in conns if "rtt" in r.info)
    assert aggregate_sample(0.1, records("h1"), port=9000)["rtt"] == expected == 0.059
    assert aggregate_sample(0.1, [r for r in records("h1") if r.is_listener], port=9000)["rtt"] is None


def test_a_missing_snd_wnd_is_a_zero_window_only_where_ss_omits_zeros():
    P = sockets.prints_zero_window_by_omission
    assert P("ss utility, iproute2-6.1.0\n", "6.18.0-1-amd64") and P("ss utility, iproute2-5.18.0", "5.4.0")
    assert not P("ss utility, iproute2-5.15.0", "6.1.0")         # before 5.18 ss never printed it
    assert not P("ss utility, iproute2-ss200127", "6.1.0")       # dated releases: older still
    assert not P("ss utility, iproute2-6.1.0", "4.19.0")         # no tcpi_snd_wnd before 5.4
    assert not P("", "6.1.0")
    blocked = [r for r in records("h2") if r.state == "ESTAB" and "snd_wnd" not in r.info]
    assert blocked, "the capture has a sender whose ss line shows no snd_wnd"
    assert sockets.aggregate(0.1, blocked, window_seen=True)["snd_wnd"] == 0
    assert sockets.aggregate(0.1, blocked, window_seen=False)["snd_wnd"] is None
