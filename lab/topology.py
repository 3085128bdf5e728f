"""Topologies: one reference syntax, declared parameters, and loading only code someone trusted.

A reference names a topology like `mn --topo` does: `single`, `single,3`, `star,8,bw=10`, or a file:
`path/to/mytopo.py:NAME,4`. The same parser serves `tcplab cli` and scenarios.

A topology file is Python: loading it runs it (as root). So tcplab loads the shipped files in topologies/,
and other files only from a folder the person running tcplab named (`--trust DIR`, or the file given on
`tcplab cli`'s own command line). A scenario may never make tcplab import anything else.

Each topology class declares what a scenario may set, e.g.
    PARAMS = {"clients": (int, 1, 1000, "client hosts"), "bw": (float, 0.1, 10000, "Mbit/s on host links")}
Only those names are accepted (Mininet's own hopts/sopts/lopts/inNamespace, which reach root shell commands,
never are), each checked for type and range before the class is called. A trusted file without PARAMS gets
its build() parameters with generous generic ranges.
"""
import importlib.util
import inspect
import math
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from .errors import LabError

TOPOLOGY_DIR = Path(__file__).resolve().parent.parent / "topologies"
MAX_HOSTS = 1001          # a server and 1000 clients: the storm benchmark (tcplab bench --only storm)
MAX_NODES = 1200
NAME_CHARS = set("abcdefghijklmnopqrstuvwxyz0123456789-_")


class TopologyError(LabError):
    """A topology reference or parameter that cannot be used; the message says what is allowed."""


@dataclass(frozen=True)
class Param:
    name: str
    kind: type          # int or float
    low: float
    high: float
    meaning: str = ""

    def check(self, value, topo):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (self.kind is int and not float(value).is_integer()):
            raise TopologyError(f"topology {topo!r}: {self.name}: expected {'a whole number' if self.kind is int else 'a number'}"
                                f" from {self.low:g} to {self.high:g}, got {value!r}")
        if not math.isfinite(value) or not self.low <= value <= self.high:
            raise TopologyError(f"topology {topo!r}: {self.name}: {value!r} is out of range ({self.low:g} to {self.high:g}"
                                f"{', ' + self.meaning if self.meaning else ''})")
        return self.kind(value)

    def describe(self):
        return f"{self.name} ({self.kind.__name__} {self.low:g}-{self.high:g}{': ' + self.meaning if self.meaning else ''})"


@dataclass
class Ref:
    """A parsed topology reference."""
    name: str
    file: str = None
    args: list = field(default_factory=list)
    params: dict = field(default_factory=dict)

    def __str__(self):
        head = f"{self.file}:{self.name}" if self.file else self.name
        return ",".join([head, *map(_fmt, self.args), *(f"{k}={_fmt(v)}" for k, v in self.params.items())])


def _fmt(v):
    return f"{v:g}" if isinstance(v, float) else str(v)


def _number(text):
    for conv in (int, float):
        try:
            value = conv(text)
        except ValueError:
            continue
        if conv is float and not math.isfinite(value):
            break
        return value
    raise TopologyError(f"{text!r}: topology arguments are numbers (like single,3 or star,8,bw=10)")


def parse_ref(text):
    """'star,8,bw=10' -> Ref('star', None, [8], {'bw': 10}); 'my.py:t,2' -> Ref('t', 'my.py', [2]). Like `mn --topo`."""
    if not isinstance(text, str) or not text.strip() or len(text) > 300:
        raise TopologyError(f"{text!r}: expected NAME[,ARG...][,KEY=VALUE...], e.g. single,3")
    head, *args = text.strip().split(",")
    file = None
    if ":" in head:
        file, head = head.rsplit(":", 1)
    elif head.endswith(".py"):
        file, head = head, None
    ref = Ref(head, file)
    for arg in args:
        if "=" in arg:
            key, value = arg.split("=", 1)
            ref.params[key.strip()] = _number(value.strip())
        elif ref.params:
            raise TopologyError(f"{text!r}: positional arguments come before KEY=VALUE ones")
        else:
            ref.args.append(_number(arg.strip()))
    return ref


