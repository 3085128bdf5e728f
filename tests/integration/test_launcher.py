"""Guests forked from the run's launcher (lab/network/launcher.py) behave as exec'd ones on a real network:
same kernel, same verdicts, each in its own host; exit statuses reported; a killed run leaves nothing."""
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from lab.guests import GuestProcess
from lab.library import load_text
from lab.network import LabNetwork, NetworkSpec
from lab.runner import FORK_GUESTS_ABOVE, run_scenario

from .helpers import wait_until

pytestmark = pytest.mark.root
ROOT = Path(__file__).resolve().parents[2]


def _netns(pid):
    return os.stat(f"/proc/{pid}/ns/net").st_ino


def test_forked_guests_run_in_their_hosts_and_report_what_the_kernel_did():
    started = []
    with LabNetwork(NetworkSpec("single", args=[3]), purpose="test launcher") as lab:
        try:
            _forked_guests(lab, started)
        finally:
            for proc in started:
                proc.stdout.close(), proc.stderr.close()


def _forked_guests(lab, started):
    def start(host, *args):
        started.append(lab.start_guest(host, args[0], list(args[1:]), fork=True))
        return started[-1]
    server = start("h1", "server", "--port", "9000", "--accept", "never", "--backlog", "1")
    clients = [start(h, "client", "connect", "10.0.0.1:9000", "--count", "3", "--timeout", "1") for h in ("h2", "h3")]
    # each in its own host's namespace (not the launcher's, not the lab's), in the lab's directory (as
    # mnexec leaves it), held by a descriptor no program the lab starts inherits
    assert _netns(server.pid) == _netns(lab.host("h1").pid) != _netns(os.getpid())
    assert os.readlink(f"/proc/{server.pid}/cwd") == os.getcwd()
    assert not os.get_inheritable(server._pidfd)
    assert {_netns(c.pid) for c in clients} == {_netns(lab.host("h2").pid), _netns(lab.host("h3").pid)}
    for c in clients:
        assert c.wait(20) == 0, c.stderr.read()
        lines = c.stdout.read()
        assert '"event": "summary"' in lines and '"attempts": 3' in lines
    # The exit status comes from the launcher: a signal shows as minus its number, as with Popen.
    assert server.poll() is None
    server.send_signal(signal.SIGKILL)
    assert server.wait(5) == -signal.SIGKILL
    ss = subprocess.run(["mnexec", "-a", str(lab.host("h1").pid), "ss", "-Htln", "sport", "= :9000"],
                        capture_output=True, text=True).stdout
    assert ss.strip() == "", "the killed server's listener is still there"
    bad = start("h2", "client", "no-such-mode")
    assert bad.wait(5) == 2 and "invalid choice" in bad.stderr.read()


def test_a_guest_outliving_a_killed_launcher_is_seen_to_end_with_its_status_unknown():
    with LabNetwork(NetworkSpec("single", args=[2]), purpose="test launcher killed") as lab:
        g = GuestProcess("s", "h1", "server", ["--port", "9000", "--duration", "1.5"], fork=True).start(lab)
        assert g.wait_event("listening", 5), g.stderr
        lab._launcher.proc.kill()           # its parent, the one that would learn its exit status
        assert wait_until(lambda: not g.running(), 5), "the guest still reads as running after it ended"
        assert g.proc.ended and g.proc.returncode is None      # unknown, not made up
        assert g.wait_event("summary", 2)["reason"] == "duration"
        g.stop()


FEW = """
title: a small overflow, exec'd or forked
topology: single,4
guests:
  - {name: app, host: h1, program: server, args: {port: 9000, backlog: 1, accept: never, queue-interval: 0.05}, ready: listening}
  - {name: c2, host: h2, program: client, args: {mode: connect, server: "{h1}:9000", count: 4, timeout: 1}}
  - {name: c3, host: h3, program: client, args: {mode: connect, server: "{h1}:9000", count: 4, timeout: 1}}
  - {name: c4, host: h4, program: client, args: {mode: connect, server: "{h1}:9000", count: 4, timeout: 1}}
duration: 4
expect:
  - "app: max accept-queue.length == 2"
  - "h1: TcpExt.ListenOverflows >= 1"
  - "c2: summary.attempts == 4"
"""


