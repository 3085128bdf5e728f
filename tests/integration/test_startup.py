"""No silent hangs: when host shells cannot start, the run fails within a bounded time, says why, and
leaves nothing. Reproduced with an `mnexec` first on PATH that refuses (or never answers) for host shells
(`mnexec -cdn ...`), as the real one does in a plain chroot; every other use goes to the real mnexec."""
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.root
ROOT = Path(__file__).resolve().parents[2]

FAKE = """#!/bin/sh
case "$1" in
  -cdn) {action} ;;
esac
exec {real} "$@"
"""
ACTIONS = {
    "refuses": 'echo "mnexec: setns: Operation not permitted" >&2; exit 1',
    "never answers": "exec sleep 613",
}


def _sleepers():
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            if Path(f"/proc/{pid}/cmdline").read_bytes() == b"sleep\x00613\x00":
                found.append(pid)
        except OSError:
            pass
    return found


@pytest.mark.parametrize("how", ACTIONS)
def test_hosts_that_cannot_start_fail_the_run_quickly_with_the_cause(tmp_path, how):
    bin_dir, run_dir = tmp_path / "bin", tmp_path / "run"
    bin_dir.mkdir()
    run_dir.mkdir(mode=0o700)
    real = subprocess.run(["which", "mnexec"], capture_output=True, text=True).stdout.strip()
    fake = bin_dir / "mnexec"
    fake.write_text(FAKE.format(action=ACTIONS[how], real=real))
    fake.chmod(0o755)
    links = set(os.listdir("/sys/class/net"))
    # A bystander in the root namespace: the shell that "never answers" also sits there, named as a host,
    # and cleanup must kill that one process, never sweep the namespace it shares with the machine.
    bystander = subprocess.Popen(["sleep", "614"])
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "TCPLAB_RUN_DIR": str(run_dir)}
    t0 = time.monotonic()
    try:
        out = subprocess.run([sys.executable, "-m", "lab.cli", "run", "partial-read", "--out", str(tmp_path / "out"),
                              "--quiet"], cwd=ROOT, capture_output=True, text=True, timeout=60, env=env)
        assert bystander.poll() is None, "cleanup killed a process that was not the run's"
    finally:
        bystander.kill()
        bystander.wait()
    took = time.monotonic() - t0
    assert took < 20, f"{took:.1f} s: the failure must come within a few seconds"
    text = out.stdout + out.stderr
    assert out.returncode != 0, text
    assert "its shell did not start: `mnexec -cdn env PS1=\\177 bash --norc --noediting -is mininet:" in text, text
    if how == "refuses":
        assert "exited with status 1: mnexec: setns: Operation not permitted" in text, text
    else:
        assert "gave no prompt within 5 s" in text, text
    assert list(run_dir.iterdir()) == [], "the run's record was left"
    left = [n for n in set(os.listdir("/sys/class/net")) - links if n[:4] not in _live_run_ids()]
    assert left == [], "interfaces left"
    assert _sleepers() == [], "the shell that never answered was left running"


def _live_run_ids():
    from lab.runrecord import all_records
    return {r.run_id for r in all_records() if r.owner_alive()}
