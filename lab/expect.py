"""Expectations: one line of text -> a Check; a Check + what was observed -> a Verdict. Pure.

A check reads like the sentence a teacher would write:

    server: TcpExt.ListenOverflows >= 1              a counter's change on a host (summed over hosts)
    c*: TcpExt.TCPSynRetrans >= 1                    hosts by glob (or a+b)
    client: summary.partial_writes >= 1              a field of a guest's event (the last one)
    client: count connect where outcome=timeout == 0 how many events (optionally filtered)
    h2: max sockets.send_q where t>2 >= 1000000      filtered by time (t: seconds since the timeline began)
    reader: max read.blocked_s in [0.9, 1.6]         an aggregate, within a band
    server: max sockets.accept_queue == 5            socket samples of a host (ss), aggregated
    h1: first listening.backlog == 128 ± 0           a tolerance

Aggregates: count, max, min, sum, first, last, mean. Operators: == != >= <= > < in.
"""
import fnmatch
import re
from dataclasses import dataclass, field

AGGREGATES = ("count", "max", "min", "sum", "first", "last", "mean")
OPERATORS = ("==", "!=", ">=", "<=", ">", "<", "in")
SAMPLE_FIELDS = ("accept_queue", "backlog", "connections", "recv_q", "send_q", "snd_wnd", "rcv_space",
                 "cwnd", "retrans_total", "backoff", "skmem_r", "skmem_rb", "skmem_t", "skmem_tb", "skmem_w",
                 "notsent", "rtt")

_CHECK = re.compile(
    r"^\s*(?P<subject>[\w*+?.\-\[\]]+)\s*:\s*"
    r"(?:(?P<agg>" + "|".join(AGGREGATES) + r")\s+)?"
    r"(?P<path>[A-Za-z][\w.\-]*)"
    r"(?:\s+where\s+(?P<where>\w+[=<>][\w.\-]+(?:\s*,\s*\w+[=<>][\w.\-]+)*))?"
    r"\s*(?P<op>==|!=|>=|<=|>|<|\bin\b)\s*(?P<value>.+?)\s*$")
_COUNTER = re.compile(r"^[A-Z][A-Za-z0-9]*\.[A-Za-z0-9_]+$")
_NUMBER = r"-?\d+(?:\.\d+)?(?:e-?\d+)?"


class CheckSyntaxError(ValueError):
    """A check that cannot be read; the message says what is allowed."""


@dataclass
class Check:
    text: str
    subject: str
    kind: str            # counter | sample | event
    path: str
    op: str
    value: object        # a number, or (low, high) for `in`
    agg: str = None
    where: list = field(default_factory=list)   # [(field, '=' | '<' | '>', value)]
    tolerance: float = 0.0
    why: str = ""
    names: list = field(default_factory=list)   # hosts or guests the subject matched (set by resolve)

    @property
    def event(self):
        return self.path.split(".", 1)[0]

    @property
    def field(self):
        parts = self.path.split(".", 1)
        return parts[1] if len(parts) > 1 else None

    def expected(self):
        if self.op == "in":
            return f"in [{_fmt(self.value[0])}, {_fmt(self.value[1])}]"
        tol = f" ± {_fmt(self.tolerance)}" if self.tolerance else ""
        return f"{self.op} {_fmt(self.value)}{tol}"


@dataclass
class Verdict:
    check: str
    passed: bool
    observed: object
    expected: str
    message: str
    why: str = ""

    def to_dict(self):
        return {"check": self.check, "passed": self.passed, "observed": self.observed,
                "expected": self.expected, "message": self.message, "why": self.why}


def _fmt(x):
    if isinstance(x, float):
        return f"{x:.6g}"
    return str(x)


def _number(text):
    text = text.strip()
    if not re.fullmatch(_NUMBER, text):
        raise CheckSyntaxError(f"{text!r} is not a number")
    value = float(text)
    return int(value) if value.is_integer() and "." not in text and "e" not in text else value


