"""The scenario library: finding scenarios by name or file, and loading them fully validated.

This is the impure side of validation: it reads the files (bounded, lab/source.py), looks up the facts of
this machine (its kernel's counter and sysctl names, the topology's hosts, the guests' declared flags and
events) and hands them to the pure checks (lab/scenario.py, lab/validation.py).
Scenarios live in topic folders (scenarios/listen-queue/listen-overflow.yaml...); their names are the
file names, unique across folders.
"""
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from . import counters, scenario, source, topology, validation
from .errors import LabError, ScenarioError
from .guests import check_guest_args, declared_events, guest_arg_models

SCENARIO_DIR = Path(__file__).resolve().parent.parent / "scenarios"
ROOT = SCENARIO_DIR.parent


@dataclass
class Entry:
    name: str
    title: str
    path: Path
    topic: str


def scenario_paths():
    """Every shipped scenario file (not _template.yaml), by name."""
    return sorted((p for p in SCENARIO_DIR.rglob("*.yaml") if not p.name.startswith("_")), key=lambda p: p.stem)


def list_scenarios():
    entries = []
    for path in scenario_paths():
        sc = scenario.parse(source.read_file(path, shown(path)), shown(path), name=path.stem)
        entries.append(Entry(path.stem, sc.title, path, path.parent.name if path.parent != SCENARIO_DIR else ""))
    return entries


def shown(path):
    """How a file is named in messages: relative to the project for shipped files."""
    path = Path(path)
    if path.resolve().is_relative_to(SCENARIO_DIR):
        return str(path.resolve().relative_to(ROOT))
    return str(path)


def resolve(ref):
    """A scenario name (from scenarios/) or a path to a YAML file -> Path."""
    path = Path(ref)
    if ref.endswith((".yaml", ".yml")) or path.is_file():
        if not path.is_file():
            raise LabError(f"{ref}: no such scenario file")
        return path
    by_name = {p.stem: p for p in scenario_paths()}
    if ref not in by_name:
        raise LabError(f"unknown scenario {ref!r} (scenarios: {', '.join(sorted(by_name))}; or give a .yaml file)"
                       + _close(ref, by_name))
    return by_name[ref]


def _close(ref, names):
    import difflib
    close = difflib.get_close_matches(ref, list(names), n=2)
    return f"; did you mean {', '.join(close)}?" if close else ""


# -- facts of this machine ---------------------------------------------------------------------------
_cache = {}


def kernel_counter_names():
    """{Group: [Counter...]} this kernel has (read from this process's own namespace: names are per kernel)."""
    if "counters" not in _cache:
        values = counters.read_host_counters("self")
        _cache["counters"] = {g: list(c) for g, c in values.items()}
    return _cache["counters"]


_WALK = """
import os
for top in ("core", "ipv4", "ipv6", "unix"):
    for folder, dirs, files in os.walk(os.path.join("/proc/sys/net", top)):
        rel = os.path.relpath(folder, "/proc/sys").replace("/", ".")
        if rel.endswith((".conf", ".neigh")):
            dirs[:] = [d for d in dirs if d in ("all", "default")]
        for f in files:
            print(f"{rel}.{f}")
"""


def kernel_sysctl_keys():
    """The per-host sysctl keys this kernel has: net.core/ipv4/ipv6/unix as a fresh network namespace sees
    them, with per-interface keys named through `all` (interfaces differ per host). A key only the root
    namespace shows is the machine's (before 6.12, net.ipv4.icmp_msgs_per_sec was; 6.18 has one per
    namespace): listing from a fresh namespace leaves it out on the kernels that do. Without root (no
    namespace to make), the keys this process sees."""
    if "sysctls" not in _cache:
        out = ""
        walk = [sys.executable, "-c", _WALK]
        for argv in ([["unshare", "-n"] + walk] if os.geteuid() == 0 and shutil.which("unshare") else []) + [walk]:
            try:    # where no namespace can be made, the keys this process sees (the root's view)
                out = subprocess.run(argv, capture_output=True, text=True, timeout=20).stdout
            except (OSError, subprocess.SubprocessError):
                continue
            if out.strip():
                break
        _cache["sysctls"] = set(out.split()) or None
    return _cache["sysctls"]


