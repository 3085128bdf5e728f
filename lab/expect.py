"""Checks: one line of text -> a Check; a Check + what was observed -> a Verdict. Pure.

A check reads like the sentence a teacher would write:

    server: TcpExt.ListenOverflows >= 1              a counter's change on a host (summed over hosts)
    c*: TcpExt.TCPSynRetrans >= 1                    hosts by glob (or a+b)
    client: summary.partial_writes >= 1              a field of a guest's event (the last one)
    client: count connect where outcome=timeout == 0 how many events (optionally filtered)
    h2: max sockets.send_q where t>2 >= 1000000      filtered by time (t: seconds since the timeline began)
    reader: max read.blocked_s in [0.9, 1.6]         an aggregate, within a band
    server: max sockets.accept_queue == 5            socket samples of a host (ss), aggregated
    server: kernel.drop.TCP_LISTEN_OVERFLOW >= 1     the kernel's own events on a host (tracepoints), with
    server: kernel.drop.TCP_LISTEN_OVERFLOW+NO_SOCKET >= 1     a drop's reason, or any of several
    h1: first listening.backlog == 128 ± 0           a tolerance

Aggregates: count, max, min, sum, first, last, mean. Operators: == != >= <= > < in.
Each kind of check is one class in CHECK_KINDS (how its path looks, what its subject is, how it is
observed); adding a kind is one class here and its test. A value that was not observed is None, never 0:
such a check fails and says so.
"""
import difflib
import fnmatch
import math
import re
import statistics
from dataclasses import dataclass, field
from typing import ClassVar

from .results import Verdict

AGGREGATES = ("count", "max", "min", "sum", "first", "last", "mean", "median")
OPERATORS = ("==", "!=", ">=", "<=", ">", "<", "in")
SAMPLE_FIELDS = ("accept_queue", "backlog", "connections", "recv_q", "send_q", "snd_wnd", "rcv_space",
                 "cwnd", "rtt", "retrans_total", "backoff", "skmem_r", "skmem_rb", "skmem_t", "skmem_tb", "skmem_w",
                 "notsent")

_CHECK = re.compile(
    r"^\s*(?P<subject>[\w*+?.\-\[\]]+)\s*:\s*"
    r"(?:(?P<agg>" + "|".join(AGGREGATES) + r")\s+)?"
    r"(?P<path>[A-Za-z][\w.\-]*(?:\+[A-Z][A-Z0-9_]*)*)"
    r"(?:\s+where\s+(?P<where>\w+[=<>][\w.\-]+(?:\s*,\s*\w+[=<>][\w.\-]+)*))?"
    r"\s*(?P<op>==|!=|>=|<=|>|<|\bin\b)\s*(?P<value>.+?)\s*$")
_NUMBER = r"-?\d{1,15}(?:\.\d{1,9})?(?:e-?\d{1,3})?"


class CheckSyntaxError(ValueError):
    """A check that cannot be read or resolved; the message says what is allowed."""


@dataclass
class Check:
    text: str
    subject: str
    kind: str            # a key of CHECK_KINDS
    path: str
    op: str
    value: object        # a number, or (low, high) for `in`
    agg: str = None
    where: list = field(default_factory=list)   # [(field, '=' | '<' | '>', value)]
    tolerance: float = 0.0
    why: str = ""
    names: list = field(default_factory=list)   # hosts or guests the subject matched (set by resolve)
    unjudged: str = ""   # why this kernel cannot judge it, e.g. it has no name for the drop (set by resolve)
    since: str = ""      # "6.15": the first kernel that shows what it looks for; older ones leave it unjudged

    @property
    def event(self):
        return self.path.split(".", 1)[0]

    @property
    def field(self):
        parts = self.path.split(".", 1)
        return parts[1] if len(parts) > 1 else None

    @property
    def bounds(self):
        """(low, high) this check accepts, for graders: a band, or a value with its tolerance."""
        if self.op == "in":
            return self.value
        if self.op == "==":
            return (self.value - self.tolerance, self.value + self.tolerance)
        return None

    def expected(self):
        if self.op == "in":
            return f"in [{_fmt(self.value[0])}, {_fmt(self.value[1])}]"
        tol = f" ± {_fmt(self.tolerance)}" if self.tolerance else ""
        return f"{self.op} {_fmt(self.value)}{tol}"


