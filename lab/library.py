"""The scenario library: finding scenarios by name or file and loading them fully validated."""
from dataclasses import dataclass
from pathlib import Path

from . import counters, scenario, topology
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
    return scenario.Facts(hosts=hosts, nodes=hosts + list(topo.switches()), counters=kernel_counter_names(),
                          check_guest_args=check_guest_args)


def load_scenario(ref):
    """Parse and validate a scenario completely, before anything is built."""
    path = resolve(ref)
    shown = f"scenarios/{path.name}" if path.parent == SCENARIO_DIR else str(path)
    sc = scenario.parse(path.read_text(), shown, name=path.stem)
    return scenario.validate(sc, facts_for(sc))


def load_text(text, name="scenario", path="<text>"):
    """For the Python API: a scenario from a YAML string, validated the same way."""
    sc = scenario.parse(text, path, name=name)
    return scenario.validate(sc, facts_for(sc))
