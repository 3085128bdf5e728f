"""A parsed Scenario against the world: the topology's hosts and nodes, this kernel's counters and sysctls,
the guests' own flags and events. Pure: the caller (lab/library.py) looks the facts up and passes them in.
Every refusal is a ScenarioError at the line of the key that is wrong, before anything is built.
"""
import time
from dataclasses import dataclass, field

from . import expect, source
from .errors import ScenarioError, SysctlError
from .scenario import substitute
from .sysctl import CONGESTION, check_per_host


@dataclass
class Facts:
    """What validation needs to know about the world, looked up by the caller (see library.py)."""
    hosts: list                          # the topology's host names
    nodes: list                          # hosts and switches
    counters: dict = None                # {Group: [Counter, ...]} of this kernel
    sysctl_keys: set = None              # per-host sysctl keys this kernel has
    events: dict = None                  # program -> {event: {field: ...}} (declared by the programs)
    check_guest_args: object = None      # (program, argv) -> error text or None
    guest_args: dict = None              # program -> pydantic model of its arguments (mapping form)
    kernel_kinds: list = None            # kinds of kernel events the tracer reports
    drop_reasons: list = None            # this kernel's drop reason names
    links: list = None                   # the topology's links, as pairs of node names


@dataclass
class World:
    """What checks may name: built from Facts and the scenario itself."""
    hosts: list
    guests: list
    sampled: list = field(default_factory=list)
    counters: dict = None
    events: dict = None                  # guest name -> {event: fields}
    kernel_kinds: list = None
    drop_reasons: list = None


def _error(sc, where, message):
    where = source_path(where)
    return ScenarioError(sc.path, source.line_of(sc.lines, where), source.dotted(where), message)


def source_path(where):
    return tuple(where)


def validate(sc, facts):
    """Raise ScenarioError for anything that names what does not exist; return SC."""
    hosts, nodes = facts.hosts, facts.nodes

    def host(where, name):
        if name not in hosts:
            raise _error(sc, where, f"no host {name!r} in topology {sc.topology} (hosts: {_few(hosts)})"
                         + expect.suggest(name, hosts))

    def node(where, name):
        if name not in nodes:
            raise _error(sc, where, f"no node {name!r} in topology {sc.topology} (nodes: {_few(nodes)})"
                         + expect.suggest(name, nodes))

    for name, spec in sc.hosts.items():
        if name != "*":
            host(("hosts", name), name)
        for key in spec.sysctl:
            try:
                check_per_host(key, facts.sysctl_keys)
            except SysctlError as e:
                raise _error(sc, ("hosts", name, "sysctl", key), str(e).split(": ", 1)[-1]) from None
    def link(where, pair):
        # Both ends exist, yet no link joins them: it would fail only once the network is built.
        if facts.links is not None and set(pair) not in [set(p) for p in facts.links]:
            near = [f"{a}-{b}" for a, b in facts.links if set(pair) & {a, b}]
            raise _error(sc, where, f"no link between {pair[0]} and {pair[1]} in topology {sc.topology}"
                         + (f" (their links: {_few(near)})" if near else ""))

    for i, link_spec in enumerate(sc.links):
        for end in link_spec.between:
            node(("links", i, "between"), end)
        link(("links", i, "between"), link_spec.between)
    guest_names = [g.name for g in sc.guests] + (["controller"] if sc.controller else [])
    for i, g in enumerate(sc.guests):
        host(("guests", i, "host"), g.host)
        if g.name in nodes:
            raise _error(sc, ("guests", i, "name"), f"{g.name!r} is also a node's name: name guests apart from hosts")
        if facts.guest_args and isinstance(g.args, dict) and g.program in facts.guest_args:
            _check_args(sc, i, g, facts.guest_args[g.program])
        if facts.check_guest_args:
            # {t0} is the monotonic clock at the run's start (thousands of seconds), never 0: check with it
            problem = facts.check_guest_args(g.program, substitute(g.argv, {h: "10.0.0.1" for h in hosts},
                                                                   time.monotonic()))
            if problem:
                raise _error(sc, ("guests", i, "args"), f"{g.program}: {problem}")
        if g.ready and facts.events and g.ready not in facts.events.get(g.program, {g.ready: None}):
            raise _error(sc, ("guests", i, "ready"), f"{g.program} never prints {g.ready!r} events"
                         + expect.suggest(g.ready, facts.events[g.program]))
    for i, step in enumerate(sc.actions):
        for need in step.action.needs():
            where = ("actions", i, step.kind, need.field)
            if need.kind == "node":
                node(where, need.name)
            elif need.kind == "host":
                host(where, need.name)
            elif need.kind == "link":
                link(where, need.name)
            elif need.name not in guest_names:
                raise _error(sc, where, f"no guest {need.name!r} (guests: {_few(guest_names)})"
                             + expect.suggest(need.name, guest_names))
        if step.kind == "sysctl":
            try:
                check_per_host(step.action.key, facts.sysctl_keys)
            except SysctlError as e:
                raise _error(sc, ("actions", i, "sysctl", "key"), str(e).split(": ", 1)[-1]) from None
    if sc.sample:
        for h in sc.sample.hosts:
            host(("sample", "hosts"), h)
    world = World(hosts=hosts, guests=guest_names, sampled=sc.sample.hosts if sc.sample else [],
                  counters=facts.counters, kernel_kinds=facts.kernel_kinds, drop_reasons=facts.drop_reasons,
                  events=_guest_events(sc, facts.events))
    for i, check in enumerate(sc.checks):
        try:
            expect.resolve(check, world)
        except expect.CheckSyntaxError as e:
            raise _error(sc, ("expect", i), str(e)) from None
    return sc


