"""The os-ken controller with OVS userspace switches, on a real network: forwarding, rules, statistics, and
its control channel (only the owning run may use it; every request answered; bounded memory)."""
import json
import os
import queue
import select
import signal
import socket
import stat
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

from lab.controller import events as controller_events
from lab.controller import protocol
from lab.controller.channel import read_lines
from lab.network import LabNetwork, NetworkSpec, leftovers
from lab.network.teardown import cleanup_dead_runs
from lab.runrecord import RECORD_DIR, RunRecord

from .helpers import guest, wait_until

pytestmark = pytest.mark.root
ROOT = Path(__file__).resolve().parents[2]
MiB = 1024 * 1024


def _ovs_bridges():
    return set(subprocess.run(["ovs-vsctl", "--timeout=5", "list-br"], capture_output=True, text=True).stdout.split())


@pytest.fixture(scope="module")
def ofnet():
    with LabNetwork(NetworkSpec("dumbbell", args=[2, 1], controller="lab"), purpose="test controller") as lab:
        yield lab


def _events(ctl, kind, after=0):
    return [e for e in list(ctl.events)[after:] if e.get("event") == kind]


def _rules_since(ctl, mark):
    """The rule events after event MARK, read to a barrier: a restore is asked for and its event waited for. The
    controller emits a request's rule event before it answers, so a rule of any request answered before the
    restore is in the stream ahead of the barrier; an empty list cannot come from events not read yet.
    The barrier is the request's own event, the one without a dpid: a switch's report of a rule an earlier
    restore deleted also says reason "asked", and can arrive after MARK, ahead of the rules to be seen."""
    ctl.command(cmd="restore")
    ends = lambda: [i for i, e in enumerate(list(ctl.events)[mark:])
                    if e.get("event") == "restore" and e.get("reason") == "asked" and "dpid" not in e]
    assert wait_until(ends, 5), "the controller's restore event was not read within 5 s"
    return [e for e in list(ctl.events)[mark:mark + ends()[0]] if e.get("event") == "rule"]


def _talk(path, *lines, timeout=5):
    """Send raw LINES on one connection to the channel at PATH; the parsed answer to each."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(str(path))
        answers = []
        for line in lines:
            s.sendall(line + b"\n")
            answers.append(json.loads(next(read_lines(s.recv))))
        return answers


def _memory(pid):
    """(VmRSS, VmHWM) of PID in bytes: its resident memory now, and at its peak."""
    fields = dict(line.split(":", 1) for line in Path(f"/proc/{pid}/status").read_text().splitlines())
    return tuple(int(fields[k].split()[0]) * 1024 for k in ("VmRSS", "VmHWM"))


def _flood(sock, total, chunk=65536):
    """Send one line of up to TOTAL bytes, as a client that listens: stop when an answer can be read.
    Returns (bytes sent, the answer or None)."""
    sent, data = 0, b"x" * chunk
    sock.setblocking(False)
    while sent < total:
        readable, writable, _ = select.select([sock], [sock], [], 10)
        if readable or not writable:
            break
        try:
            sent += sock.send(data)
        except BlockingIOError:
            continue
        except (BrokenPipeError, ConnectionResetError):
            break
    sock.settimeout(10)
    try:
        return sent, json.loads(next(read_lines(sock.recv)))
    except (OSError, StopIteration):
        return sent, None


def _settled(read, quiet, timeout):
    """READ()'s value once it has not changed for QUIET seconds (bounded by TIMEOUT); None if it kept moving."""
    deadline = time.monotonic() + timeout
    value, since = read(), time.monotonic()
    while time.monotonic() < deadline:
        time.sleep(0.05)
        now = read()
        if now != value:
            value, since = now, time.monotonic()
        elif time.monotonic() - since >= quiet:
            return value
    return None


def _received(server):
    return sum(e.get("got", 0) for e in server.events if e.get("event") == "read")


def _rule_packets(ctl, rule):
    """The packets rule RULE matched so far, summed over switches (their latest flow-stats)."""
    latest = {}
    for e in _events(ctl, "flow-stats"):
        if e["rule"] == rule:
            latest[e["dpid"]] = e["packets"]
    return sum(latest.values())


# -- forwarding and rules ---------------------------------------------------------------------------------
def test_learning_switch_reachability(ofnet):
    assert ofnet.net.pingAll(timeout=2) == 0
    assert {e["dpid"] for e in _events(ofnet.controller, "switch")} == {1, 2}