def _fmt(x):
    return f"{x:.6g}" if isinstance(x, float) else str(x)


def _number(text):
    text = text.strip()
    if not re.fullmatch(_NUMBER, text):
        raise CheckSyntaxError(f"{text!r} is not a number")
    value = float(text)
    if math.isinf(value):    # 1e999: a bound no observation can cross makes a check that cannot fail
        raise CheckSyntaxError(f"{text!r} is too large a number")
    return int(value) if value.is_integer() and "." not in text and "e" not in text else value


def suggest(word, choices):
    close = difflib.get_close_matches(word, list(choices), n=3, cutoff=0.6)
    return f" (did you mean {', '.join(close)}?)" if close else ""


# -- kinds of checks -------------------------------------------------------------------------------
class CheckKind:
    """How one kind of check reads its path, what its subject is, and how it is observed."""
    name: ClassVar[str]
    subject: ClassVar[str] = "host"          # host | guest
    default_agg: ClassVar[str] = None
    aggregates: ClassVar[tuple] = AGGREGATES

    @staticmethod
    def claims(path):
        raise NotImplementedError

    def parse(self, check):
        """Syntax-level checks of the path and aggregate; raise CheckSyntaxError."""
        if check.agg and check.agg not in self.aggregates:
            raise CheckSyntaxError(f"{check.path}: {check.agg!r} does not apply "
                                   f"({'no aggregate' if not self.aggregates else ', '.join(self.aggregates)})")

    def resolve(self, check, world):
        """Check the path against what exists (world: lab.validation.World); raise CheckSyntaxError."""

    def observe(self, check, obs):
        """The value the check looks at in OBS (Result.observations()), or (None, why nothing was observed)."""
        raise NotImplementedError


class CounterCheck(CheckKind):
    name = "counter"
    aggregates = ()

    @staticmethod
    def claims(path):
        return re.fullmatch(r"[A-Z][A-Za-z0-9]*\.[A-Za-z0-9_]+", path) is not None

    def parse(self, check):
        if check.agg:
            raise CheckSyntaxError(f"{check.path}: a counter's change is summed over the hosts; drop {check.agg!r}")
        if check.where:     # a counter is read before and after the run: it has no moments to choose from
            raise CheckSyntaxError(f"{check.path}: a counter is its change over the whole run; 'where' applies "
                                   "to guest events and socket samples only")

    def resolve(self, check, world):
        if world.counters is None:
            return
        group, _, name = check.path.partition(".")
        if name not in world.counters.get(group, ()):
            every = [f"{g}.{c}" for g, cs in world.counters.items() for c in cs]
            close = [x for x in every if x.lower() == check.path.lower()] or \
                difflib.get_close_matches(check.path, every, n=3, cutoff=0.8)
            hint = f" (did you mean {', '.join(close)}?)" if close else ""
            raise CheckSyntaxError(f"{check.path}: this kernel has no such counter{hint}")

    def observe(self, check, obs):
        group, _, name = check.path.partition(".")
        values = [obs["counters"].get(h, {}).get(group, {}).get(name) for h in check.names]
        values = [v for v in values if v is not None]
        return (sum(values), None) if values else (None, "no such counter was read on " + "+".join(check.names))