def parse_check(text, why=""):
    """'server: TcpExt.ListenOverflows >= 1' -> Check. Raises CheckSyntaxError saying what is allowed."""
    m = _CHECK.match(text or "")
    if not m:
        raise CheckSyntaxError(
            "expected 'SUBJECT: [AGGREGATE] PATH [where FIELD=VALUE] OP VALUE', e.g. "
            "'server: TcpExt.ListenOverflows >= 1' or 'client: max read.blocked_s in [0.9, 1.5]' "
            f"(aggregates: {', '.join(AGGREGATES)}; operators: {', '.join(OPERATORS)})")
    path, agg, op, raw = m.group("path"), m.group("agg"), m.group("op"), m.group("value")
    if _COUNTER.match(path):
        kind = "counter"
        if agg:
            raise CheckSyntaxError(f"{path}: a counter's change is summed over the hosts; drop {agg!r}")
    elif path.startswith("sockets."):
        kind = "sample"
        if path[len("sockets."):] not in SAMPLE_FIELDS:
            raise CheckSyntaxError(f"{path}: unknown socket field (fields: {', '.join(SAMPLE_FIELDS)})")
    else:
        kind = "event"
    where = []
    if m.group("where"):
        for part in m.group("where").split(","):
            key, cmp, v = re.match(r"(\w+)([=<>])(.+)", part.strip()).groups()
            if cmp != "=":
                _number(v)   # t<1.5: a number, or a syntax error now rather than a silent mismatch
            where.append((key, cmp, v))
    tolerance = 0.0
    if op == "in":
        bm = re.fullmatch(rf"\[\s*({_NUMBER})\s*,\s*({_NUMBER})\s*\]", raw)
        if not bm:
            raise CheckSyntaxError(f"'in' takes a band [LOW, HIGH], got {raw!r}")
        value = (_number(bm.group(1)), _number(bm.group(2)))
        if value[0] > value[1]:
            raise CheckSyntaxError(f"band [{value[0]}, {value[1]}]: LOW is above HIGH")
    else:
        parts = re.split(r"\s*(?:±|\+-|\+/-)\s*", raw)
        value = _number(parts[0])
        if len(parts) == 2:
            tolerance = _number(parts[1])
        elif len(parts) > 2:
            raise CheckSyntaxError(f"{raw!r}: one tolerance at most (VALUE ± TOL)")
    return Check(text=text.strip(), subject=m.group("subject"), kind=kind, path=path, op=op, value=value,
                 agg=agg, where=where, tolerance=tolerance, why=why)


def match_subject(subject, names):
    """Names matched by 'h1', 'c*' or 'c1+c2' among NAMES, in NAMES' order."""
    wanted = subject.split("+")
    return [n for n in names if any(fnmatch.fnmatchcase(n, w) for w in wanted)]


def resolve(check, hosts, guests, known_counters=None):
    """Bind CHECK's subject to hosts or guests; raise CheckSyntaxError naming what exists."""
    matched_hosts, matched_guests = match_subject(check.subject, hosts), match_subject(check.subject, guests)
    if check.kind in ("counter", "sample"):
        if not matched_hosts:
            what = "a counter" if check.kind == "counter" else "socket samples"
            raise CheckSyntaxError(f"{check.subject!r} matches no host ({what} belongs to a host; "
                                   f"hosts: {', '.join(hosts)})")
        check.names = matched_hosts
        if check.kind == "counter" and known_counters is not None:
            group, _, name = check.path.partition(".")
            if name not in known_counters.get(group, ()):
                close = [f"{g}.{c}" for g, cs in known_counters.items() for c in cs
                         if c.lower() == name.lower() or (g == group and c.lower().startswith(name.lower()[:6]))]
                hint = f" (did you mean {', '.join(close[:3])}?)" if close else ""
                raise CheckSyntaxError(f"{check.path}: this kernel has no such counter{hint}")
    else:
        if not matched_guests:
            raise CheckSyntaxError(f"{check.subject!r} matches no guest (an event belongs to a guest; "
                                   f"guests: {', '.join(guests)})")
        check.names = matched_guests
    return check