def test_drop_rule_stops_a_flow_and_restore_resumes_it(ofnet):
    ctl = ofnet.controller
    server = guest(ofnet, "sv1", "server", "--port", 9300, ready="listening")
    client = guest(ofnet, "c1", "client", "write", f"{ofnet.host('sv1').IP()}:9300", "--write-size", 16384,
                   "--pause", 0.005, "--duration", 12)
    try:
        assert wait_until(lambda: _received(server) > 100_000, 5)
        try:
            rule = ctl.command(cmd="drop", src=ofnet.host("c1").IP(), dst=ofnet.host("sv1").IP())["rule"]
            # What was in flight arrives, then nothing: the count settles.
            stalled = _settled(lambda: _received(server), quiet=0.5, timeout=5)
            assert stalled is not None, "data kept arriving after the drop rule was installed"
            # The rule drops the client's retransmissions while nothing more reaches the server.
            assert wait_until(lambda: _rule_packets(ctl, rule) >= 3, 6), "the drop rule matched no packets"
            assert _received(server) == stalled, "data arrived through a drop rule"
        finally:
            ctl.command(cmd="restore")       # never leave a drop rule on the shared network
        assert wait_until(lambda: _received(server) > stalled + 100_000, 8), "the flow did not resume after restore"
    finally:
        client.stop(), server.stop()


def test_a_meter_with_seconds_is_reported_and_expires_by_itself(ofnet):
    ctl = ofnet.controller
    mark = len(ctl.events)
    src, dst = ofnet.host("c2").IP(), ofnet.host("sv1").IP()
    try:
        answer = ctl.command(cmd="meter", kbps=5000, src=src, dst=dst, flags=None, seconds=1)
        rule = answer["rule"]
        # The answer comes over the control channel, the event over the controller's stdout: it may follow.
        assert wait_until(lambda: [e for e in _events(ctl, "rule", mark) if e["rule"] == rule], 5), \
            "no rule event for the meter"
        [event] = [e for e in _events(ctl, "rule", mark) if e["rule"] == rule]
        assert event["kind"] == "meter" and event["kbps"] == 5000 and event["seconds"] == 1
        assert (event["src"], event["dst"], event["meter"]) == (src, dst, answer["meter"])
        assert "flags" not in event                  # not given: absent, never null
        # OVS removes the rule after its hard_timeout: one restore event per switch, reason timeout.
        expired = wait_until(lambda: {e["dpid"] for e in _events(ctl, "restore", mark)
                                      if e.get("rule") == rule and e["reason"] == "timeout"} == {1, 2}, 6)
        assert expired, _events(ctl, "restore", mark)
    finally:
        ctl.command(cmd="restore")


def test_port_statistics_grow_with_traffic(ofnet):
    def latest():
        """The newest rx_bytes of each port of s1 (dpid 1)."""
        ports = {}
        for e in _events(ofnet.controller, "port-stats"):
            if e["dpid"] == 1:
                ports[e["port"]] = e["rx_bytes"]
        return ports

    before = latest()
    server = guest(ofnet, "sv1", "server", "--port", 9301, ready="listening")
    client = guest(ofnet, "c2", "client", "write", f"{ofnet.host('sv1').IP()}:9301", "--total", 5_000_000)
    try:
        assert client.wait(20)
        # The client exits once its last bytes are in its send buffer; over the userspace datapath a lost
        # tail can cross seconds later (a suite run stopped the server first: 4,834,932 bytes counted).
        assert server.wait_event("eof", 30), "the server did not read the 5 MB to the end"
    finally:
        client.stop(), server.stop()
    # c2's port on s1 received the 5 MB (plus headers); the other ports did not.
    assert wait_until(lambda: any(v - before.get(p, 0) >= 5_000_000 for p, v in latest().items()), 3), latest()


# -- the control channel ----------------------------------------------------------------------------------
def test_channel_is_a_private_socket_in_the_run_directory(ofnet):
    path = ofnet.controller.ctl_path
    assert path == RECORD_DIR / f"{ofnet.run_id}.ctl"
    st = os.lstat(path)
    assert stat.S_ISSOCK(st.st_mode) and stat.S_IMODE(st.st_mode) == 0o600 and st.st_uid == 0
    assert _events(ofnet.controller, "control")[0]["path"] == str(path)


