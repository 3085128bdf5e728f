"""Scenario files: YAML text -> a validated Scenario model. Pure: no Mininet, no network.

`parse(text, path)` checks the structure; lab/validation.py checks it against the world (topology hosts,
the kernel's counter names, the guests' own flags).
Every error is a ScenarioError naming the file, the line, the key and what is allowed. The format is
documented in docs/scenarios.md and is a contract: files that users wrote must keep working.
"""
import re
from dataclasses import dataclass, field

import yaml

from . import expect
from . import hosts as hostcfg
from .errors import ScenarioError, SysctlError

TOP_KEYS = {"name", "title", "teaches", "topology", "switch", "controller", "hosts", "links", "guests",
            "actions", "sample", "duration", "expect"}
GUEST_KEYS = {"name", "host", "program", "args", "start", "after", "ready", "stop", "wait"}
LINK_KEYS = {"between", "bw", "burst", "delay", "loss", "from"}
SAMPLE_KEYS = {"hosts", "interval", "port"}
PROGRAMS = ("server", "client", "synflood")
SWITCHES = ("bridge", "ovs", "ovs-user")
SIGNALS = ("SIGTERM", "SIGINT", "SIGSTOP", "SIGCONT", "SIGUSR1", "SIGUSR2", "SIGKILL")
# Each action kind and the fields it takes (required, optional): data, not an if/elif chain (the runner
# maps kind -> handler). drop/meter/restore need `controller: lab`.
ACTION_FIELDS = {
    "link-down": (("between",), ()),
    "link-up": (("between",), ()),
    "rate": (("between", "mbit"), ()),
    "sysctl": (("host", "key", "value"), ()),
    "signal": (("guest", "signal"), ()),
    "drop": ((), ("from", "to", "flags", "seconds")),
    "meter": (("kbps",), ("from", "to", "seconds")),
    "restore": ((), ()),
}
CONTROLLER_ACTIONS = ("drop", "meter", "restore")
TCP_FLAG_NAMES = ("syn", "syn-ack", "ack", "rst", "fin")


@dataclass
class GuestSpec:
    name: str
    host: str
    program: str
    args: list
    start: float = 0.0
    after: str = None
    ready: str = None
    stop: float = None
    wait: bool = True
    line: int = 0


@dataclass
class LinkSpec:
    between: tuple
    bw: float = None
    delay: str = None
    loss: str = None
    only_from: str = None      # shape only traffic leaving this node (default: both directions)
    burst: int = None          # htb token bucket, bytes (default: 5 ms of traffic, at least 1600)
    line: int = 0

    @property
    def needs_netem(self):
        return bool(self.delay or self.loss)


@dataclass
class Action:
    at: float
    kind: str
    params: dict
    line: int = 0


@dataclass
class SampleSpec:
    hosts: list
    interval: float = 0.1
    port: int = None


@dataclass
class Scenario:
    name: str
    title: str
    path: str
    teaches: str = ""
    topology: str = "single"
    topology_file: str = None
    topology_args: list = field(default_factory=list)
    topology_params: dict = field(default_factory=dict)
    switch: str = "bridge"
    controller: str = None
    sysctls: dict = field(default_factory=dict)      # host -> {key: value}
    links: list = field(default_factory=list)
    guests: list = field(default_factory=list)
    actions: list = field(default_factory=list)
    sample: SampleSpec = None
    duration: float = 30.0
    checks: list = field(default_factory=list)       # expect.Check
    lines: dict = field(default_factory=dict)        # key path -> line, for later errors

    def guest(self, name):
        return next(g for g in self.guests if g.name == name)


# -- YAML with line numbers ----------------------------------------------------------------------
def _plain(node, path, lines, line=None):
    # A key's line is where the key is written, not where its value starts.
    lines[path] = line or node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        out = {}
        for key_node, value_node in node.value:
            key = str(yaml.safe_load(yaml.serialize(key_node)))
            out[key] = _plain(value_node, f"{path}.{key}" if path else key, lines, key_node.start_mark.line + 1)
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_plain(v, f"{path}[{i}]", lines) for i, v in enumerate(node.value)]
    return yaml.safe_load(yaml.serialize(node))


