import pytest

from lab import expect
from lab.validation import World

OBS = {
    "counters": {"h1": {"TcpExt": {"ListenOverflows": 14}}, "c1": {"TcpExt": {"TCPSynRetrans": 2}},
                 "c2": {"TcpExt": {"TCPSynRetrans": 3}}},
    "events": {"client": [{"event": "connect", "outcome": "connected", "latency_s": 0.001, "t": 1},
                          {"event": "connect", "outcome": "timeout", "latency_s": 1.5, "t": 2},
                          {"event": "summary", "connected": 1, "t": 3}],
               "server": [{"event": "read", "blocked_s": 1.02, "got": 10, "t": 1001.0, "t_rel": 1.0},
                          {"event": "read", "blocked_s": 0.0, "got": 20, "t": 1002.0, "t_rel": 2.0},
                          {"event": "summary", "bytes": 30}],
               "crashed": [{"event": "connect", "outcome": "connected"}]},
    "finished": {"client", "server"},
    "samples": {"h1": [{"accept_queue": 3}, {"accept_queue": 5}, {"accept_queue": None}]},
    "kernel": {"h1": {"drop": {"LISTEN_OVERFLOW": 4, "TCP_ZEROWINDOW": 1}, "retransmit": 2}},
}
DECLARED = {"client": {"connect": {"outcome": 0, "latency_s": 0}, "summary": {"connected": 0}},
            "server": {"read": {"blocked_s": 0, "got": 0}, "summary": {"bytes": 0}},
            "crashed": {"connect": {"outcome": 0}}}
WORLD = World(hosts=["h1", "c1", "c2"], guests=["client", "server", "crashed"], sampled=["h1"],
              counters={"TcpExt": ["ListenOverflows", "TCPSynRetrans"], "Tcp": ["InSegs"]}, events=DECLARED,
              kernel_kinds=["drop", "retransmit"], drop_reasons=["LISTEN_OVERFLOW", "TCP_ZEROWINDOW"])


def verdict(text, obs=OBS):
    check = expect.resolve(expect.parse_check(text), WORLD)
    return expect.evaluate(check, obs, "a meaning")


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
    ("h1: median sockets.accept_queue == 4", 4, True),        # of 3 and 5 (the missing value is not a 0)
    ("server: median read.got < 15", 15, False),
    ("server: sum read.got where t>1.5 == 20", 20, True),      # t is seconds since the timeline began
    ("server: sum read.got where t>5 == 0", 0, True),          # the sum over no event of a finished guest
    ("h1: kernel.drop.LISTEN_OVERFLOW == 4", 4, True),
    ("h1: kernel.drop >= 5", 5, True),
    ("h1: kernel.drop.LISTEN_OVERFLOW+TCP_ZEROWINDOW == 5", 5, True),
    ("h1: kernel.retransmit == 2", 2, True),
    ("c1: kernel.drop.LISTEN_OVERFLOW == 0", 0, True),         # the tracer ran and saw none there
    # Another kernel's name for the same drop, summed: this kernel cannot report it, so it adds nothing.
    ("h1: kernel.drop.TCP_OLD_SEQUENCE+TCP_ZEROWINDOW == 1", 1, True),
])
def test_evaluate(text, observed, passed):
    v = verdict(text)
    assert (v.observed, v.passed) == (observed, passed)


def test_failed_verdict_says_what_was_expected():
    v = verdict("h1: TcpExt.ListenOverflows == 0")
    assert v.message == "expected: h1 TcpExt.ListenOverflows == 0, observed 14 (a meaning)"


@pytest.mark.parametrize("text, why", [
    ("client: max connect.latency_s where outcome=reset < 0.2", "no connect event with a latency_s"),
    ("h1: Tcp.InSegs >= 0", "no such counter was read"),          # a counter missing is not 0
    ("crashed: count connect == 1", "crashed wrote no summary"),   # a guest that never finished says nothing
])
def test_nothing_observed_fails_with_reason(text, why):
    v = verdict(text)
    assert not v.passed and "nothing was observed" in v.message and why in v.message, v.message


def test_kernel_checks_are_not_judged_without_a_tracer():
    obs = dict(OBS, kernel=None, trace_reason="bpftrace is not installed")
    v = verdict("h1: kernel.drop.LISTEN_OVERFLOW >= 1", obs)
    assert v.skipped == "bpftrace is not installed" and not v.passed and "not judged" in v.message