def test_the_same_scenario_gives_the_same_verdicts_exec_or_forked(tmp_path):
    sc = load_text(FEW, name="few")
    assert len(sc.guests) <= FORK_GUESTS_ABOVE        # "auto" would exec these: both ways are asked for
    verdicts = {}
    for launch in ("exec", "fork"):
        result = run_scenario(sc, tmp_path / launch, launch=launch)
        assert result.status == "PASS", (launch, result.error, [v.message for v in result.expectations])
        verdicts[launch] = [(v.passed, v.observed) for v in result.expectations]
        assert {g.exit for name, g in result.guests.items() if name != "app"} == {0}
    assert [p for p, _ in verdicts["exec"]] == [p for p, _ in verdicts["fork"]]


KILLED = """
import sys, time
from lab.runner import run_scenario
from lab.guests import GuestProcess
from lab.library import load_text
text = open(sys.argv[1]).read()
run_scenario(load_text(text, name="killed"), progress=lambda line: print(line, flush=True), launch="fork")
"""


def test_sigkill_while_forked_guests_run_then_cleanup_leaves_nothing(tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir(mode=0o700)
    scenario = tmp_path / "s.yaml"
    scenario.write_text(FEW.replace("duration: 4", "duration: 30").replace("timeout: 1}", "timeout: 1, start-at: \"{t0+20}\"}"))
    env = {**os.environ, "TCPLAB_RUN_DIR": str(run_dir)}
    proc = subprocess.Popen([sys.executable, "-c", KILLED, str(scenario)], cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, text=True)
    try:
        for line in proc.stdout:
            if " c4 on h4: client" in line:
                break
        records = list(run_dir.glob("t*.json"))
        assert len(records) == 1
        run_id = records[0].stem
        marked = [pid for pid in filter(str.isdigit, os.listdir("/proc")) if _has_marker(pid, run_id)]
        assert len(marked) >= 5, f"the launcher and four guests should be running: {marked}"
    finally:
        proc.kill()
        proc.wait()
        proc.stdout.close()
    out = subprocess.run([sys.executable, "-m", "lab.cli", "cleanup"], cwd=ROOT, env=env, capture_output=True,
                         text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert wait_until(lambda: not [p for p in filter(str.isdigit, os.listdir("/proc")) if _has_marker(p, run_id)], 5), \
        "processes of the killed run are left"
    assert list(run_dir.iterdir()) == []


def _has_marker(pid, run_id):
    try:
        return f"TCPLAB_RUN={run_id}".encode() in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return False


def test_a_storm_sized_scenario_forks_its_guests(monkeypatch):
    launched = []
    real = LabNetwork.start_guest

    def spy(self, host_name, program, args, env=None, fork=False):      # counts, and starts them for real
        launched.append(fork)
        return real(self, host_name, program, args, env=env, fork=fork)
    monkeypatch.setattr(LabNetwork, "start_guest", spy)
    n = FORK_GUESTS_ABOVE + 1
    lines = "\n".join(f'  - {{name: cl{i}, host: c{i}, program: client, args: {{mode: connect, server: "{{server}}:9000", '
                      f'count: 1, timeout: 2}}}}' for i in range(1, n + 1))
    sc = load_text(f"""
title: many clients
topology: star,{n}
guests:
  - {{name: app, host: server, program: server, args: {{port: 9000, backlog: 64}}, ready: listening}}
{lines}
duration: 8
expect:
  - "server: Tcp.PassiveOpens == {n}"
""", name="many")
    result = run_scenario(sc)
    assert result.status == "PASS", (result.error, [v.message for v in result.expectations])
    assert launched == [True] * (n + 1)
    assert [name for name, g in result.guests.items() if name.startswith("cl") and g.exit != 0] == []