@pytest.mark.parametrize("attempt", range(5))
def test_the_no_rule_check_sees_a_rule_installed_just_before_it(ofnet, attempt):
    # The negative checks below read to a barrier; this shows they can fail. Each attempt's rule is asked for
    # right after the last attempt's restore, whose switch reports may still be on their way.
    ctl = ofnet.controller
    mark = len(ctl.events)
    rule = ctl.command(cmd="drop", src=ofnet.host("c2").IP(), dst=ofnet.host("sv1").IP(), seconds=1)["rule"]
    assert [(e["rule"], e["kind"]) for e in _rules_since(ctl, mark)] == [(rule, "drop")]


BAD_LINES = [b"[]", b'{"cmd": "drop", "seconds": 70000}', b'{"cmd": "meter", "kbps": 5e9}',
             b'{"cmd": "drop", "src": "banana"}', b"[" * 30000 + b"]" * 30000, b'{"cmd": "drop", "seconds": 2.5}',
             b'{"cmd": "drop", "flags": "urg"}', b'{"cmd": "drop", "from": "h1"}', b'{"cmd": "explode"}',
             b"not json", b"\xff\xfe", b"", b'{"cmd": "drop", "cmd": "drop"}', b'{"cmd": "drop", "seconds": NaN}',
             b'{"cmd": "meter"}', b'{"cmd": "drop", "dst": "10.0.0.1", "src": {"nested": [1]}}']


def test_bad_requests_are_each_answered_and_the_controller_still_serves(ofnet):
    ctl = ofnet.controller
    mark = len(ctl.events)
    answers = _talk(ctl.ctl_path, *BAD_LINES, b'{"cmd": "switches"}')
    assert [a["ok"] for a in answers] == [False] * len(BAD_LINES) + [True]
    for line, a in zip(BAD_LINES, answers):
        assert a["error"], line[:40]
    assert "1-600" in answers[1]["error"] and "1-10000000" in answers[2]["error"] and "banana" in answers[3]["error"]
    assert answers[-1]["switches"] == [1, 2]
    # Each on its own connection too (a refused request must not end the listener).
    for line in BAD_LINES[:5]:
        assert _talk(ctl.ctl_path, line)[0]["ok"] is False
    assert ctl.proc.poll() is None
    assert _rules_since(ctl, mark) == [], "a refused request installed a rule"
    assert ctl.command(cmd="switches")["switches"] == [1, 2]
    assert ofnet.net.ping([ofnet.host("c1"), ofnet.host("sv1")], timeout=2) == 0


def test_an_oversized_line_is_refused_with_bounded_memory(ofnet):
    ctl = ofnet.controller
    rss0, peak0 = _memory(ctl.proc.pid)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.connect(str(ctl.ctl_path))
        sent, answer = _flood(s, 200 * MiB, chunk=MiB)   # one 200 MiB line, no newline
    rss1, peak1 = _memory(ctl.proc.pid)
    assert answer, f"no answer after {sent / MiB:.0f} MiB without a newline"
    assert answer["ok"] is False and f"longer than {protocol.MAX_LINE} bytes" in answer["error"]
    assert sent < 200 * MiB, "the controller kept reading a 200 MiB line"
    print(f"sent {sent / MiB:.1f} MiB before refusal; controller RSS {rss0 / MiB:.1f} -> {rss1 / MiB:.1f} MiB, "
          f"peak {peak0 / MiB:.1f} -> {peak1 / MiB:.1f} MiB")
    assert peak1 - peak0 < 8 * MiB and rss1 - rss0 < 8 * MiB
    assert ctl.command(cmd="switches")["switches"] == [1, 2]


OTHER = ("import socket, sys\n"
         "s = socket.socket(socket.AF_UNIX)\n"
         "try:\n"
         "    s.connect(sys.argv[1])\n"
         "except OSError as e:\n"
         "    print('connect:', type(e).__name__); sys.exit(0)\n"
         "s.sendall(b'{\"cmd\": \"drop\"}\\n')\n"
         "print(s.recv(4096).decode(), end='')\n")