class SampleCheck(CheckKind):
    name = "sample"
    default_agg = "max"

    @staticmethod
    def claims(path):
        return path.startswith("sockets.")

    def parse(self, check):
        super().parse(check)
        name = check.path[len("sockets."):]
        if name not in SAMPLE_FIELDS:
            raise CheckSyntaxError(f"{check.path}: unknown socket field{suggest(name, SAMPLE_FIELDS)} "
                                   f"(fields: {', '.join(SAMPLE_FIELDS)})")

    def resolve(self, check, world):
        if not set(check.names) <= set(world.sampled):
            raise CheckSyntaxError(f"checks socket samples of {', '.join(check.names)} but sample.hosts does not "
                                   "list them (add sample: {hosts: [...]})")

    def observe(self, check, obs):
        key = check.path[len("sockets."):]
        values = [s[key] for h in check.names for s in obs["samples"].get(h, [])
                  if s.get(key) is not None and _matches(s, check.where)]
        if not values and check.agg != "count":
            return None, f"no sample of {key} (ss did not report it)"
        return _aggregate(check.agg or self.default_agg, values), None


class KernelCheck(CheckKind):
    """The kernel's own events on a host, from tracepoints: kernel.KIND or kernel.drop.REASON (counts)."""
    name = "kernel"
    aggregates = ()

    @staticmethod
    def claims(path):
        return path.startswith("kernel.")

    def parse(self, check):
        if check.agg:
            raise CheckSyntaxError(f"{check.path}: kernel events are counted and summed over the hosts; drop {check.agg!r}")
        if check.where:     # counts per host and kind over the timeline: the events' times are not kept
            raise CheckSyntaxError(f"{check.path}: kernel events are counted over the whole timeline; 'where' "
                                   "applies to guest events and socket samples only")
        parts = check.path.split(".")
        if len(parts) not in (2, 3) or (len(parts) == 3 and parts[1] != "drop") or ("+" in parts[1]):
            raise CheckSyntaxError(f"{check.path}: expected kernel.KIND, kernel.drop.REASON or kernel.drop.REASON+REASON")

    def resolve(self, check, world):
        parts = check.path.split(".")
        if world.kernel_kinds is not None and parts[1] not in world.kernel_kinds:
            raise CheckSyntaxError(f"{check.path}: no kernel event kind {parts[1]!r}{suggest(parts[1], world.kernel_kinds)}"
                                   f" (kinds: {', '.join(world.kernel_kinds)})")
        if len(parts) == 3 and world.drop_reasons is not None:
            check.unjudged = _resolve_drop_reasons(check.path, parts[2].split("+"), world.drop_reasons)

    def observe(self, check, obs):
        if obs.get("kernel") is None:
            return None, None
        parts = check.path.split(".")
        total = 0
        for h in check.names:
            value = obs["kernel"].get(h, {}).get(parts[1], 0)
            if len(parts) == 3:
                value = sum((value or {}).get(r, 0) for r in parts[2].split("+")) if isinstance(value, dict) else 0
            elif isinstance(value, dict):
                value = sum(value.values())
            total += value
        return total, None      # the tracer ran: an event it never saw happened 0 times


def _resolve_drop_reasons(path, names, here):
    """"" when this kernel (its reason names HERE) can judge the sum of NAMES, else why not. A name of another
    checked kernel (dropnames.KNOWN) that this one lacks counts 0 here, truly: this kernel cannot report it.
    When it has none of them the check is not judged here (6.1 names no TCP_LISTEN_OVERFLOW); a name in no
    table is a typo and raises CheckSyntaxError."""
    from .trace.dropnames import KNOWN
    for reason in names:
        if reason not in here and reason not in KNOWN:
            raise CheckSyntaxError(f"{path}: no kernel has a drop reason {reason!r}"
                                   f"{suggest(reason, sorted(set(here) | KNOWN))}")
    if any(n in here for n in names):
        return ""
    return (f"this kernel has no drop reason {' or '.join(names)} (newer kernels name it; "
            f"sum it with this kernel's name for the same drop, if it has one: kernel.drop.{names[0]}+NAME)")


