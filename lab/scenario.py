"""Scenario files: text -> a Scenario (lab/model.py), every refusal naming the file, the line, the key and
what is allowed. Pure: no Mininet, no network, no import of anything the file names.

    parse(text, "my.yaml")   ->  Scenario          (structure and ranges: the schema)
    lab/validation.py        ->  against the world (topology hosts, this kernel's counters, guests' flags)
"""
import re
from pathlib import Path

from pydantic import ValidationError

from . import model, source
from .actions import ACTIONS
from .errors import ScenarioError
from .names import NAME_PATTERN

# What a pattern means, for people: shown instead of the regular expression.
PATTERN_WORDS = {
    NAME_PATTERN: "a name of lowercase letters, digits and dashes, like my-scenario",
    r"^[a-z0-9][a-z0-9_-]*$": "a host or switch name, like h1, server or s1",
    r"^[A-Za-z0-9_-]{1,40}$": "a topology name, like single or star",
    r"^[a-z][a-z0-9-]{0,30}$": "a flag name, like never-read",
    r"^[^\n\r]*$": "one line of text",
    r"^[^\x00\n\r]*$": "one line of text",
    r"^\d{1,5}(\.\d{1,3})?(us|ms|s)$": "a delay like 10ms, 500us or 1.5s",
    r"^(100|\d{1,2}(\.\d{1,4})?)%$": "a loss like 1% or 0.5%",
    r"^[^\x00\n]*\.py$": "a path to a .py file",
    r"^[A-Za-z0-9_ .:,-]{1,120}$": "a value of numbers, words and spaces (at most 120 characters)",
    r"^[a-z_][a-z0-9_]{0,30}$": "a parameter name, like clients or bw",
}


def default_name(path):
    """A file's stem as a scenario name (it names the folder under --out): safe characters only."""
    stem = re.sub(r"[^a-z0-9-]+", "-", Path(str(path)).stem.lower()).strip("-")
    return stem[:40] or "scenario"


def parse(text, path, name=None):
    """Scenario text -> Scenario (the schema checked; see lab/validation.py for the rest)."""
    data, lines = source.load_yaml(text, path)
    if data is None:
        raise ScenarioError(path, 1, None, "the file is empty: a scenario needs at least title, guests and expect")
    if not isinstance(data, dict):
        raise ScenarioError(path, 1, None, "a scenario is a mapping of keys (title:, topology:, guests:, ...)")
    try:
        sc = model.Scenario.model_validate(data)
    except ValidationError as e:
        raise schema_error(e, data, lines, path, model.Scenario) from None
    if sc.name is None:
        sc.name = name if name and re.fullmatch(NAME_PATTERN, name) else default_name(name or path)
    sc._path, sc._lines = path, lines
    return sc


# -- from the schema's refusal to the file's line --------------------------------------------------------
def yaml_path(loc, data):
    """A pydantic error location -> the path in the file's own data: the schema's inner names (union tags,
    the action's `do`) are not keys of the file, so they are skipped by walking the data alongside."""
    where, node = [], data
    for part in loc:
        if part == "[key]":
            break
        if isinstance(node, dict) and part in node:
            where.append(part)
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            where.append(part)
            node = node[part]
    return tuple(where), loc[-1] if loc else None


def _model_for(where):
    """The schema class that a mapping at WHERE is checked against (for 'allowed keys' in messages)."""
    if not where:
        return model.Scenario
    head = where[0]
    table = {"guests": model.GuestSpec, "links": model.LinkSpec, "hosts": model.HostSpec}
    if head in table and len(where) == 2:
        return table[head]
    if where == ("sample",):
        return model.SampleSpec
    if where == ("topology",):
        return model.TopologySpec
    if head == "actions" and len(where) == 3 and where[2] in ACTIONS:
        return ACTIONS[where[2]]
    return None


def _keys(cls, required=False):
    names = [f.alias or n for n, f in cls.model_fields.items() if not required or f.is_required()]
    return ", ".join(sorted(names))