def test_missing_sample_values_are_not_zero():
    obs = dict(OBS, samples={"h1": [{"snd_wnd": None}, {"snd_wnd": None}]})
    v = verdict("h1: min sockets.snd_wnd == 0", obs)
    assert not v.passed and v.observed is None


@pytest.mark.parametrize("text, error", [
    ("h1 TcpExt.ListenOverflows >= 1", "expected 'SUBJECT: [AGGREGATE] PATH"),
    ("h1: max TcpExt.ListenOverflows >= 1", "summed over the hosts; drop 'max'"),
    ("h1: max sockets.bogus == 1", "unknown socket field"),
    ("h1: max sockets.snd_wnnd == 1", "did you mean snd_wnd"),
    ("c: x.y in [3, 1]", "LOW is above HIGH"),
    ("c: x.y in 3", "'in' takes a band"),
    ("c: x.y == abc", "'abc' is not a number"),
    ("h1: max kernel.drop == 1", "kernel events are counted"),
    # `where` would be silently ignored: the check would claim a window it does not look at
    ("h2: TcpExt.TCPTimeouts where t>3 >= 2", "'where' applies to guest events and socket samples only"),
    ("h2: kernel.retransmit where t>3 >= 2", "'where' applies to guest events and socket samples only"),
    ("h1: kernel.drop.a.b == 1", "expected kernel.KIND, kernel.drop.REASON"),
    ("h1: kernel.retransmit+X == 1", "expected kernel.KIND, kernel.drop.REASON"),
    ("c: x.y == 1" + "0" * 600, "at most 500 characters"),
])
def test_syntax_errors(text, error):
    with pytest.raises(expect.CheckSyntaxError, match=error.replace("[", r"\[").replace("(", r"\(")):
        expect.parse_check(text)


def test_a_check_since_a_newer_kernel_is_not_judged_on_an_older_one():
    check = expect.resolve(expect.parse_check("h1: kernel.drop.TCP_ZEROWINDOW >= 1"), WORLD)
    check.since = "6.15"
    old = expect.evaluate(check, dict(OBS, release="6.1.0-50-amd64"))
    assert old.skipped and not old.passed and "kernel 6.1 is older than 6.15" in old.message
    assert expect.evaluate(check, dict(OBS, release="6.18.44")).passed
    assert expect.evaluate(check, dict(OBS, release="6.15.0")).passed
    assert expect.evaluate(check, dict(OBS, release="")).passed       # unknown release: judged, not skipped


def test_a_drop_only_other_kernels_name_is_not_judged_here_and_says_why():
    # TCP_OLD_SEQUENCE: named by 6.18, not by this world's kernel (nor by 6.1): it could never be seen here.
    v = verdict("h1: kernel.drop.TCP_OLD_SEQUENCE >= 1")
    assert v.skipped and not v.passed and "this kernel has no drop reason TCP_OLD_SEQUENCE" in v.message
    assert verdict("h1: kernel.drop.TCP_OLD_SEQUENCE+TCP_ZEROWINDOW >= 1").passed


@pytest.mark.parametrize("text, error", [
    ("h9: Tcp.InSegs > 0", "matches no host"),
    ("nobody: summary.x > 0", "matches no guest"),
    ("clinet: summary.connected > 0", "did you mean client"),
    ("client: summary.conected == 1", "no field 'conected' (did you mean connected"),
    ("client: count error == 0", "client never prints 'error' events"),
    ("server: count reed == 0", "did you mean read"),
    ("h1: TcpExt.ListenOverflow >= 1", "no such counter (did you mean TcpExt.ListenOverflows"),
    ("h1: kernel.dorp >= 1", "did you mean drop"),
    ("h1: kernel.drop.LISTEN_OVERFLOWS >= 1", "did you mean LISTEN_OVERFLOW"),
    ("h1: kernel.drop.TCP_ZEROWINDOW+NOPE >= 1", "no kernel has a drop reason 'NOPE'"),
    ("c1: max sockets.send_q > 0", "sample.hosts does not list them"),
])
def test_resolve_names_what_exists(text, error):
    with pytest.raises(expect.CheckSyntaxError, match=error.replace("(", r"\(")):
        expect.resolve(expect.parse_check(text), WORLD)
