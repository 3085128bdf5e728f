"""Scenario files: every shipped one validates; every bad one is refused with file, line, key and what is allowed."""
from pathlib import Path

import pytest

from lab import cli, library
from lab.errors import LabError, ScenarioError

BAD = Path(__file__).parent.parent / "data" / "bad"

EXPECTED = {
    "malformed": ":5: not valid YAML: expected <block end>, but found '<block mapping start>'",
    "empty": ":1: the file is empty: a scenario needs at least title, guests and expect",
    "unknown-key": ":5: expects: unknown key (allowed: actions, controller, duration, expect, guests, hosts, "
                   "links, name, sample, switch, teaches, title, topology)",
    "unknown-host": ":5: guests[1].host: no host 'h7' in topology single (hosts: h1, h2)",
    "unknown-topology": ":2: topology: unknown topology 'ring' (shipped: dumbbell, pair, single, star; "
                        "or give a file: path/to/file.py:NAME)",
    "bad-expression": ":7: expect[1]: expected 'SUBJECT: [AGGREGATE] PATH [where FIELD=VALUE] OP VALUE'",
    "unknown-counter": ":6: expect[0]: TcpExt.ListenOverflow: this kernel has no such counter "
                       "(did you mean TcpExt.ListenOverflows",
    "machine-wide-sysctl": ":7: hosts.h1.sysctl.net.core.rmem_max: machine-wide; it cannot be set per host "
                           "(per-host keys: net.core.somaxconn, net.ipv4.tcp_*",
    "negative-size": ":7: guests[0].args: server: argument --rcvbuf: invalid non-negative integer value: '-4096'",
    "negative-duration": ":3: duration: must be >= 0.1, got -5",
    "unknown-guest-flag": ":7: guests[0].args: server: unrecognized arguments: --backlogg 4",
    "unknown-action": ":6: actions[0]: expected one action kind besides 'at' (kinds: link-down, link-up, rate, "
                      "sysctl, signal, drop, meter, restore)",
    "drop-without-controller": ":6: actions[0].drop: needs the OpenFlow controller: add `controller: lab` to the scenario",
    "sample-not-declared": ":6: expect[0]: checks socket samples of h1 but sample.hosts does not list them",
}


def test_corpus_is_complete():
    assert {p.stem for p in BAD.glob("*.yaml")} == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_bad_file_message(name):
    path = BAD / f"{name}.yaml"
    with pytest.raises(ScenarioError) as err:
        library.load_scenario(str(path))
    assert str(err.value).startswith(str(path) + EXPECTED[name]), str(err.value)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_bad_file_exits_2_without_traceback(name, capsys):
    assert cli.main(["show", str(BAD / f"{name}.yaml")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"tcplab: {BAD / name}.yaml:") and "Traceback" not in err


@pytest.mark.parametrize("path", library.scenario_paths(), ids=lambda p: p.stem)
def test_shipped_scenarios_validate(path):
    sc = library.load_scenario(path.stem)
    assert sc.title and sc.teaches and sc.checks
    # Each states the classic claim, what the kernel does, and the proof.
    for part in ("Classic claim", "What the kernel really does", "Proof"):
        assert part in sc.teaches, f"{path.name}: teaches lacks {part!r}"


def test_library_names_are_the_contract():
    names = {p.stem for p in library.scenario_paths()}
    assert names == {"established-queues", "blocking-read", "partial-read", "zero-window", "partial-write",
                     "blocking-write", "socket-memory", "listen-overflow", "abort-on-overflow", "somaxconn-cap",
                     "burst-backlog", "syn-queue", "busy-link",
                     # netem (delay): skipped with the reason on kernels without it
                     "rtt-window",
                     # OpenFlow scenarios (controller: lab)
                     "blackhole", "lost-synack", "rate-cap"}


def test_unknown_scenario_name():
    with pytest.raises(LabError, match="unknown scenario 'nope' \\(scenarios: abort-on-overflow"):
        library.resolve("nope")