class EventCheck(CheckKind):
    name = "event"
    subject = "guest"
    default_agg = "last"

    @staticmethod
    def claims(path):
        return True

    def resolve(self, check, world):
        if world.events is None:
            return
        for guest in check.names:
            declared = world.events.get(guest)
            if declared is None:
                continue
            if check.event not in declared:
                raise CheckSyntaxError(f"{guest} never prints {check.event!r} events{suggest(check.event, declared)} "
                                       f"(it prints: {', '.join(sorted(declared))})")
            fields = declared[check.event]
            for name in [check.field] + [k for k, _, _ in check.where]:
                if name and name not in ("t", "t_rel") and fields is not None and name not in fields:
                    raise CheckSyntaxError(f"{guest}'s {check.event!r} events have no field {name!r}"
                                           f"{suggest(name, fields)} (fields: {', '.join(sorted(fields))})")

    def observe(self, check, obs):
        unfinished = [g for g in check.names if g not in obs.get("finished", check.names)]
        if unfinished:
            return None, f"{', '.join(unfinished)} wrote no summary (it did not run to its end)"
        events = sorted((e for g in check.names for e in obs["events"].get(g, [])
                         if e.get("event") == check.event and _matches(e, check.where)), key=lambda e: e.get("t", 0))
        if check.field is None:
            return len(events), None
        if check.agg == "count":
            return len([e for e in events if e.get(check.field) is not None]), None
        values = [e[check.field] for e in events
                  if isinstance(e.get(check.field), (int, float, bool)) and not isinstance(e.get(check.field), str)]
        value = _aggregate(check.agg or self.default_agg, values)
        return (value, None) if value is not None else (None, f"no {check.event} event with a {check.field}")


CHECK_KINDS = {cls.name: cls() for cls in (CounterCheck, SampleCheck, KernelCheck, EventCheck)}


def kind_of(path):
    return next(k for k in CHECK_KINDS.values() if k.claims(path))


# -- parsing and judging ---------------------------------------------------------------------------
def parse_check(text, why=""):
    """'server: TcpExt.ListenOverflows >= 1' -> Check. Raises CheckSyntaxError saying what is allowed."""
    if not isinstance(text, str) or len(text) > 500:
        raise CheckSyntaxError("a check is one line of text (at most 500 characters)")
    m = _CHECK.match(text)
    if not m:
        raise CheckSyntaxError(
            "expected 'SUBJECT: [AGGREGATE] PATH [where FIELD=VALUE] OP VALUE', e.g. "
            "'server: TcpExt.ListenOverflows >= 1' or 'client: max read.blocked_s in [0.9, 1.5]' "
            f"(aggregates: {', '.join(AGGREGATES)}; operators: {', '.join(OPERATORS)})")
    path, agg, op, raw = m.group("path"), m.group("agg"), m.group("op"), m.group("value")
    kind = kind_of(path)
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
            if tolerance < 0:    # "== 4 ± -1" could never pass, "!= 4 ± -1" never fail
                raise CheckSyntaxError(f"{raw!r}: a tolerance is 0 or more")
        elif len(parts) > 2:
            raise CheckSyntaxError(f"{raw!r}: one tolerance at most (VALUE ± TOL)")
    check = Check(text=text.strip(), subject=m.group("subject"), kind=kind.name, path=path, op=op, value=value,
                  agg=agg, where=where, tolerance=tolerance, why=why)
    kind.parse(check)
    return check


def match_subject(subject, names):
    """Names matched by 'h1', 'c*' or 'c1+c2' among NAMES, in NAMES' order."""
    wanted = subject.split("+")
    return [n for n in names if any(fnmatch.fnmatchcase(n, w) for w in wanted)]


