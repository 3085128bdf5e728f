"""No scenario can pass vacuously: each library scenario, run once with the behaviour it teaches switched
off, fails the checks that teach it. A mutation is a change to the scenario's text (a server that accepts at
once, a reader that never pauses, syncookies on...) and the checks it must make fail."""

import pytest

from lab import library
from lab.runner import run_scenario

pytestmark = pytest.mark.root

# scenario: (what the mutation switches off, [(text, replacement)], [checks that must fail])
MUTATIONS = {
    "established-queues": ("the server reads at once: nothing waits in its receive queue",
                           [("stop-after: 0, resume-after: 1.5", "read-size: 65536")],
                           ["h1: max sockets.recv_q >= 50000"]),
    "blocking-read": ("the client sends at once: the read does not wait",
                      [("delay: 1.0", "delay: 0")],
                      ["server: first read.blocked_s in [0.9, 1.3]"]),
    "partial-read": ("the first client sends more than the read asks for, and the reader is late",
                     [("{port: 9000, read-size: 1048576, rcvbuf: 65536}", "{port: 9000, read-size: 1000, rcvbuf: 65536}")],
                     ["server: first read.got == 3000"]),
    "zero-window": ("the receiver never stops reading",
                    [("stop-after: 0, resume-after: 2", "read-size: 65536")],
                    # not TCPToZeroWindowAdv: a reader that never pauses can still fall behind for a moment
                    # and advertise one zero window (seen once: observed 1); only a pause makes the sender probe
                    ["h2: TcpExt.TCPWinProbe >= 1", "client: max write.blocked_s in [1.5, 2.5]"]),
    "partial-write": ("a blocking writer: send() sleeps instead of returning short",
                      [("nonblocking: true, ", "")],
                      ["writer: summary.eagain >= 1", "writer: summary.partial_writes >= 1"]),
    "blocking-write": ("the readers never pause",
                       [("stop-after: 0, resume-after: 1.5, duration: 6", "duration: 6")],
                       ["small: summary.max_blocked_s >= 0.5"]),
    "socket-memory": ("no SO_RCVBUF: the receive buffer autotunes",
                      [("rcvbuf: 32768, ", "")],
                      ["server: first listening.rcvbuf == 65536"]),
    "busy-link": ("no shaping: the link runs at memory speed",
                  [("links:\n  - {between: [h1, h2], bw: 10}\n", "")],
                  ["server: last read.t_rel >= 1.2"]),
    "listen-overflow": ("a backlog that holds the whole burst",
                        [("backlog: 4", "backlog: 64")],
                        ["server: TcpExt.ListenOverflows >= 1", "c*: TcpExt.TCPSynRetrans >= 1"]),
    "abort-on-overflow": ("tcp_abort_on_overflow off",
                          [("net.ipv4.tcp_abort_on_overflow: 1", "net.ipv4.tcp_abort_on_overflow: 0")],
                          ["burst: summary.reset >= 1"]),
    "somaxconn-cap": ("somaxconn above the backlog asked",
                      [("net.core.somaxconn: 128", "net.core.somaxconn: 4096")],
                      ["server: first listening.backlog == 128"]),
    "burst-backlog": ("both listeners with a large backlog",
                      [("backlog: 2,", "backlog: 9,")],
                      ["h2: TcpExt.ListenOverflows >= 1"]),
    "syn-queue": ("syncookies on for h2 too",
                  [("net.ipv4.tcp_syncookies: 0", "net.ipv4.tcp_syncookies: 1")],
                  ["h2: TcpExt.TCPReqQFullDrop >= 1"]),
    "abortive-close": ("an orderly close (no zero linger)", [(", so-linger: 0}", "}")], None),
    "half-close": ("no half-close", [(", shutdown: true}", "}")], None),
    "blackhole": ("no drop rule", [("  - {at: 2.5, drop: {seconds: 2}}\n", "  - {at: 2.5, restore: {}}\n")],
                  # Not TCPTimeouts: OVS's userspace datapath loses packets, and CI once saw 3 timeouts
                  # without the rule. Only the outage doubles the RTO twice and silences the reader.
                  ["h2: max sockets.backoff where t>2.5,t<4.7 >= 2", "reader: count read where t>2.8,t<4.4 == 0",
                   "writer: max write.blocked_s >= 1.0"]),
    "lost-synack": ("no drop rule", [("drop: {from: h1, to: h2, flags: syn-ack, seconds: 3}", "restore: {}")],
                    ["h1: TcpExt.TCPSynRetrans >= 1"]),
    "rate-cap": ("no meter", [("meter: {from: h2, to: h1, kbps: 10000}", "restore: {}")],
                 ["h2: median sockets.send_q where t>5 >= 8192"]),
}


def mutated(name):
    path = library.resolve(name)
    text = path.read_text()
    what, edits, must_fail = MUTATIONS[name]
    for old, new in edits:
        assert old in text, f"{name}: the mutation's text {old!r} is no longer in {path.name}"
        text = text.replace(old, new)
    return library.load_text(text, name=f"{name}-mutated", path=f"{path.name} ({what})"), must_fail


def test_every_library_scenario_has_a_mutation():
    assert set(MUTATIONS) >= {p.stem for p in library.scenario_paths()} - {"rtt-window"}


@pytest.mark.parametrize("name", sorted(MUTATIONS))
def test_the_checks_a_mutation_must_fail_are_its_scenarios_checks(name):
    """No network: a band re-derived in a scenario must be re-named here, or the mutation proves nothing."""
    checks = {c.text for c in library.load_scenario(name).expect}
    missing = [c for c in MUTATIONS[name][2] or [] if c not in checks]
    assert not missing, f"{name}: not among its checks: {missing}"


@pytest.mark.parametrize("name", sorted(MUTATIONS))
def test_switching_off_the_lesson_fails_its_checks(name, tmp_path):
    if name not in {p.stem for p in library.scenario_paths()}:
        pytest.fail(f"{name} is in the mutation table but not in the library")
    sc, must_fail = mutated(name)
    result = run_scenario(sc, tmp_path)
    if result.skipped:
        pytest.fail(f"{name} was skipped ({result.skipped}): a mutation run must run")
    assert not result.error, result.error
    failed = {v.check for v in result.expectations if not v.passed and not v.skipped}
    assert failed, f"{name}: with {MUTATIONS[name][0]}, every check still passed"
    for check in must_fail or []:
        assert check in failed, f"{name}: with {MUTATIONS[name][0]}, {check!r} still passed: " + \
            str([v.message for v in result.expectations if v.check == check])
