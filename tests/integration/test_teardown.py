"""Teardown on real networks: signals during stop(), corrupt and foreign run records, the run directory's
owner and mode, machine sysctls someone else changed during a run."""
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from lab import runrecord
from lab.errors import LabError
from lab.network import LabNetwork, NetworkSpec, leftovers
from lab.network import sysctls as hostcfg
from lab.runrecord import RunRecord, process_start_time

from .helpers import needs_machine_netns, wait_until

pytestmark = pytest.mark.root
ROOT = Path(__file__).resolve().parents[2]

SLOW_STOP = textwrap.dedent("""
    import sys, time
    from lab.network import lifecycle, LabNetwork, NetworkSpec, Terminated
    from lab.guests import GuestProcess
    real = lifecycle.remove_run
    def slow_remove_run(record):
        print("stopping", flush=True)
        time.sleep(1.5)                    # the signal arrives here, in the middle of stop()
        report = real(record)
        print("removed", flush=True)
        return report
    lifecycle.remove_run = slow_remove_run
    lab = LabNetwork(NetworkSpec("dumbbell", args=[2, 1]))
    lab.start()
    GuestProcess("s", "sv1", "server", ["--port", 9000]).start(lab).wait_event("listening", 5)
    print(lab.run_id, flush=True)
    try:
        lab.stop()
        print("stop returned", flush=True)
    except (Terminated, KeyboardInterrupt) as e:
        print("raised after cleanup:", type(e).__name__, flush=True)
        sys.exit(143)
""")


def _script(code, env=None):
    return subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env=env)


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP, signal.SIGINT])
def test_a_signal_during_stop_waits_until_the_cleanup_is_complete(sig):
    proc = _script(SLOW_STOP)
    run_id = proc.stdout.readline().strip()
    assert run_id.startswith("t"), proc.stderr.read()
    record = RunRecord.load(runrecord.RECORD_DIR / f"{run_id}.json")
    assert leftovers(record)
    assert proc.stdout.readline().strip() == "stopping"
    proc.send_signal(sig)
    out, err = proc.communicate(timeout=30)
    assert out.splitlines()[0] == "removed", (out, err)      # the cleanup ran to its end, then the signal acted
    assert "raised after cleanup" in out and proc.returncode == 143, (out, err)
    assert leftovers(record) == []
    assert record.files() == []


WINDOW = textwrap.dedent("""
    import time
    from lab.network import lifecycle, LabNetwork, NetworkSpec
    real = lifecycle.new_record
    def slow_new_record(*args, **kwargs):
        record = real(*args, **kwargs)
        print(record.run_id, flush=True)
        time.sleep(1.5)                    # Ctrl-C arrives after the record exists, before `try` would be
        return record
    lifecycle.new_record = slow_new_record
    try:
        LabNetwork(NetworkSpec("single", args=[2])).start()
    except KeyboardInterrupt:
        print("interrupted", flush=True)
""")


def test_ctrl_c_right_after_the_record_is_created_leaves_nothing():
    proc = _script(WINDOW)
    run_id = proc.stdout.readline().strip()
    assert run_id.startswith("t"), proc.stderr.read()
    path = runrecord.RECORD_DIR / f"{run_id}.json"
    assert path.exists()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert "interrupted" in out, err
    assert not path.exists() and not list(runrecord.RECORD_DIR.glob(f"{run_id}.*"))
    assert not [n for n in os.listdir("/sys/class/net") if n.startswith(run_id)]


# -- records that must not be trusted ----------------------------------------------------------------
@pytest.fixture
def private_run_dir(tmp_path):
    """A run directory of the test's own (TCPLAB_RUN_DIR), root-owned 0700: colleagues' runs never see it."""
    d = tmp_path / "run"
    d.mkdir(mode=0o700)
    return d


def _dead_owner():
    proc = subprocess.Popen(["sleep", "30"])
    start = process_start_time(proc.pid)
    proc.kill()
    proc.wait()
    return proc.pid, start


def _record(run_id, **fields):
    pid, start = _dead_owner()
    return {"run_id": run_id, "owner_pid": pid, "owner_start": start, "purpose": "corrupt test", "switches": [],
            "ovs_bridges": [], "root_interfaces": [], "processes": {}, "machine_sysctls": {},
            "machine_run_values": {}, **fields}


