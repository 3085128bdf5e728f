"""Scenario files: every shipped one validates; every bad or hostile one is refused with file, line, key and
what is allowed, in well under a second, and never with a traceback (tests/data/bad/: one file per case)."""
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lab import cli, library
from lab.errors import LabError, ScenarioError

BAD = Path(__file__).parent.parent / "data" / "bad"
ROOT = Path(__file__).resolve().parents[2]

EXPECTED = {
    "port-list-form": ':4: guests[0].args: server: argument --port: 70000 is out of range: port must be 1-65535 (a TCP port)',
    "flag-text": ":4: guests[0].args.never-read: server: expected true or false, got 'false' (text: remove the quotes)",
    "port-text": ":4: guests[0].args.port: server: expected a whole number, got '9000'",
    "write-size-huge": ':5: guests[1].args.write-size: client: must be <= 67108864, got 1000000000',
    "port-too-big": ':4: guests[0].args.port: server: must be <= 65535, got 70000',
    "action-machine-sysctl": ':6: actions[0].sysctl.key: machine-wide; it cannot be set per host (per-host keys: net.core.somaxconn, net.ipv',
    "after-list": ':5: guests[1].after: expected text, got a list',
    "alias-bomb": ':1: anchors and aliases (&name, *name) are not allowed in tcplab files: write the value out',
    "arg-newline": ":4: guests[0].args.reply: expected one line of text, got 'ok\\n'",
    "bad-expression": ":7: expect[1]: expected 'SUBJECT: [AGGREGATE] PATH [where FIELD=VALUE] OP VALUE', e.g. 'server: TcpExt.ListenO",
    "check-number": ":5: expect[0]: expected a check like 'server: TcpExt.ListenOverflows >= 1'",
    "check-where-on-counter": ":5: expect[0]: TcpExt.ListenOverflows: a counter is its change over the whole run; 'where' applies",
    # found by fuzzing (2026-11-26): a traceback, a message without its line, files accepted that the run
    # would fail on or never act on, and a message that printed its own placeholder
    "number-too-long": ":5: duration: a number of 4,401 characters (100000000000...): no setting takes a number that long",
    "control-character": ":2: not valid YAML: the character U+0001 is not allowed",
    "check-negative-tolerance": ":6: expect[0]: '4 ± -1': a tolerance is 0 or more",
    "check-infinite-bound": ":6: expect[0]: '1e999' is too large a number",
    "link-not-in-topology": ":3: links[0].between: no link between h1 and h2 in topology single,2 (their links: h1-s1, h2-s1)",
    "action-after-the-end": ":7: actions[0].at: 500 s is not before the end of the run (duration: 30 s)",
    "guest-stop-before-start": ":4: guests[0].stop: 1 s must come after its start (5 s)",
    "arg-t0-as-duration": ":4: guests[0].args: server: argument --duration: ",
    "after-itself": ":4: guests[0].after: 'server' is not a guest listed before this one",
    "topology-file-without-name": ":2: topology: file.py is a file: say which of its topologies, file.py:NAME",
    "check-since-number": ":5: expect[0]: since: expected a kernel version as text, MAJOR.MINOR (e.g. \"6.15\")",
    "congestion-typo": ":5: hosts.h1.sysctl: net.ipv4.tcp_congestion_control: 'cubik' is not a congestion control algorithm (did you m",
    "deep-nesting": ':2: nested more than 24 levels deep',
    "delay-newline": ":4: links[0].delay: expected a delay like 10ms, 500us or 1.5s, got '10ms\\n'",
    "drop-without-controller": ':6: actions[0].drop: needs the OpenFlow controller: add `controller: lab` to the scenario',
    "duplicate-key": ':6: duration: written twice (first on line 5)',
    "duration-inf": ':3: duration: expected a finite number, got inf',
    "duration-nan": ':3: duration: expected a finite number, got nan',
    "empty": ':1: the file is empty: a scenario needs at least title, guests and expect',
    "event-field-typo": ":7: expect[0]: client's 'summary' events have no field 'conected' (did you mean connected, accepted?) (fields:",
    "hosts-not-mapping": ':3: hosts: expected a mapping, got a list',
    "huge-host-count": ":2: topology: topology 'single': n: 1000000000 is out of range (1 to 1000, hosts)",
    "links-number": ':3: links: expected a list, got 5',
    "machine-wide-sysctl": ':7: hosts.h1.sysctl.net.core.rmem_max: machine-wide; it cannot be set per host (per-host keys: net.core.somaxc',
    "malformed": ":5: not valid YAML: did not find expected '-' indicator",
    "name-dots": ":1: name: expected a name of lowercase letters, digits and dashes, like my-scenario, got '../../up'",
    "name-path": ":1: name: expected a name of lowercase letters, digits and dashes, like my-scenario, got '/tmp/elsewhere'",
    "negative-duration": ':3: duration: must be >= 0.1, got -5',
    "negative-size": ':7: guests[0].args.rcvbuf: server: must be >= 0, got -4096',
    "not-utf8": ':1: not UTF-8 text (byte 10: invalid continuation byte); save the file as UTF-8',
    "params-list": ':2: topology.params: expected a mapping, got a list',
    "program-unknown": ":4: guests[0].program: 'nc' is not one of server, client or synflood",
    "python-tag-value": ':1: YAML tags such as tag:yaml.org,2002:python/object/apply:os.system are not allowed in tcplab files',
    "python-tag": ':7: YAML tags such as tag:yaml.org,2002:python/object/apply:os.system are not allowed in tcplab files',
    "rate-infinite": ":6: actions[0].rate.mbit: expected a number, got '1e309'",
    "recursive-alias": ':1: anchors and aliases (&name, *name) are not allowed in tcplab files: write the value out',
    "sample-not-declared": ':6: expect[0]: checks socket samples of h1 but sample.hosts does not list them (add sample: {hosts: [...]})',
    "sysctl-key-list": ':5: hosts.h1.sysctl: a key must be text, not a list or mapping',
    "sysctl-key-number": ":5: hosts.h1.sysctl: the key 5 must be text (quote it: '5')",
    "sysctl-typo": ':5: hosts.h1.sysctl.net.ipv4.tcp_syncookie: this kernel has no such sysctl for a host (did you mean net.ipv4.tcp_sync',
    "sysctl-value-shell": ':5: hosts.h1.sysctl.net.ipv4.tcp_rmem: expected a value of numbers, words and spaces (at most 120 characters),',
    "teaches-number": ':3: teaches: expected text, got 5',
    "topology-argument-text": ":2: topology: 'abc': topology arguments are numbers (like single,3 or star,8,bw=10)",
    "topology-file-not-python": ":2: topology.file: expected a path to a .py file, got 'x.txt'",
    "topology-file-number": ':2: topology.file: expected text, got 5',
    "topology-file-untrusted": ':2: topology: x.py: tcplab runs topology files as code (as root), so it loads only the shipped ones and files ',
    "topology-hopts": ":2: topology: topology 'single' has no parameter 'hopts' (parameters: n (int 1-1000: hosts), bw (float 0.1-100",
    "topology-in-namespace": ":2: topology: topology 'single' has no parameter 'inNamespace' (parameters: n (int 1-1000: hosts), bw (float 0",
    "topology-string-hopts": ":2: topology: topology 'single' has no parameter 'hopts' (parameters: n (int 1-1000: hosts), bw (float 0.1-100",
    "two-documents": ":7: one YAML document per file (found a second '---')",
    "unknown-action": ":6: actions[0]: expected one action kind besides 'at' (kinds: link-down, link-up, rate, sysctl, signal, drop, ",
    "unknown-counter": ':6: expect[0]: TcpExt.ListenOverflow: this kernel has no such counter (did you mean TcpExt.ListenOverflows?)',
    "unknown-guest-flag": ":7: guests[0].args.backlogg: server has no flag 'backlogg' (did you mean backlog?) (flags: accept, backlog, bi",
    "unknown-host": ":5: guests[1].host: no host 'h7' in topology single,2 (hosts: h1, h2)",
    "unknown-key": ':5: expects: unknown key (allowed: actions, controller, duration, expect, guests, hosts, links, name, sample, ',
    "unknown-topology": ":2: topology: unknown topology 'ring' (shipped: dumbbell, pair, single, star, tree; or give a file: path/to/file.py:",
    "wait-text": ":4: guests[0].wait: expected true or false, got 'false' (text: remove the quotes)",
}