def load_yaml(text, path):
    """YAML text -> (data, {key path: line}); malformed YAML is a ScenarioError with its line."""
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        problem = getattr(e, "problem", None) or str(e)
        if "mapping values are not allowed" in problem:
            problem += " (is there a ': ' inside unquoted text? put that text in quotes)"
        raise ScenarioError(path, mark.line + 1 if mark else 0, None, f"not valid YAML: {problem}") from None
    if node is None:
        raise ScenarioError(path, 1, None, "the file is empty: a scenario needs at least title, guests and expect")
    lines = {}
    data = _plain(node, "", lines)
    if not isinstance(data, dict):
        raise ScenarioError(path, 1, None, "a scenario is a mapping of keys (title:, topology:, guests:, ...)")
    return data, lines


class Reader:
    """Typed access to the data with errors that carry file, line and key."""

    def __init__(self, path, lines):
        self.path, self.lines = path, lines

    def error(self, key, message):
        line = self.lines.get(key)
        while line is None and key:
            key = re.sub(r"(\.[^.\[]*|\[\d+\])$", "", key) if re.search(r"(\.[^.\[]*|\[\d+\])$", key) else ""
            line = self.lines.get(key)
        return ScenarioError(self.path, line or 0, key or None, message)

    def keys(self, data, key, allowed):
        if not isinstance(data, dict):
            raise self.error(key, f"expected a mapping with keys {', '.join(sorted(allowed))}")
        for k in data:
            if k not in allowed:
                raise self.error(f"{key}.{k}" if key else k, f"unknown key (allowed: {', '.join(sorted(allowed))})")

    def number(self, value, key, minimum=0.0, integer=False):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise self.error(key, f"expected a number, got {value!r}")
        if value < minimum:
            raise self.error(key, f"must be >= {minimum:g}, got {value}")
        if integer and int(value) != value:
            raise self.error(key, f"expected a whole number, got {value}")
        return int(value) if integer else float(value)

    def text(self, value, key, choices=None):
        if not isinstance(value, str) or not value.strip():
            raise self.error(key, "expected text")
        if choices and value not in choices:
            raise self.error(key, f"{value!r} is not one of {', '.join(choices)}")
        return value

    def pair(self, value, key):
        if not (isinstance(value, list) and len(value) == 2 and all(isinstance(v, str) for v in value)):
            raise self.error(key, "expected two node names, e.g. [h1, s1]")
        return tuple(value)


# -- parsing ---------------------------------------------------------------------------------------
def guest_args(value, r, key):
    """args as a list (['--port', 9000]) or a mapping ({port: 9000, never-read: true}) -> argv strings."""
    if value is None:
        return []
    if isinstance(value, list):
        return [str(v) for v in value]
    if not isinstance(value, dict):
        raise r.error(key, "expected a list of arguments or a mapping of flags")
    argv = [str(value[p]) for p in ("mode", "server") if p in value]
    for flag, v in value.items():
        if flag in ("mode", "server"):
            continue
        if v is True:
            argv.append(f"--{flag}")
        elif v is False or v is None:
            continue
        else:
            argv += [f"--{flag}", str(v)]
    return argv


