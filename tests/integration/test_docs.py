"""The docs stay true: each file in examples/ runs, and each walkthrough's own commands and files work as
written (code blocks are read from the walkthrough itself, so an edit to the page is an edit to the test)."""
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from lab import library
from lab.runner import run_scenario

pytestmark = pytest.mark.root
ROOT = Path(__file__).resolve().parents[2]
WALK = ROOT / "docs" / "walkthroughs"


def _blocks(page, lang):
    """The fenced code blocks of PAGE in LANG, dedented."""
    text = (WALK / page).read_text()
    found = re.findall(rf"```{lang}\n(.*?)```", text, re.S)
    out = []
    for block in found:
        lines = block.splitlines()
        indent = min((len(ln) - len(ln.lstrip()) for ln in lines if ln.strip()), default=0)
        out.append("\n".join(ln[indent:] for ln in lines) + "\n")
    return out


def _run(*args, timeout=300):
    return subprocess.run([sys.executable, *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)


def test_backlog_sweep_prints_what_the_kernel_did():
    out = _run("examples/backlog_sweep.py")
    assert out.returncode == 0, out.stderr[-2000:]
    rows = [ln.split() for ln in out.stdout.splitlines()[1:] if ln.strip()]
    assert [int(r[0]) for r in rows] == list(range(1, 9))
    for backlog, connected, queue, overflows, verdict in rows:
        assert int(connected) == int(backlog) + 1 and verdict == "PASS", rows
        assert int(overflows) >= 1


def test_kernel_events_example_runs_one_scenario(tmp_path):
    out = _run("examples/kernel_events.py", "--hosts-only", "--out", str(tmp_path), "partial-read")
    assert out.returncode == 0, out.stderr[-2000:]
    assert (tmp_path / "partial-read.json").exists()


def test_trace_bench_attach_prints_its_figures():
    out = _run("examples/trace_bench.py", "attach")
    assert out.returncode == 0, out.stderr[-2000:]
    assert re.search(r"\d", out.stdout)


def test_walkthrough_1_runs_and_writes_the_report(tmp_path):
    """The VM steps need Vagrant (docs/platforms.md); the commands inside the VM are these."""
    out = _run("-m", "lab.cli", "run", "zero-window", "--out", str(tmp_path))
    assert out.returncode == 0, out.stdout[-2000:]
    html = (tmp_path / "zero-window" / "report.html").read_text()
    assert "TCPToZeroWindowAdv" in html and "TCPWinProbe" in html


def test_walkthrough_2_topology_file_by_hand_and_in_a_scenario(tmp_path):
    (code,) = _blocks("2-new-topology.md", "python")
    folder = tmp_path / "mytopos"
    folder.mkdir()
    (folder / "line.py").write_text(code)
    script = tmp_path / "session.txt"
    script.write_text("pingall\nnet\n")
    out = _run("-m", "lab.cli", "cli", f"{folder / 'line.py'}:line,4", "--script", str(script), timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "0% dropped" in out.stdout + out.stderr and "network removed" in out.stdout
    (topology_line,) = _blocks("2-new-topology.md", "yaml")
    scenario = tmp_path / "my.yaml"
    scenario.write_text(topology_line.replace("mytopos/line.py", str(folder / "line.py")) +
                        "title: clients and servers on two switches\nguests:\n"
                        "  - {name: server, host: sv1, program: server, args: {port: 9000}}\n"
                        "  - {name: client, host: c4, program: client, args: {mode: connect, server: '{sv1}:9000', count: 3}}\n"
                        "expect:\n  - 'client: summary.connected == 3'\n")
    refused = _run("-m", "lab.cli", "run", str(scenario), "--out", str(tmp_path / "out"))
    assert refused.returncode == 2 and "--trust" in refused.stderr
    ran = _run("-m", "lab.cli", "run", str(scenario), "--out", str(tmp_path / "out"), "--trust", str(folder))
    assert ran.returncode == 0, ran.stdout[-2000:] + ran.stderr[-2000:]


def test_walkthrough_3_scenario_as_written_passes(tmp_path):
    parts = {}
    for block in _blocks("3-new-scenario.md", "yaml"):
        parts.update(yaml.safe_load(block))
    parts.update(title="A stopped server still completes handshakes", topology="single,2",
                 teaches="Classic claim: x.\nWhat the kernel really does: y.\nProof: z.\n")
    sc = library.load_text(yaml.safe_dump(parts), name="stopped-server")
    result = run_scenario(sc, tmp_path)
    assert result.status == "PASS", [v.message for v in result.expectations if not v.passed]