def facts_for(sc, trusted=()):
    """Everything validation needs to know about this machine and SC's topology."""
    try:
        topo = topology.build_ref(sc.topology.ref, trusted)
    except LabError as e:
        raise ScenarioError(sc.path, sc.lines.get(("topology",), 0), "topology", str(e)) from None
    hosts = list(topo.hosts())
    return validation.Facts(hosts=hosts, nodes=hosts + list(topo.switches()), counters=kernel_counter_names(),
                            sysctl_keys=kernel_sysctl_keys(), events=declared_events(),
                            check_guest_args=check_guest_args, guest_args=guest_arg_models(),
                            kernel_kinds=_kernel_kinds(), links=[tuple(pair[:2]) for pair in topo.links()],
                            drop_reasons=_drop_reasons() if any(c.kind == "kernel" for c in sc.checks) else None)


def _kernel_kinds():
    from .trace.program import KINDS
    return list(KINDS)


def _drop_reasons():
    """This kernel's drop reason names (they differ between kernels), or None when they cannot be read here
    (not root, no tracefs): then a reason in a check is not checked for typos, and the check is not judged
    at run time unless the tracer runs."""
    if "drops" not in _cache:
        try:
            from .trace.kernel import tables
            _cache["drops"] = sorted(set(tables()["drop"].values()))
        except Exception:  # noqa: BLE001 (reading the format files needs root and tracefs)
            _cache["drops"] = None
    return _cache["drops"]


def load_scenario(ref, trusted=()):
    """Parse and validate a scenario completely, before anything is built. TRUSTED: folders whose topology
    files may be loaded (as code)."""
    path = resolve(ref)
    name = path.stem if path.parent.is_relative_to(SCENARIO_DIR) else None
    sc = scenario.parse(source.read_file(path, shown(path)), shown(path), name=name or path.stem)
    return validation.validate(sc, facts_for(sc, trusted))


def load_text(text, name="scenario", path="<text>", trusted=()):
    """For the Python API: a scenario from a YAML string, validated the same way."""
    sc = scenario.parse(text, path, name=name)
    return validation.validate(sc, facts_for(sc, trusted))


def describe(sc):
    """What `tcplab show` prints: what the scenario teaches and what it will run."""
    lines = [f"{sc.name}: {sc.title}", ""]
    if sc.teaches:
        lines += [sc.teaches.strip(), ""]
    if sc.controller:
        datapath = "kernel" if sc.switch == "ovs" else "userspace"
        lines.append(f"Network: {sc.topology} on Open vSwitch ({datapath} datapath) driven by the lab's OpenFlow "
                     "controller")
    else:
        lines.append(f"Network: {sc.topology} on a {sc.switch} switch")
    from .sysctl import HOST_DEFAULTS
    lines.append("  every host: " + ", ".join(f"{k}={v}" for k, v in HOST_DEFAULTS.items()))
    algorithms = sorted({sc.congestion(h) for h in [*sc.hosts, "*"]})
    lines.append(f"  congestion control: {', '.join(algorithms)} (set per host and on each guest socket)")
    for host, settings in sc.sysctls().items():
        lines.append(f"  {host}: " + ", ".join(f"{k}={v}" for k, v in settings.items()))
    for link in sc.links:
        shaping = ", ".join(s for s in (f"{link.bw:g} Mbit/s" if link.bw else "", f"delay {link.delay}" if link.delay else "",
                                        f"loss {link.loss}" if link.loss else "") if s)
        lines.append(f"  link {link.between[0]}-{link.between[1]}: {shaping}"
                     + (f" (only traffic from {link.only_from})" if link.only_from else ""))
    lines.append("Guests:")
    for g in sc.guests:
        when = f"after {g.after} is ready" if g.after else f"at {g.start:g} s"
        lines.append(f"  {g.name} on {g.host}, {when}: {g.program} {' '.join(g.argv)}")
    if sc.actions:
        lines.append("Actions:")
        for step in sc.actions:
            lines.append(f"  at {step.at:g} s: {step.action.describe()}")
    if sc.sample:
        lines.append(f"Samples: ss on {', '.join(sc.sample.hosts)} every {sc.sample.interval:g} s")
    lines.append(f"Timeline: at most {sc.duration:g} s")
    lines.append("Expectations:")
    for c in sc.checks:
        lines.append(f"  {c.text}" + (f"   ({c.why})" if c.why else ""))
    return "\n".join(lines)