# -- loading code ----------------------------------------------------------------------------------
def _import(path):
    _ensure_topo_base()
    spec = importlib.util.spec_from_file_location(f"tcplab_topo_{path.stem.replace('-', '_')}", path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as e:  # a trusted user's file: say which one failed to load, and why
        raise TopologyError(f"{path}: cannot load topology file: {type(e).__name__}: {e}") from e
    topos = getattr(module, "topos", None)
    if not isinstance(topos, dict) or not topos:
        raise TopologyError(f"{path}: a topology file must define topos = {{'name': TopoClass}}")
    return topos


def _ensure_topo_base():
    """Mininet's Topo is a pure graph class; where Mininet is absent (validating a scenario on a laptop), a
    stand-in with the same building methods lets the shipped files load."""
    try:
        import mininet.topo  # noqa: F401
    except ImportError:
        from . import topobase
        sys.modules.setdefault("mininet", topobase.package())
        sys.modules.setdefault("mininet.topo", topobase)


_shipped = None


def available():
    """{name: Topo class} for every topology shipped in topologies/ (loaded once per process)."""
    global _shipped
    if _shipped is None:
        found = {}
        for path in sorted(TOPOLOGY_DIR.glob("*.py")):
            for name, cls in _import(path).items():
                found[name] = cls
        _shipped = found
    return _shipped


def load_file(path, trusted=()):
    """The `topos` of a topology file, which must lie under one of TRUSTED (folders or files)."""
    path = Path(path)
    if path.suffix != ".py":
        raise TopologyError(f"{path}: a topology file is a Python file ending in .py")
    real = Path(os.path.realpath(path))
    roots = [Path(os.path.realpath(t)) for t in trusted]
    if not any(real == r or r in real.parents for r in roots):
        raise TopologyError(f"{path}: tcplab runs topology files as code (as root), so it loads only the shipped "
                            "ones and files under a folder you name: add --trust FOLDER (e.g. --trust "
                            f"{path.parent or '.'}) if you wrote this file or checked it")
    if not real.is_file():
        raise TopologyError(f"{path}: no such topology file")
    return _import(real)


def find(ref, trusted=()):
    """The Topo class REF (a Ref, or a shipped name) names: from its file when given (which must be trusted),
    else from topologies/."""
    if isinstance(ref, str):
        ref = Ref(ref)
    if ref.file:
        topos = load_file(ref.file, trusted)
        if ref.name is None:
            if len(topos) != 1:
                raise TopologyError(f"{ref.file}: defines several topologies ({', '.join(sorted(topos))}): "
                                    "name one, FILE:NAME")
            ref.name = next(iter(topos))
        if ref.name not in topos:
            raise TopologyError(f"{ref.file}: no topology {ref.name!r} (it defines: {', '.join(sorted(topos))})")
        return topos[ref.name]
    shipped = available()
    if ref.name not in shipped:
        raise TopologyError(f"unknown topology {ref.name!r} (shipped: {', '.join(sorted(shipped))}; "
                            "or give a file: path/to/file.py:NAME with --trust)")
    return shipped[ref.name]


def declared_params(cls):
    """[Param] a topology class accepts, in build()'s order."""
    declared = getattr(cls, "PARAMS", None)
    if isinstance(declared, dict):
        return [Param(n, *spec) for n, spec in declared.items()]
    params = []
    for p in list(inspect.signature(cls.build).parameters.values())[1:]:
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        kind = int if isinstance(p.default, int) and not isinstance(p.default, bool) else float
        params.append(Param(p.name, kind, 0, 1000 if kind is int else 100000))
    return params


def bind(cls, ref):
    """REF's arguments -> keyword arguments for CLS, each checked against what the class declares."""
    params = declared_params(cls)
    by_name = {p.name: p for p in params}
    allowed = ", ".join(p.describe() for p in params) or "none"
    if len(ref.args) > len(params):
        raise TopologyError(f"topology {ref.name!r} takes at most {len(params)} arguments ({allowed}), "
                            f"got {len(ref.args)}")
    kwargs = {}
    for p, value in zip(params, ref.args):
        kwargs[p.name] = p.check(value, ref.name)
    for key, value in ref.params.items():
        if key not in by_name:
            raise TopologyError(f"topology {ref.name!r} has no parameter {key!r} (parameters: {allowed})")
        if key in kwargs:
            raise TopologyError(f"topology {ref.name!r}: {key} is given twice")
        kwargs[key] = by_name[key].check(value, ref.name)
    return kwargs


def build(name, file=None, args=(), params=None):
    """For code that names a topology itself (lab/network/, the Python API): FILE, when given, is trusted
    because the caller's own code named it. Scenarios go through build_ref() with the --trust folders."""
    ref = Ref(name, str(file) if file else None, list(args or ()), dict(params or {}))
    return build_ref(ref, trusted=(file,) if file else ())


def build_ref(ref, trusted=()):
    """An instance of the topology REF names, its parameters checked; at most MAX_HOSTS hosts."""
    cls = find(ref, trusted)
    kwargs = bind(cls, ref)
    try:
        topo = cls(**kwargs)
    except Exception as e:  # the class's own code (shipped, or trusted) refused its arguments
        raise TopologyError(f"topology {ref.name!r}: {type(e).__name__}: {e}") from None
    hosts, nodes = len(topo.hosts()), len(topo.nodes())
    if hosts > MAX_HOSTS or nodes > MAX_NODES:
        raise TopologyError(f"topology {ref.name!r} would have {hosts} hosts and {nodes} nodes; "
                            f"at most {MAX_HOSTS} hosts ({MAX_NODES} nodes) run on one machine")
    # Interface names are at most 15 bytes: a switch's carry the run id (4) and a port (-ethNNN).
    bad = [n for n in topo.hosts() if not set(n) <= NAME_CHARS or len(n) > 10]
    bad += [n for n in topo.switches() if not set(n) <= NAME_CHARS or len(n) > 4]
    if bad:
        raise TopologyError(f"topology {ref.name!r}: hosts need lowercase names of at most 10 characters, "
                            f"switches of at most 4 (like h1, s1): {bad[:3]}")
    return topo