def _check_args(sc, i, g, model):
    """A guest's arguments (mapping form) against its program's own schema: refusals at the flag's line."""
    from pydantic import ValidationError

    from .scenario import _message
    try:
        model.model_validate(g.args)
    except ValidationError as e:
        errors = e.errors(include_url=False)
        err = max(errors, key=lambda x: not x["type"].endswith("_type"))
        flag = str(err["loc"][0]) if err["loc"] else ""
        where = ("guests", i, "args", flag) if flag in g.args else ("guests", i, "args")
        if err["type"] == "extra_forbidden":
            names = sorted(a for f in model.model_fields.values() for a in f.validation_alias.choices)
            message = f"{g.program} has no flag {flag!r}{expect.suggest(flag, names)} (flags: {', '.join(names)})"
        elif err["type"] == "missing":
            message = f"{g.program} needs {flag!r}"
        elif err["type"] == "string_pattern_mismatch":
            from .guestschema import PATTERN_DOCS
            doc = PATTERN_DOCS.get((err.get("ctx") or {}).get("pattern"), "")
            message = f"{g.program}: expected {doc or 'another value'}, got {err.get('input')!r}"
        else:
            message = f"{g.program}: " + _message(err, where, flag)
        raise _error(sc, where, message) from None


def congestion_wanted(sc):
    """{host or '*': algorithm} the scenario sets (the default for every host is in lab/sysctl.py)."""
    return {h: spec.sysctl[CONGESTION] for h, spec in sc.hosts.items() if CONGESTION in spec.sysctl}


def _guest_events(sc, declared):
    """guest -> {event: fields} it can print, from its program's declaration (and its mode, for clients)."""
    if declared is None:
        return None
    out = {}
    for g in sc.guests:
        events = declared.get(g.program)
        if events is None:
            continue
        mode = g.argv[0] if g.program == "client" and g.argv else None
        out[g.name] = {name: spec.get("fields") for name, spec in events.items()
                       if not spec.get("modes") or mode is None or mode in spec["modes"]}
    if sc.controller and "controller" in declared:
        out["controller"] = {name: spec.get("fields") for name, spec in declared["controller"].items()}
    return out


def _few(names, limit=12):
    return ", ".join(names[:limit]) + (f", ... ({len(names)} in all)" if len(names) > limit else "")