def _aggregate(agg, values):
    if agg == "count":
        return len(values)
    if agg == "sum" and not values:
        return 0            # the sum of nothing is 0: "no bytes arrived" is an observation
    if not values:
        return None
    if agg == "max":
        return max(values)
    if agg == "min":
        return min(values)
    if agg == "sum":
        return sum(values)
    if agg == "first":
        return values[0]
    if agg == "mean":
        return sum(values) / len(values)
    return values[-1]


def _matches(record, where):
    """FIELD=VALUE compares as text; FIELD<NUMBER and FIELD>NUMBER as numbers (t is an alias of t_rel)."""
    for key, op, value in where:
        # `t` means seconds since the timeline began: events carry it as t_rel (their own `t` is the raw
        # monotonic clock); socket samples store it as t.
        got = record.get("t_rel", record.get("t")) if key == "t" else record.get(key)
        if op == "=":
            if str(got).lower() != value.lower():
                return False
        elif not isinstance(got, (int, float)) or not (got < float(value) if op == "<" else got > float(value)):
            return False
    return True


def observe(check, observations):
    """The value CHECK looks at in OBSERVATIONS ({counters, events, samples}); None when there is none."""
    if check.kind == "counter":
        group, _, name = check.path.partition(".")
        values = [observations["counters"].get(h, {}).get(group, {}).get(name) for h in check.names]
        values = [v for v in values if v is not None]
        return sum(values) if values else None
    if check.kind == "sample":
        key = check.path[len("sockets."):]
        values = [s[key] for h in check.names for s in observations["samples"].get(h, [])
                  if s.get(key) is not None and _matches(s, check.where)]
        return _aggregate(check.agg or "max", values)
    events = sorted((e for g in check.names for e in observations["events"].get(g, [])
                     if e.get("event") == check.event and _matches(e, check.where)), key=lambda e: e.get("t", 0))
    if check.field is None:
        return _aggregate("count", events)
    if check.agg == "count":
        return len([e for e in events if e.get(check.field) is not None])
    values = [e[check.field] for e in events if isinstance(e.get(check.field), (int, float, bool))]
    return _aggregate(check.agg or "last", values)


def compare(op, observed, value, tolerance=0.0):
    if op == "in":
        return value[0] <= observed <= value[1]
    if op == "==":
        return abs(observed - value) <= tolerance
    if op == "!=":
        return abs(observed - value) > tolerance
    return {">=": observed >= value - tolerance, "<=": observed <= value + tolerance,
            ">": observed > value, "<": observed < value}[op]


def evaluate(check, observations, meaning=""):
    """Check -> Verdict, with a message that says what was expected and what was seen."""
    observed = observe(check, observations)
    who = "+".join(check.names) if check.names else check.subject
    subject = f"{who} {check.agg + ' ' if check.agg else ''}{check.path}"
    if check.where:
        subject += " where " + ",".join(f"{k}{cmp}{v}" for k, cmp, v in check.where)
    if observed is None:
        return Verdict(check.text, False, None, check.expected(),
                       f"expected {subject} {check.expected()}, but nothing was observed "
                       f"(no {'samples' if check.kind == 'sample' else 'matching events' if check.kind == 'event' else 'counter'})",
                       check.why or meaning)
    passed = compare(check.op, observed, check.value, check.tolerance)
    shown = round(observed, 6) if isinstance(observed, float) else observed
    note = f" ({meaning})" if meaning and not passed else ""
    message = f"{'ok' if passed else 'expected'}: {subject} {check.expected()}, observed {_fmt(shown)}{note}"
    return Verdict(check.text, passed, shown, check.expected(), message, check.why or meaning)
