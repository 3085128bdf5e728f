"""The scenario library: finding scenarios by name or file and loading them fully validated."""
from dataclasses import dataclass
from pathlib import Path

from . import counters, scenario, topology, validation
from .errors import LabError, ScenarioError
from .guests import check_guest_args

SCENARIO_DIR = Path(__file__).resolve().parent.parent / "scenarios"


@dataclass
class Entry:
    name: str
    title: str
    path: Path


def scenario_paths():
    return sorted(p for p in SCENARIO_DIR.glob("*.yaml") if not p.name.startswith("_"))


def list_scenarios():
    entries = []
    for path in scenario_paths():
        sc = scenario.parse(path.read_text(), f"scenarios/{path.name}", name=path.stem)
        entries.append(Entry(path.stem, sc.title, path))
    return entries


def resolve(ref):
    """A scenario name (from scenarios/) or a path to a YAML file -> Path."""
    path = Path(ref)
    if ref.endswith((".yaml", ".yml")) or path.is_file():
        if not path.is_file():
            raise LabError(f"{ref}: no such scenario file")
        return path
    candidate = SCENARIO_DIR / f"{ref}.yaml"
    if not candidate.is_file():
        names = ", ".join(p.stem for p in scenario_paths())
        raise LabError(f"unknown scenario {ref!r} (scenarios: {names}; or give a .yaml file)")
    return candidate


def kernel_counter_names():
    """{Group: [Counter...]} this kernel has (read from this process's own namespace: names are per kernel)."""
    values = counters.read_host_counters("self")
    return {g: list(c) for g, c in values.items()}


def facts_for(sc):
    try:
        topo = topology.build(sc.topology, sc.topology_file, sc.topology_args, sc.topology_params)
    except LabError as e:
        line = sc.lines.get("topology", 0)
        raise ScenarioError(sc.path, line, "topology", str(e)) from None
    hosts = list(topo.hosts())
    return validation.Facts(hosts=hosts, nodes=hosts + list(topo.switches()), counters=kernel_counter_names(),
                          check_guest_args=check_guest_args)


def load_scenario(ref):
    """Parse and validate a scenario completely, before anything is built."""
    path = resolve(ref)
    shown = f"scenarios/{path.name}" if path.parent == SCENARIO_DIR else str(path)
    sc = scenario.parse(path.read_text(), shown, name=path.stem)
    return validation.validate(sc, facts_for(sc))


def load_text(text, name="scenario", path="<text>"):
    """For the Python API: a scenario from a YAML string, validated the same way."""
    sc = scenario.parse(text, path, name=name)
    return validation.validate(sc, facts_for(sc))


def describe(sc):
    """What `tcplab show` prints: what the scenario teaches and what it will run."""
    lines = [f"{sc.name}: {sc.title}", ""]
    if sc.teaches:
        lines += [sc.teaches.strip(), ""]
    topo = ",".join([sc.topology, *map(str, sc.topology_args)])
    lines.append(f"Network: {topo} on a {sc.switch} switch" + (f" (file {sc.topology_file})" if sc.topology_file else ""))
    for host, settings in sc.sysctls.items():
        lines.append(f"  {host}: " + ", ".join(f"{k}={v}" for k, v in settings.items()))
    for link in sc.links:
        shaping = ", ".join(f"{k} {getattr(link, k)}" for k in ("bw", "delay", "loss") if getattr(link, k))
        lines.append(f"  link {link.between[0]}-{link.between[1]}: {shaping}" + (" Mbit/s" if link.bw and not link.needs_netem else ""))
    lines.append("Guests:")
    for g in sc.guests:
        when = f"after {g.after} is ready" if g.after else f"at {g.start:g} s"
        lines.append(f"  {g.name} on {g.host}, {when}: {g.program} {' '.join(g.args)}")
    if sc.actions:
        lines.append("Actions:")
        for a in sc.actions:
            lines.append(f"  at {a.at:g} s: {a.kind} {a.params}")
    if sc.sample:
        lines.append(f"Samples: ss on {', '.join(sc.sample.hosts)} every {sc.sample.interval:g} s")
    lines.append(f"Timeline: at most {sc.duration:g} s")
    lines.append("Expectations:")
    for c in sc.checks:
        lines.append(f"  {c.text}" + (f"   ({c.why})" if c.why else ""))
    return "\n".join(lines)