def test_another_process_cannot_use_the_channel(ofnet):
    ctl = ofnet.controller
    mark = len(ctl.events)
    # Another root process (same uid as the run) is answered with an error and closed.
    out = subprocess.run([sys.executable, "-c", OTHER, str(ctl.ctl_path)], capture_output=True, text=True, timeout=20)
    answer = json.loads(out.stdout)
    assert answer["ok"] is False and "not the run that started this controller" in answer["error"]
    # Another user cannot even connect (mode 0600).
    out = subprocess.run(["/usr/bin/python3", "-S", "-c", OTHER, str(ctl.ctl_path)], capture_output=True, text=True,
                         timeout=20, user=65534, group=65534, cwd="/")
    assert out.stdout.strip() == "connect: PermissionError", out.stdout + out.stderr
    assert _rules_since(ctl, mark) == [], "a stranger's request installed a rule"
    assert ofnet.net.ping([ofnet.host("c1"), ofnet.host("sv1")], timeout=2) == 0


SECOND_RUN = textwrap.dedent("""
    import json, socket, sys
    from lab.network import LabNetwork, NetworkSpec
    from lab.controller.channel import read_lines

    def attempt(path):
        s = socket.socket(socket.AF_UNIX)
        s.settimeout(5)
        try:
            s.connect(path)
            s.sendall(b'{"cmd": "drop"}\\n')
            return json.loads(next(read_lines(s.recv)))
        except OSError as e:
            return {"ok": False, "error": type(e).__name__}

    with LabNetwork(NetworkSpec("single", args=[2], controller="lab"), purpose="test second run") as lab:
        own = lab.controller.command(cmd="switches")
        print("RESULT", json.dumps({"path": str(lab.controller.ctl_path), "run_id": lab.run_id,
                                    "own": own, "theirs": attempt(sys.argv[1])}), flush=True)
        sys.stdin.readline()      # hold the run until the first one has tried this run's channel
""")


def _lines(stream):
    """A queue filled with STREAM's lines by a thread (so that waiting for one is bounded), and the thread."""
    q = queue.Queue()
    reader = threading.Thread(target=lambda: [q.put(line) for line in stream], daemon=True)
    reader.start()
    return q, reader


def _result(lines, timeout):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
        except queue.Empty:
            break
        if line.startswith("RESULT "):
            return json.loads(line[len("RESULT "):])
    return None


def test_two_runs_cannot_reach_each_others_channel(ofnet):
    ctl = ofnet.controller
    mark = len(ctl.events)
    proc = subprocess.Popen([sys.executable, "-c", SECOND_RUN, str(ctl.ctl_path)], cwd=ROOT, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines, reader = _lines(proc.stdout)
    try:
        second = _result(lines, 90)
        assert second, f"the second run did not start: {proc.stderr.read() if proc.poll() is not None else ''}"
        assert second["own"] == {"ok": True, "switches": [1]}           # each run can use its own channel
        assert second["theirs"]["ok"] is False and "not the run" in second["theirs"]["error"]
        answer = _talk(second["path"], b'{"cmd": "drop"}')[0]
        assert answer["ok"] is False and "not the run that started this controller" in answer["error"]
        assert _rules_since(ctl, mark) == []
        assert ctl.command(cmd="switches")["switches"] == [1, 2]
        # The second run dies without cleaning up; the next cleanup removes its channel with its record.
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        assert Path(second["path"]).is_socket()
        assert second["run_id"] in cleanup_dead_runs()
        assert not Path(second["path"]).exists()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
        reader.join(10)
        for pipe in (proc.stdin, proc.stdout, proc.stderr):
            pipe.close()
        cleanup_dead_runs()


def test_every_controller_event_is_declared(ofnet):
    seen = list(ofnet.controller.events)
    assert {e["event"] for e in seen} >= {"control", "switch", "rule", "restore", "port-stats", "flow-stats"}
    problems = sorted({p for e in seen for p in controller_events.problems(e)})
    assert problems == []


def test_controller_channel_and_ovs_bridges_are_gone_after_the_run():
    with LabNetwork(NetworkSpec("single", args=[2], controller="lab")) as lab:
        record = RunRecord(**vars(lab.record))
        pid = lab.controller.proc.pid
        path = lab.controller.ctl_path
        assert path.is_socket()
        assert set(record.ovs_bridges) <= _ovs_bridges()
        assert any(info["role"] == "controller" for info in record.processes.values())
    assert leftovers(record) == []
    assert not set(record.ovs_bridges) & _ovs_bridges()
    assert not path.exists()
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