def parse(text, path, name=None):
    """Scenario text -> Scenario (structure checked; see validate() for the rest)."""
    data, lines = load_yaml(text, path)
    r = Reader(path, lines)
    r.keys(data, "", TOP_KEYS)
    for required in ("title", "guests", "expect"):
        if required not in data:
            raise ScenarioError(path, 1, required, "missing (every scenario has title, guests and expect)")
    sc = Scenario(name=data.get("name") or name or "scenario", title=r.text(data["title"], "title"), path=path,
                  lines=lines)
    sc.teaches = data.get("teaches") or ""
    _parse_topology(sc, data.get("topology", "single"), r)
    sc.switch = r.text(data.get("switch", "bridge"), "switch", SWITCHES)
    if "controller" in data:
        sc.controller = r.text(data["controller"], "controller", ("lab",))
    sc.duration = r.number(data.get("duration", 30), "duration", minimum=0.1)
    for host, conf in (data.get("hosts") or {}).items():
        r.keys(conf, f"hosts.{host}", {"sysctl"})
        settings = conf.get("sysctl") or {}
        if not isinstance(settings, dict):
            raise r.error(f"hosts.{host}.sysctl", "expected a mapping KEY: VALUE")
        for k, v in settings.items():
            try:
                hostcfg.check_per_host(k)
            except SysctlError as e:
                raise r.error(f"hosts.{host}.sysctl.{k}", str(e).split(": ", 1)[1]) from None
            if isinstance(v, (int, float)) and not isinstance(v, bool) and v < 0:
                raise r.error(f"hosts.{host}.sysctl.{k}", f"must be >= 0, got {v}")
        sc.sysctls[host] = {k: hostcfg.normalize(v) for k, v in settings.items()}
    for i, link in enumerate(data.get("links") or []):
        key = f"links[{i}]"
        r.keys(link, key, LINK_KEYS)
        spec = LinkSpec(between=r.pair(link.get("between"), f"{key}.between"), line=lines.get(key, 0))
        if "bw" in link:
            spec.bw = r.number(link["bw"], f"{key}.bw", minimum=0.001)
        if "burst" in link:
            spec.burst = r.number(link["burst"], f"{key}.burst", minimum=1, integer=True)
        if "from" in link:
            spec.only_from = r.text(link["from"], f"{key}.from", spec.between)
        for unit_key, pattern, example in (("delay", r"^\d+(\.\d+)?(us|ms|s)$", "10ms"), ("loss", r"^\d+(\.\d+)?%$", "1%")):
            if unit_key in link:
                if not re.match(pattern, str(link[unit_key])):
                    raise r.error(f"{key}.{unit_key}", f"expected a value like {example}, got {link[unit_key]!r}")
                setattr(spec, unit_key, str(link[unit_key]))
        sc.links.append(spec)
    _parse_guests(sc, data["guests"], r)
    _parse_actions(sc, data.get("actions") or [], r)
    if "sample" in data:
        s = data["sample"]
        r.keys(s, "sample", SAMPLE_KEYS)
        hosts_ = s.get("hosts")
        if not (isinstance(hosts_, list) and hosts_ and all(isinstance(h, str) for h in hosts_)):
            raise r.error("sample.hosts", "expected a list of host names, e.g. [h1]")
        sc.sample = SampleSpec(hosts=hosts_, interval=r.number(s.get("interval", 0.1), "sample.interval", 0.01),
                               port=r.number(s["port"], "sample.port", 1, integer=True) if "port" in s else None)
    items = data["expect"]
    if not isinstance(items, list) or not items:
        raise r.error("expect", "expected a list of checks, e.g. - 'server: TcpExt.ListenOverflows >= 1'")
    for i, item in enumerate(items):
        key = f"expect[{i}]"
        text, why = item, ""
        if isinstance(item, dict):
            r.keys(item, key, {"check", "why"})
            text, why = item.get("check"), item.get("why", "")
        try:
            sc.checks.append(expect.parse_check(text if isinstance(text, str) else "", why))
        except expect.CheckSyntaxError as e:
            raise r.error(key, str(e)) from None
    return sc


def _parse_topology(sc, value, r):
    if isinstance(value, str):
        head, *args = value.split(",")
        sc.topology = head
        sc.topology_args = [int(a) if a.isdigit() else a for a in args]
        return
    r.keys(value, "topology", {"name", "file", "args", "params"})
    sc.topology = r.text(value.get("name"), "topology.name")
    sc.topology_file = value.get("file")
    sc.topology_args = list(value.get("args") or [])
    sc.topology_params = dict(value.get("params") or {})
    for k, v in list(sc.topology_params.items()):
        if isinstance(v, (int, float)) and not isinstance(v, bool) and v < 0:
            raise r.error(f"topology.params.{k}", f"must be >= 0, got {v}")


