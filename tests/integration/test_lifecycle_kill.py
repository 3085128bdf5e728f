"""A SIGKILL at any moment of a large network's start, then `tcplab cleanup`, leaves nothing: every shell
spawned, every veth pair, both bridges and the switch-to-switch link. The kills land at random moments
(the seed is printed); each uses a run directory of its own so that its record is found for sure."""
import os
import random
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.root
ROOT = Path(__file__).resolve().parents[2]
START = """
import time
from lab.network import LabNetwork, NetworkSpec
lab = LabNetwork(NetworkSpec("dumbbell", args=[100, 1]))
lab.start()
print("up", lab.run_id, flush=True)
time.sleep(600)
"""


def _marked(run_ids):
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(f"TCPLAB_RUN={r}".encode() in env for r in run_ids):
            found.append(pid)
    return found


def test_sigkill_at_random_moments_of_a_large_start_then_cleanup_leaves_nothing(tmp_path):
    seed = int(os.environ.get("TCPLAB_KILL_SEED", time.time()))
    rng = random.Random(seed)
    print(f"seed {seed} (TCPLAB_KILL_SEED={seed} repeats it)")
    run_dir = tmp_path / "run"
    run_dir.mkdir(mode=0o700)
    env = {**os.environ, "TCPLAB_RUN_DIR": str(run_dir)}
    links_before = set(os.listdir("/sys/class/net"))
    # How long a whole start takes here, so that the kills spread over all of it.
    proc = subprocess.Popen([sys.executable, "-c", START], cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, text=True)
    t0 = time.monotonic()
    assert proc.stdout.readline().startswith("up"), "the network did not start"
    whole = time.monotonic() - t0
    proc.kill()
    proc.communicate()
    moments = [whole] + [rng.uniform(0.05, whole * 1.1) for _ in range(5)]
    seen = []
    for moment in moments:
        proc = subprocess.Popen([sys.executable, "-c", START], cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.DEVNULL)
        time.sleep(moment)
        proc.kill()
        proc.wait()
        run_ids = sorted(p.stem for p in run_dir.glob("t*.json"))
        seen += run_ids
        out = subprocess.run([sys.executable, "-m", "lab.cli", "cleanup"], cwd=ROOT, env=env, capture_output=True,
                             text=True, timeout=120)
        assert out.returncode == 0 and "corrupt" not in out.stdout, out.stdout + out.stderr
        assert list(run_dir.iterdir()) == [], f"kill at {moment:.2f} s: files left: {list(run_dir.iterdir())}"
        left = sorted(n for n in set(os.listdir("/sys/class/net")) - links_before if n[:4] in run_ids)
        assert left == [], f"kill at {moment:.2f} s: interfaces left: {left[:10]}"
        assert _marked(run_ids) == [], f"kill at {moment:.2f} s: processes left"
    assert seen, "no kill landed after the run record was created"
    assert len(set(seen)) >= 2
