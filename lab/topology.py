"""Finding and loading topologies: Mininet custom files (`topos = {...}`) in topologies/ or anywhere.

`single`, `single,3`, `star:clients=8` or `path/to/mytopo.py:mytopo` all name a topology.
Files are loaded with importlib, never exec, so a traceback points into the user's own file.
"""
import importlib.util
from pathlib import Path

from .errors import LabError

TOPOLOGY_DIR = Path(__file__).resolve().parent.parent / "topologies"


def available():
    """{name: (path, Topo class)} for every topology shipped in topologies/."""
    found = {}
    for path in sorted(TOPOLOGY_DIR.glob("*.py")):
        for name, cls in load_file(path).items():
            found[name] = (path, cls)
    return found


def load_file(path):
    """The `topos` dict of a Mininet custom-topology file."""
    path = Path(path)
    if not path.is_file():
        raise LabError(f"{path}: no such topology file")
    spec = importlib.util.spec_from_file_location(f"tcplab_topo_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as e:  # a user's file: say which one failed to load, and why
        raise LabError(f"{path}: cannot load topology file: {type(e).__name__}: {e}") from e
    topos = getattr(module, "topos", None)
    if not isinstance(topos, dict) or not topos:
        raise LabError(f"{path}: a topology file must define topos = {{'name': TopoClass}}")
    return topos


def find(name, file=None):
    """The Topo class called NAME: from FILE when given, else from topologies/."""
    if file:
        topos = load_file(file)
        if name not in topos:
            raise LabError(f"{file}: no topology {name!r} (it defines: {', '.join(sorted(topos))})")
        return topos[name]
    shipped = available()
    if name not in shipped:
        raise LabError(f"unknown topology {name!r} (shipped: {', '.join(sorted(shipped))}; "
                       f"or give a file: path/to/file.py:NAME)")
    return shipped[name][1]


def parse_ref(ref):
    """'star,8' -> ('star', None, [8], {}); 'my.py:t,a=1' -> ('t', 'my.py', [], {'a': 1}). Like `mn --topo`."""
    head, *args = ref.split(",")
    file = None
    if ":" in head:
        file, head = head.rsplit(":", 1)
    elif head.endswith(".py"):
        file, head = head, None
    pos, kw = [], {}
    for arg in args:
        if "=" in arg:
            k, v = arg.split("=", 1)
            kw[k] = _number(v)
        else:
            pos.append(_number(arg))
    if head is None:
        topos = load_file(file)
        if len(topos) != 1:
            raise LabError(f"{file}: defines several topologies ({', '.join(sorted(topos))}): name one, FILE:NAME")
        head = next(iter(topos))
    return head, file, pos, kw


def _number(text):
    for conv in (int, float):
        try:
            return conv(text)
        except ValueError:
            pass
    return text


def build(name, file=None, args=(), params=None):
    """An instance of topology NAME built with ARGS and PARAMS; errors name the bad parameter."""
    cls = find(name, file)
    try:
        return cls(*args, **(params or {}))
    except TypeError as e:
        raise LabError(f"topology {name!r}: {e}") from None