def _parse_guests(sc, items, r):
    if not isinstance(items, list) or not items:
        raise r.error("guests", "expected a list of guest programs (server, client, synflood)")
    for i, g in enumerate(items):
        key = f"guests[{i}]"
        r.keys(g, key, GUEST_KEYS)
        for required in ("name", "host", "program"):
            if required not in g:
                raise r.error(key, f"missing {required!r} (a guest has name, host, program and args)")
        program = r.text(g["program"], f"{key}.program", PROGRAMS)
        spec = GuestSpec(name=r.text(g["name"], f"{key}.name"), host=r.text(g["host"], f"{key}.host"),
                         program=program, args=guest_args(g.get("args"), r, f"{key}.args"),
                         start=r.number(g.get("start", 0), f"{key}.start"), after=g.get("after"),
                         ready=g.get("ready", "listening" if program == "server" else None),
                         wait=bool(g.get("wait", program != "server")), line=r.lines.get(key, 0))
        if "stop" in g:
            spec.stop = r.number(g["stop"], f"{key}.stop")
        if spec.name in {x.name for x in sc.guests}:
            raise r.error(f"{key}.name", f"guest {spec.name!r} is named twice")
        if spec.after is not None and spec.after not in {x.name for x in sc.guests}:
            raise r.error(f"{key}.after", f"{spec.after!r} is not a guest listed before this one")
        sc.guests.append(spec)


def _parse_actions(sc, items, r):
    if not isinstance(items, list):
        raise r.error("actions", "expected a list, e.g. - {at: 2, link-down: [h1, s1]}")
    for i, a in enumerate(items):
        key = f"actions[{i}]"
        if not isinstance(a, dict) or "at" not in a:
            raise r.error(key, "expected {at: SECONDS, KIND: ...} with KIND one of " + ", ".join(ACTION_FIELDS))
        kinds = [k for k in a if k != "at"]
        if len(kinds) != 1 or kinds[0] not in ACTION_FIELDS:
            raise r.error(key, f"expected one action kind besides 'at' (kinds: {', '.join(ACTION_FIELDS)})")
        kind, value = kinds[0], a[kinds[0]]
        required, optional = ACTION_FIELDS[kind]
        params = {"between": value} if kind in ("link-down", "link-up") else (value or {})
        if not isinstance(params, dict):
            raise r.error(f"{key}.{kind}", f"expected a mapping with {', '.join(required + optional)}")
        r.keys(params, f"{key}.{kind}", set(required + optional))
        for f in required:
            if f not in params:
                raise r.error(f"{key}.{kind}", f"missing {f!r} (needs {', '.join(required)})")
        if kind in CONTROLLER_ACTIONS and sc.controller != "lab":
            raise r.error(f"{key}.{kind}", "needs the OpenFlow controller: add `controller: lab` to the scenario")
        if "flags" in params:
            r.text(params["flags"], f"{key}.{kind}.flags", TCP_FLAG_NAMES)
        for f in ("seconds", "kbps"):
            if f in params:
                params[f] = r.number(params[f], f"{key}.{kind}.{f}", minimum=1, integer=True)
        if "between" in params:
            params["between"] = r.pair(params["between"], f"{key}.{kind}.between")
        if kind == "rate":
            params["mbit"] = r.number(params["mbit"], f"{key}.rate.mbit", minimum=0.001)
        if kind == "signal":
            r.text(params["signal"], f"{key}.signal.signal", SIGNALS)
        if kind == "sysctl":
            try:
                hostcfg.check_per_host(params["key"])
            except SysctlError as e:
                raise r.error(f"{key}.sysctl.key", str(e).split(": ", 1)[1]) from None
        sc.actions.append(Action(at=r.number(a["at"], f"{key}.at"), kind=kind, params=params,
                                 line=r.lines.get(key, 0)))
    sc.actions.sort(key=lambda x: x.at)


_T0 = re.compile(r"\{t0(?:\+(\d+(?:\.\d+)?))?\}")


def substitute(args, addresses, t0=0.0):
    """'{h1}:9000' -> '10.0.0.1:9000' for every host in ADDRESSES; '{t0+0.5}' -> the timeline's start
    (CLOCK_MONOTONIC, shared by all hosts) plus 0.5 s, for guests that must act at the same instant."""
    out = []
    for a in args:
        for host, ip in addresses.items():
            a = a.replace("{" + host + "}", ip)
        a = _T0.sub(lambda m: f"{t0 + float(m.group(1) or 0):.6f}", a)
        out.append(a)
    return out