def _cli(args, run_dir):
    return subprocess.run([sys.executable, "-m", "lab.cli", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=120, env={**os.environ, "TCPLAB_RUN_DIR": str(run_dir)})


def test_corrupt_records_are_reported_and_skipped_while_a_normal_run_passes(private_run_dir):
    d = private_run_dir
    # A record may name an interface that is not its run's: a bridge of the test's own stands for the
    # machine's eth0 (a namespace of its own, as in scripts/platform-check.sh, has no eth0). Named after
    # this process, so that one left by a killed session never stands in the way.
    victim = f"victim{os.getpid() % 100000}"
    subprocess.run(["ip", "link", "add", victim, "type", "bridge"], check=True)
    try:
        _corrupt_records(d, victim)
        assert os.path.exists(f"/sys/class/net/{victim}"), "an interface no run created was deleted"
    finally:
        subprocess.run(["ip", "link", "del", victim], check=False)


def _corrupt_records(d, victim):
    (d / "tbd1.json").write_text("{not json")
    (d / "tbd2.json").write_text(json.dumps(_record("tbd2", processes=[])))
    (d / "tbd3.json").write_text(json.dumps(_record("tbd3")))
    (d / "tbd3.pids").write_text("abc\n")
    (d / "tbd4.json").write_text(json.dumps(_record("tbd4", root_interfaces=["lo"])))
    (d / "tbd6.json").write_text(json.dumps(_record("tbd6", switches=[victim])))
    (d / "tbd5.json").write_text(json.dumps(_record("tbd5", machine_sysctls={"kernel.core_pattern": "1"})))
    lo_before = Path("/sys/class/net/lo/operstate").read_text()
    check = _cli(["cleanup", "--check"], d)
    assert check.returncode == 0, check.stderr
    for name in ("tbd1", "tbd2", "tbd3", "tbd4", "tbd5", "tbd6"):
        assert f"corrupt record skipped: {d}/{name}.json" in check.stdout, check.stdout
    assert "processes: expected a mapping" in check.stdout and "tbd3.pids:1: 'abc'" in check.stdout
    assert "'lo': not an interface name of run tbd4" in check.stdout
    assert f"'{victim}': not an interface name of run tbd6" in check.stdout
    assert "'kernel.core_pattern': not one of the guarded" in check.stdout
    cleanup = _cli(["cleanup"], d)
    assert cleanup.returncode == 0 and cleanup.stdout.count("corrupt record skipped") == 6, cleanup.stdout
    demo = _cli(["demo"], d)          # a run, with its own cleanup of dead runs first: not blocked
    assert demo.returncode == 0, demo.stderr
    assert "Tcp.PassiveOpens" in demo.stdout
    assert sorted(p.name for p in d.iterdir()) == ["tbd1.json", "tbd2.json", "tbd3.json", "tbd3.pids",
                                                   "tbd4.json", "tbd5.json", "tbd6.json"], "corrupt records are left as found"
    assert Path("/sys/class/net/lo/operstate").read_text() == lo_before


def test_a_record_naming_a_foreign_process_is_refused(private_run_dir):
    # A process of someone else's, in a namespace of its own, with a child there: a record copies its PID
    # and its real start time from /proc, and calls it a host.
    foreign = subprocess.Popen(["unshare", "-n", "sh", "-c", "sleep 60 & exec sleep 61"])
    members = []
    try:
        # `sleep 61` itself, not unshare (whose arguments contain "61" too) before it made the namespace
        assert wait_until(lambda: process_start_time(foreign.pid) is not None and
                          Path(f"/proc/{foreign.pid}/cmdline").read_bytes().split(b"\0")[:2] == [b"sleep", b"61"], 5)
        start = process_start_time(foreign.pid)
        ns = os.stat(f"/proc/{foreign.pid}/ns/net").st_ino

        def in_namespace():
            return [int(p) for p in os.listdir("/proc") if p.isdigit() and _ns(p) == ns]
        # the background `sleep 60` may still be a starting child when `exec sleep 61` shows (seen once)
        assert wait_until(lambda: len(in_namespace()) == 2, 5), in_namespace()
        members = in_namespace()
        (private_run_dir / "tfp1.json").write_text(json.dumps(_record(
            "tfp1", processes={str(foreign.pid): {"start": start, "role": "host h1"}})))
        out = _cli(["cleanup"], private_run_dir)
        assert out.returncode == 0, out.stderr
        assert f"process {foreign.pid} (host h1): not started by run tfp1" in out.stdout, out.stdout
        assert all(process_start_time(p) is not None for p in members), "a foreign process was killed"
        assert foreign.poll() is None
    finally:
        for pid in members:             # ours: started above, killed by PID
            if pid != foreign.pid and process_start_time(pid) is not None:
                os.kill(pid, signal.SIGKILL)
        foreign.kill()
        foreign.wait()


def _ns(pid):
    try:
        return os.stat(f"/proc/{pid}/ns/net").st_ino
    except OSError:
        return None


@pytest.mark.parametrize("problem", ["mode 0755", "another owner"])
def test_a_run_dir_open_to_others_is_refused(tmp_path, monkeypatch, problem):
    d = tmp_path / "run"
    d.mkdir(mode=0o700)
    if problem == "mode 0755":
        d.chmod(0o755)
    else:
        os.chown(d, 65534, 65534)
    monkeypatch.setattr(runrecord, "RECORD_DIR", d)
    with pytest.raises(LabError, match="must be owned by root with mode 0700"):
        RunRecord.create("test")
    with pytest.raises(LabError, match="must be owned by root with mode 0700"):
        LabNetwork(NetworkSpec("pair")).start()
    assert list(d.iterdir()) == []
    out = _cli(["demo"], d)
    assert out.returncode == 2 and "must be owned by root with mode 0700" in out.stderr, out.stderr


def test_a_new_run_dir_is_root_only(tmp_path, monkeypatch):
    d = tmp_path / "fresh" / "run"
    monkeypatch.setattr(runrecord, "RECORD_DIR", d)
    record = RunRecord.create("test")
    try:
        st = os.stat(d)
        assert (st.st_uid, st.st_mode & 0o777) == (0, 0o700)
        assert os.stat(record.path).st_mode & 0o077 == 0
    finally:
        record.remove()


# -- machine sysctls ------------------------------------------------------------------------------------
KEY = "net.ipv4.neigh.default.gc_thresh1"


def _write(key, value):
    with open("/proc/sys/" + key.replace(".", "/"), "w") as f:
        f.write(str(value))


@needs_machine_netns
def test_a_machine_sysctl_someone_else_changed_during_the_run_is_reported_and_left():
    original = hostcfg.read_machine_sysctls([KEY])[KEY]
    other = str(int(original) + 1)
    try:
        lab = LabNetwork(NetworkSpec("pair")).start()
        try:
            _write(KEY, other)                                  # someone else, while the run is up
        finally:
            lab.stop()
        assert hostcfg.read_machine_sysctls([KEY])[KEY] == other, "someone else's change was reverted"
        assert lab.teardown_report["sysctls"] == {"restored": {}, "left": {KEY: (original, other)}}
    finally:
        _write(KEY, original)


@needs_machine_netns
def test_a_value_the_run_itself_wrote_is_put_back():
    # Mininet's fixLimits() raises gc_thresh1 to 4096: if the machine holds exactly that after the run (and
    # did not before), it is the run's doing, and is undone.
    original = hostcfg.read_machine_sysctls([KEY])[KEY]
    if int(original) >= 4096:
        pytest.skip(f"{KEY} is already {original} here: fixLimits() would not change it")
    try:
        lab = LabNetwork(NetworkSpec("pair")).start()
        try:
            _write(KEY, 4096)
        finally:
            lab.stop()
        assert hostcfg.read_machine_sysctls([KEY])[KEY] == original
        assert lab.teardown_report["sysctls"] == {"restored": {KEY: ("4096", original)}, "left": {}}
    finally:
        _write(KEY, original)


def test_a_network_with_a_controller_stops_without_waiting_for_it():
    # os-ken ignores SIGTERM while switches hold connections to it: the switches must go first, or every
    # OpenFlow run waits the 5 s ControllerProcess.stop() allows before its SIGKILL.
    from lab.network import ovs_running
    if not ovs_running():
        pytest.skip("the Open vSwitch daemons are not running here")
    lab = LabNetwork(NetworkSpec("single", args=[2], controller="lab"), purpose="test controller stop").start()
    record = RunRecord(**vars(lab.record))
    t0 = time.monotonic()
    lab.stop()
    took = time.monotonic() - t0
    assert took < 3, f"stop took {took:.1f} s"
    assert leftovers(record) == []
