"""Validating a parsed Scenario against the world: the topology's hosts and nodes, this kernel's counter
names, the guests' own flags. Pure: the caller (lab/library.py) looks the facts up and passes them in."""
from dataclasses import dataclass

from . import expect
from .scenario import Reader, substitute


@dataclass
class Facts:
    """What validation needs to know about the world, looked up by the caller (see library.py)."""
    hosts: list                      # the topology's host names
    nodes: list                      # hosts and switches
    counters: dict = None            # {Group: [Counter, ...]} of this kernel
    check_guest_args: object = None  # (program, argv) -> error text or None


def validate(sc, facts):
    """Raise ScenarioError for anything that names what does not exist."""
    r = Reader(sc.path, sc.lines)
    for host in sc.sysctls:
        if host not in facts.hosts:
            raise r.error(f"hosts.{host}", f"no host {host!r} in topology {sc.topology} (hosts: {', '.join(facts.hosts)})")
    for i, link in enumerate(sc.links):
        for node in link.between:
            if node not in facts.nodes:
                raise r.error(f"links[{i}].between", f"no node {node!r} (nodes: {', '.join(facts.nodes)})")
    # The controller's events (switch, rule, restore, port-stats, flow-stats) are checked like a guest's.
    guest_names = [g.name for g in sc.guests] + (["controller"] if sc.controller else [])
    for i, g in enumerate(sc.guests):
        if g.host not in facts.hosts:
            raise r.error(f"guests[{i}].host", f"no host {g.host!r} in topology {sc.topology} (hosts: {', '.join(facts.hosts)})")
        if g.name in facts.hosts:
            raise r.error(f"guests[{i}].name", f"{g.name!r} is also a host name: name guests apart from hosts")
        if facts.check_guest_args:
            problem = facts.check_guest_args(g.program, substitute(g.args, {h: "10.0.0.1" for h in facts.hosts}))
            if problem:
                raise r.error(f"guests[{i}].args", f"{g.program}: {problem}")
    for i, a in enumerate(sc.actions):
        key = f"actions[{i}].{a.kind}"
        for node in a.params.get("between", ()):
            if node not in facts.nodes:
                raise r.error(key, f"no node {node!r} (nodes: {', '.join(facts.nodes)})")
        for f in ("from", "to"):
            if f in a.params and a.params[f] not in facts.hosts:
                raise r.error(key, f"{f}: no host {a.params[f]!r} (hosts: {', '.join(facts.hosts)})")
        if "host" in a.params and a.params["host"] not in facts.hosts:
            raise r.error(key, f"no host {a.params['host']!r} (hosts: {', '.join(facts.hosts)})")
        if "guest" in a.params and a.params["guest"] not in guest_names:
            raise r.error(key, f"no guest {a.params['guest']!r} (guests: {', '.join(guest_names)})")
    if sc.sample:
        for h in sc.sample.hosts:
            if h not in facts.hosts:
                raise r.error("sample.hosts", f"no host {h!r} (hosts: {', '.join(facts.hosts)})")
    for i, check in enumerate(sc.checks):
        try:
            expect.resolve(check, facts.hosts, guest_names, facts.counters)
        except expect.CheckSyntaxError as e:
            raise r.error(f"expect[{i}]", str(e)) from None
        if check.kind == "sample" and not (sc.sample and set(check.names) <= set(sc.sample.hosts)):
            raise r.error(f"expect[{i}]", f"checks socket samples of {', '.join(check.names)} but sample.hosts "
                          "does not list them (add sample: {hosts: [...]})")
    return sc