def resolve(check, world):
    """Bind CHECK's subject to hosts or guests of WORLD and check its path; raise CheckSyntaxError."""
    kind = CHECK_KINDS[check.kind]
    if kind.subject == "host":
        names = match_subject(check.subject, world.hosts)
        if not names:
            raise CheckSyntaxError(f"{check.subject!r} matches no host ({kind.name} checks belong to hosts; "
                                   f"hosts: {', '.join(world.hosts)}){suggest(check.subject, world.hosts)}")
    else:
        names = match_subject(check.subject, world.guests)
        if not names:
            raise CheckSyntaxError(f"{check.subject!r} matches no guest (an event belongs to a guest; "
                                   f"guests: {', '.join(world.guests)}){suggest(check.subject, world.guests)}")
    check.names = names
    kind.resolve(check, world)
    return check


def _aggregate(agg, values):
    if agg == "count":
        return len(values)
    if agg == "sum" and not values:
        return 0            # the sum over no matching events (of guests that finished) is 0
    if not values:
        return None
    return {"max": max, "min": min, "sum": sum, "first": lambda v: v[0], "last": lambda v: v[-1],
            "mean": lambda v: sum(v) / len(v), "median": statistics.median}[agg](values)


def _matches(record, where):
    """FIELD=VALUE compares as text; FIELD<NUMBER and FIELD>NUMBER as numbers (t is an alias of t_rel)."""
    for key, op, value in where:
        # `t` means seconds since the timeline began: events carry it as t_rel (their own `t` is the raw
        # monotonic clock); socket samples store it as t.
        got = record.get("t_rel", record.get("t")) if key == "t" else record.get(key)
        if op == "=":
            if str(got).lower() != value.lower():
                return False
        elif isinstance(got, bool) or not isinstance(got, (int, float)) or \
                not (got < float(value) if op == "<" else got > float(value)):
            return False
    return True


def _older_than(release, since):
    """Why kernel RELEASE ("6.1.0-50-amd64") is too old for a check that needs SINCE ("6.15"), or ""."""
    m = re.match(r"(\d+)\.(\d+)", release or "")
    if not since or not m:
        return ""
    if (int(m[1]), int(m[2])) >= tuple(int(x) for x in since.split(".")):
        return ""
    return f"kernel {m[1]}.{m[2]} is older than {since}, the first that shows this (the check's `since`)"


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
    observed, missing = CHECK_KINDS[check.kind].observe(check, observations)
    who = "+".join(check.names) if check.names else check.subject
    subject = f"{who} {check.agg + ' ' if check.agg else ''}{check.path}"
    if check.where:
        subject += " where " + ",".join(f"{k}{cmp}{v}" for k, cmp, v in check.where)
    why = check.why or meaning
    too_old = _older_than(observations.get("release"), check.since)
    if too_old:
        return Verdict(check=check.text, passed=False, expected=check.expected(), why=why, skipped=too_old,
                       message=f"not judged: {subject}: {too_old}")
    if check.unjudged:
        return Verdict(check=check.text, passed=False, expected=check.expected(), why=why, skipped=check.unjudged,
                       message=f"not judged: {subject}: {check.unjudged}")
    if check.kind == "kernel" and observations.get("kernel") is None:
        reason = observations.get("trace_reason") or "kernel tracing was off"
        return Verdict(check=check.text, passed=False, expected=check.expected(), why=why, skipped=reason,
                       message=f"not judged: {subject} needs the kernel's event stream ({reason})")
    if observed is None:
        return Verdict(check=check.text, passed=False, expected=check.expected(), why=why,
                       message=f"expected {subject} {check.expected()}, but nothing was observed ({missing})")
    passed = compare(check.op, observed, check.value, check.tolerance)
    shown = round(observed, 6) if isinstance(observed, float) else observed
    note = f" ({meaning})" if meaning and not passed else ""
    message = f"{'ok' if passed else 'expected'}: {subject} {check.expected()}, observed {_fmt(shown)}{note}"
    return Verdict(check=check.text, passed=passed, observed=shown, expected=check.expected(), message=message, why=why)