def test_corpus_is_complete():
    assert {p.stem for p in BAD.glob("*.yaml")} == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_bad_file_message(name):
    path = BAD / f"{name}.yaml"
    started = time.monotonic()
    with pytest.raises(ScenarioError) as err:
        library.load_scenario(str(path))
    assert time.monotonic() - started < 1.0
    assert str(err.value).startswith(str(path) + EXPECTED[name]), str(err.value)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_bad_file_exits_2_without_traceback(name, capsys):
    assert cli.main(["show", str(BAD / f"{name}.yaml")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"tcplab: {BAD / name}.yaml:") and "Traceback" not in err


def test_a_file_over_a_mebibyte_is_not_read(tmp_path):
    big = tmp_path / "big.yaml"
    big.write_text("title: t\n# " + "x" * (1 << 20) + "\n")
    with pytest.raises(ScenarioError, match="at most 1,048,576 are read"):
        library.load_scenario(str(big))


def test_every_refusal_in_a_fresh_process_is_quick_and_clean():
    """The whole path a teacher's command takes (imports included): exit 2, one screen, under a second each."""
    for name in ("alias-bomb", "huge-host-count", "duration-nan", "topology-hopts", "deep-nesting"):
        started = time.monotonic()
        out = subprocess.run([sys.executable, "-m", "lab.cli", "show", str(BAD / f"{name}.yaml")], cwd=ROOT,
                             capture_output=True, text=True, timeout=30)
        took = time.monotonic() - started
        assert out.returncode == 2 and "Traceback" not in out.stderr and len(out.stderr.splitlines()) <= 3, out.stderr
        assert took < 3.0, f"{name}: {took:.2f} s (interpreter start included)"


@pytest.mark.parametrize("path", library.scenario_paths(), ids=lambda p: p.stem)
def test_shipped_scenarios_validate(path):
    sc = library.load_scenario(path.stem)
    assert sc.title and sc.teaches and sc.checks and sc.name == path.stem
    # Each states the classic claim, what the kernel does, and the proof.
    for part in ("Classic claim", "What the kernel really does", "Proof"):
        assert part in sc.teaches, f"{path.name}: teaches lacks {part!r}"


def test_library_names_are_the_contract():
    names = {p.stem for p in library.scenario_paths()}
    assert names >= {"established-queues", "blocking-read", "partial-read", "zero-window", "partial-write",
                     "blocking-write", "socket-memory", "listen-overflow", "abort-on-overflow", "somaxconn-cap",
                     "burst-backlog", "syn-queue", "busy-link",
                     # netem (delay): skipped with the reason on kernels without it
                     "rtt-window",
                     # OpenFlow scenarios (controller: lab)
                     "blackhole", "lost-synack", "rate-cap"}
    assert len(names) == len(library.scenario_paths()), "scenario names must be unique across topic folders"


def test_unknown_scenario_name():
    with pytest.raises(LabError, match="unknown scenario 'nope' \\(scenarios: abort-on-overflow"):
        library.resolve("nope")


def test_a_trusted_topology_file_loads_and_an_untrusted_one_is_refused(tmp_path):
    (tmp_path / "mine.py").write_text("from mininet.topo import Topo\nclass T(Topo):\n    def build(self, n=2):\n"
                                      "        s = self.addSwitch('s1')\n        for i in range(n):\n"
                                      "            self.addLink(self.addHost(f'h{i + 1}'), s)\ntopos = {'mine': T}\n")
    text = ("title: t\ntopology: {name: mine, file: %s, args: [3]}\nguests:\n  - {name: server, host: h3, program: server}\n"
            "expect:\n  - 'h3: Tcp.PassiveOpens >= 0'\n" % (tmp_path / "mine.py"))
    (tmp_path / "s.yaml").write_text(text)
    with pytest.raises(ScenarioError, match="tcplab runs topology files as code"):
        library.load_scenario(str(tmp_path / "s.yaml"))
    sc = library.load_scenario(str(tmp_path / "s.yaml"), trusted=[tmp_path])
    assert sc.guests[0].host == "h3"


def test_the_format_page_lists_every_action_kind_and_socket_field():
    """docs/scenarios.md is the contract: a kind or field added in code without a line there fails here."""
    from lab.actions import ACTIONS
    from lab.expect import CHECK_KINDS, SAMPLE_FIELDS
    page = (ROOT / "docs" / "scenarios.md").read_text()
    for kind, cls in ACTIONS.items():
        assert f"| `{kind}` |" in page and cls.example in page, kind
        library.load_text("title: t\ntopology: single,2\ncontroller: lab\nguests:\n  - {name: server, host: h1, program: server}\n"
                          f"actions:\n  - {cls.example}\nexpect:\n  - 'h1: Tcp.InSegs >= 0'\n")   # each example is valid
    for name in SAMPLE_FIELDS:
        assert f"`{name}`" in page, name
    assert set(CHECK_KINDS) == {"counter", "sample", "kernel", "event"}
