"""The same verdict whatever the machine's default congestion control: the library passes with the root
namespace set to cubic and to reno (this machine's own default is bbr), the hosts' sockets use what the
scenario says, and the machine is put back exactly. A repeat run reports each check's pass rate and spread."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from lab.results import Result
from lab.stability import machine_congestion

from .helpers import needs_machine_netns

pytestmark = pytest.mark.root
ROOT = Path(__file__).resolve().parents[2]
CC = Path("/proc/sys/net/ipv4/tcp_congestion_control")
ALLOWED = Path("/proc/sys/net/ipv4/tcp_allowed_congestion_control")


def _run(*args):
    return subprocess.run([sys.executable, "-m", "lab.cli", "run", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=900)


@pytest.mark.parametrize("machine", ["cubic", "reno"])
@needs_machine_netns
def test_the_library_passes_whatever_the_machines_default(machine, tmp_path):
    before = (CC.read_text(), ALLOWED.read_text())
    with machine_congestion(machine):
        assert CC.read_text().strip() == machine
        out = _run("all", "--out", str(tmp_path), "--quiet")
    assert (CC.read_text(), ALLOWED.read_text()) == before, "the machine's settings were not put back"
    assert out.returncode == 0, out.stdout[-3000:]
    for results in tmp_path.glob("*/results.json"):
        r = Result.from_json(results)
        if r.status == "SKIP":
            assert "netem" in r.skipped
            continue
        assert set(r.congestion.values()) == {"cubic"}, (r.scenario, r.congestion)
        used = {e.get("congestion") for g in r.guests.values() for e in g.events
                if e.get("event") in ("connect", "listening", "accepted") and e.get("congestion")}
        assert used <= {"cubic"} and (used or r.scenario in ("syn-queue",)), (r.scenario, used)


def test_a_scenario_can_pin_another_algorithm(tmp_path):
    text = (ROOT / "scenarios" / "reads-writes" / "partial-read.yaml").read_text().replace("topology: single,2", 'topology: single,2\nhosts:\n  "*":\n    sysctl: {net.ipv4.tcp_congestion_control: reno}')
    path = tmp_path / "reno.yaml"
    path.write_text(text)
    out = _run(str(path), "--out", str(tmp_path / "out"))
    assert out.returncode == 0, out.stdout[-2000:]
    r = Result.from_json(tmp_path / "out" / "reno" / "results.json")
    assert set(r.congestion.values()) == {"reno"}
    assert {e["congestion"] for e in r.guest("large").of("connect")} == {"reno"}


def test_repeats_report_pass_rates_and_spreads(tmp_path):
    out = _run("partial-read", "--repeat", "3", "--out", str(tmp_path))
    assert out.returncode == 0, out.stdout[-2000:]
    assert "Over 3 runs each" in out.stdout and "3/3" in out.stdout
    entries = json.loads((tmp_path / "summary.json").read_text())
    first = next(e for e in entries if e["run"] == 1)
    spread = {s["check"]: s for s in first["spread"]}
    got = spread["server: first read.got == 3000"]
    assert got["runs"] == 3 and got["passed"] == 3 and got["spread"] == {"min": 3000, "median": 3000, "max": 3000, "n": 3}
    assert "3/3 server: first read.got == 3000" in (tmp_path / "index.html").read_text()
    assert not (tmp_path / "partial-read" / "report.html").exists(), "a repeat leaves no stale top-level report"


def test_outside_the_machines_namespace_setting_its_default_is_refused_and_leaves_nothing(tmp_path):
    """In a namespace of its own (as scripts/platform-check.sh runs the suite) the default written would not
    reach new namespaces, which copy the machine's: a clear refusal (was: PermissionError, a record left)."""
    tmp_path.chmod(0o700)
    code = "from lab.stability import machine_congestion\nwith machine_congestion('cubic'):\n    pass\n"
    out = subprocess.run(["unshare", "-n", sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                         timeout=60, env={**os.environ, "TCPLAB_RUN_DIR": str(tmp_path)})
    assert out.returncode == 1, out.stdout + out.stderr
    assert "can be set only in the machine's own network namespace" in out.stderr, out.stderr
    assert list(tmp_path.iterdir()) == [], "a run record was left"


@needs_machine_netns
def test_a_killed_stability_run_has_the_machines_default_put_back_by_the_next_cleanup():
    """SIGKILL (a lost session) skips every finally: the run record left behind names the default as it was."""
    before = CC.read_text()
    allowed_before = ALLOWED.read_text()
    available = Path("/proc/sys/net/ipv4/tcp_available_congestion_control").read_text().split()
    # One the allowed list lacks, where there is one (here cubic: allowed "reno bbr"): setting it as the
    # default extends that list, which the cleanup must put back too.
    others = [a for a in available if a not in allowed_before.split() and a != before.strip()]
    other = others[0] if others else ("reno" if before.strip() != "reno" else "cubic")
    child = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\nfrom lab.stability import machine_congestion\n"
         f"with machine_congestion({other!r}):\n    print('set', flush=True)\n    time.sleep(60)\n"],
        cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout.readline().strip() == "set"
        assert CC.read_text().strip() == other
    finally:
        child.kill()
        child.wait()
        child.stdout.close()
    assert CC.read_text().strip() == other, "the kill itself put the default back: the test proves nothing"
    if others:
        assert other in ALLOWED.read_text().split(), "setting the default did not extend the allowed list"
    out = subprocess.run([sys.executable, "-m", "lab.cli", "cleanup"], cwd=ROOT, capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr
    assert CC.read_text() == before, out.stdout
    assert ALLOWED.read_text() == allowed_before, out.stdout
