import pytest

from lab import expect

OBS = {
    "counters": {"h1": {"TcpExt": {"ListenOverflows": 14}}, "c1": {"TcpExt": {"TCPSynRetrans": 2}},
                 "c2": {"TcpExt": {"TCPSynRetrans": 3}}},
    "events": {"client": [{"event": "connect", "outcome": "connected", "latency_s": 0.001, "t": 1},
                          {"event": "connect", "outcome": "timeout", "latency_s": 1.5, "t": 2},
                          {"event": "summary", "connected": 1, "t": 3}],
               "server": [{"event": "read", "blocked_s": 1.02, "got": 10, "t": 1001.0, "t_rel": 1.0},
                          {"event": "read", "blocked_s": 0.0, "got": 20, "t": 1002.0, "t_rel": 2.0}]},
    "samples": {"h1": [{"accept_queue": 3}, {"accept_queue": 5}, {"accept_queue": None}]},
}
HOSTS, GUESTS = ["h1", "c1", "c2"], ["client", "server"]


def verdict(text):
    check = expect.resolve(expect.parse_check(text), HOSTS, GUESTS)
    return expect.evaluate(check, OBS, "a meaning")


@pytest.mark.parametrize("text, observed, passed", [
    ("h1: TcpExt.ListenOverflows >= 1", 14, True),
    ("c*: TcpExt.TCPSynRetrans == 5", 5, True),
    ("c1+c2: TcpExt.TCPSynRetrans > 5", 5, False),
    ("client: summary.connected == 1", 1, True),
    ("client: count connect where outcome=timeout == 1", 1, True),
    ("client: count connect == 2", 2, True),
    ("client: max connect.latency_s in [1.0, 2.0]", 1.5, True),
    ("server: first read.blocked_s == 1 ± 0.05", 1.02, True),
    ("server: mean read.blocked_s < 0.1", 0.51, False),
    ("h1: max sockets.accept_queue == 5", 5, True),
    ("h1: min sockets.accept_queue == 3", 3, True),
    ("server: sum read.got where t>1.5 == 20", 20, True),      # t is seconds since the timeline began
    ("server: sum read.got where t>5 == 0", 0, True),          # the sum of nothing is 0
])
def test_evaluate(text, observed, passed):
    v = verdict(text)
    assert (v.observed, v.passed) == (observed, passed)


def test_failed_verdict_says_what_was_expected():
    v = verdict("h1: TcpExt.ListenOverflows == 0")
    assert v.message == "expected: h1 TcpExt.ListenOverflows == 0, observed 14 (a meaning)"


def test_nothing_observed_fails_with_reason():
    v = verdict("client: max connect.latency_s where outcome=reset < 0.2")
    assert not v.passed and "nothing was observed" in v.message


@pytest.mark.parametrize("text, error", [
    ("h1 TcpExt.ListenOverflows >= 1", "expected 'SUBJECT: [AGGREGATE] PATH"),
    ("h1: max TcpExt.ListenOverflows >= 1", "summed over the hosts; drop 'max'"),
    ("h1: max sockets.bogus == 1", "unknown socket field"),
    ("c: x.y in [3, 1]", "LOW is above HIGH"),
    ("c: x.y in 3", "'in' takes a band"),
    ("c: x.y == abc", "'abc' is not a number"),
])
def test_syntax_errors(text, error):
    with pytest.raises(expect.CheckSyntaxError, match=error.replace("[", r"\[").replace("(", r"\(")):
        expect.parse_check(text)


def test_subject_must_exist():
    with pytest.raises(expect.CheckSyntaxError, match="matches no host"):
        expect.resolve(expect.parse_check("h9: Tcp.InSegs > 0"), HOSTS, GUESTS)
    with pytest.raises(expect.CheckSyntaxError, match="matches no guest"):
        expect.resolve(expect.parse_check("nobody: summary.x > 0"), HOSTS, GUESTS)