def _message(err, where, last):
    kind, ctx, value = err["type"], err.get("ctx") or {}, err.get("input")
    shown = repr(value) if not isinstance(value, (dict, list)) else ("a mapping" if isinstance(value, dict) else "a list")
    if kind == "extra_forbidden":
        cls = _model_for(where[:-1])
        return f"unknown key (allowed: {_keys(cls)})" if cls else "unknown key"
    if kind == "missing":
        cls = _model_for(where)
        required = f" (required: {_keys(cls, required=True)})" if cls else ""
        return f"missing {last!r}{required}"
    if kind == "literal_error":
        return f"{shown} is not one of {ctx.get('expected', '').replace(chr(39), '')}"
    if kind in ("bool_type", "bool_parsing"):
        return f"expected true or false, got {shown}" + (" (text: remove the quotes)" if isinstance(value, str) else "")
    if kind in ("int_type", "int_from_float", "int_parsing"):
        return f"expected a whole number, got {shown}"
    if kind in ("float_type", "float_parsing"):
        return f"expected a number, got {shown}"
    if kind == "finite_number":
        return f"expected a finite number, got {shown}"
    if kind in ("string_type",):
        return f"expected text, got {shown}"
    if kind == "string_pattern_mismatch":
        words = PATTERN_WORDS.get(ctx.get("pattern"), f"text matching {ctx.get('pattern')}")
        return f"expected {words}, got {shown}"
    if kind == "string_too_long":
        return f"at most {ctx.get('max_length')} characters"
    if kind == "string_too_short":
        return "expected text" if ctx.get("min_length") == 1 else f"at least {ctx.get('min_length')} characters"
    if kind in ("too_long", "too_short"):
        bound = "at most" if kind == "too_long" else "at least"
        n = ctx.get("max_length") if kind == "too_long" else ctx.get("min_length")
        return f"{bound} {n} item{'s' if n != 1 else ''}"
    if kind in ("list_type", "tuple_type"):
        return f"expected a list, got {shown}"
    if kind in ("dict_type", "model_type", "model_attributes_type"):
        cls = _model_for(where)
        return f"expected a mapping{' with keys ' + _keys(cls) if cls else ''}, got {shown}"
    bounds = {"greater_than_equal": ">= {ge}", "greater_than": "> {gt}", "less_than_equal": "<= {le}",
              "less_than": "< {lt}"}
    if kind in bounds:
        return f"must be {bounds[kind].format(**ctx)}, got {shown}"
    if kind == "value_error":
        return str(ctx.get("error", err["msg"]))
    if kind == "union_tag_invalid":
        return f"{ctx.get('tag')!r} is not one of {ctx.get('expected_tags')}"
    return err["msg"][0].lower() + err["msg"][1:] if err["msg"] else kind


def schema_error(e, data, lines, path, root=None):
    """The first refusal of a pydantic ValidationError as a ScenarioError at the file's line (the count of
    the others, if any, is added: fix and run again)."""
    errors = e.errors(include_url=False)
    # A union reports every member's refusal; the deepest location explains most, and among equals a
    # refusal of the value's form (a pattern, a range) says more than "not a number" for text.
    err = max(errors, key=lambda x: (len(yaml_path(x["loc"], data)[0]), not x["type"].endswith("_type")))
    where, last = yaml_path(err["loc"], data)
    message = _message(err, where, last)
    key = source.dotted(where) or None
    if err["type"] == "missing" and last is not None and last != (where[-1] if where else None):
        key = source.dotted(where + (last,))
    if err["type"].startswith("topology") or err["type"] in ("from", "action", "check", "sysctl", "criterion"):
        message = err["msg"]
    if err["type"] in ("guests", "actions"):      # the location is in the message: 'guests[2].after: ...'
        sub, _, message = err["msg"].partition(": ")
        key = sub
        where = _parse_dotted(sub)
    more = len({tuple(x["loc"][:2]) for x in errors}) - 1
    if more > 0:
        message += f" (and {more} more problem{'s' if more > 1 else ''} after it)"
    return ScenarioError(path, source.line_of(lines, where), key, message)


def _parse_dotted(text):
    out = []
    for part in re.findall(r"[^.\[\]]+|\[\d+\]", text):
        out.append(int(part[1:-1]) if part.startswith("[") else part)
    return tuple(out)


_HOST = re.compile(r"\{([a-z0-9][a-z0-9_-]*)\}")
_T0 = re.compile(r"\{t0(?:\+(\d{1,3}(?:\.\d{1,6})?))?\}")


def substitute(args, addresses, t0=0.0):
    """'{h1}:9000' -> '10.0.0.1:9000' for every host in ADDRESSES; '{t0+0.5}' -> the timeline's start
    (CLOCK_MONOTONIC, shared by all hosts) plus 0.5 s, for guests that must act at the same instant."""
    def host(m):
        return addresses.get(m.group(1), m.group(0))
    # One pass per argument, whatever the number of hosts (a 1000-host storm has 1000 names).
    return [_T0.sub(lambda m: f"{t0 + float(m.group(1) or 0):.6f}", _HOST.sub(host, a)) for a in args]
