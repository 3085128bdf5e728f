"""Grading one answer: run the student's scenario for real and judge each criterion by what the kernel did.

A grade is a verdict plus the criterion's name and a hint. "Unchanged" means unchanged in every key that is
not a declared knob: the two scenarios are flattened into named settings (`guests.client1.start`,
`guests.app.args.backlog`, `hosts.server.sysctl.net.core.somaxconn`, ...; a guest's arguments compared as
its own program parses them, so `{backlog: 4}` and `[--backlog, 4]` are the same) and every difference outside
the knobs is named.
"""
import fnmatch
import hashlib
import re
from typing import Optional

from .. import expect, library, source, validation
from ..errors import LabError, ScenarioError
from ..guests import parsed_args
from ..results import Verdict
from ..runner import run_scenario
from ..scenario import substitute


class Grade(Verdict):
    """A verdict on one criterion, with the hint shown when it fails."""
    criterion: str = ""
    hint: str = ""
    kind: Optional[str] = None


def flatten(sc):
    """A scenario's settings as {name: value}, for comparing an answer with its start file."""
    flat = {"topology": str(sc.topology), "switch": sc.switch, "controller": sc.controller, "duration": sc.duration}
    for host, settings in sc.sysctls().items():
        for key, value in settings.items():
            flat[f"hosts.{host}.sysctl.{key}"] = value
    for link in sc.links:
        name = "-".join(link.between)
        for key in ("bw", "burst", "delay", "loss", "only_from"):
            flat[f"links.{name}.{'from' if key == 'only_from' else key}"] = getattr(link, key)
    # {h1} in arguments: a distinct stand-in address per host named, so a changed target shows as a change
    named = sorted({m for g in sc.guests for a in g.argv for m in re.findall(r"\{([a-z0-9][a-z0-9_-]*)\}", a)})
    fake = {h: _stand_in(h) for h in named}
    for g in sc.guests:
        for key in ("host", "program", "start", "after", "ready", "stop", "wait"):
            flat[f"guests.{g.name}.{key}"] = getattr(g, key)
        argv = substitute(g.argv, fake, 0.0)
        for flag, value in parsed_args(g.program, argv).items():
            flat[f"guests.{g.name}.args.{flag}"] = value
    for i, step in enumerate(sc.actions):
        flat[f"actions[{i}]"] = f"at {step.at:g} s: {step.action.describe()}"
    if sc.sample:
        flat["sample.hosts"] = ",".join(sc.sample.hosts)
        flat["sample.interval"] = sc.sample.interval
        flat["sample.port"] = sc.sample.port
    return flat


def _stand_in(host):
    """A stand-in address for {HOST}, the same in every scenario: a changed target shows as a change."""
    n = int(hashlib.sha256(host.encode()).hexdigest(), 16) % (1 << 24)
    return f"10.{n >> 16}.{(n >> 8) & 255}.{n & 255}"


def changes(start, answer, knobs):
    """[(name, start value, answer value)] for every setting that differs outside the KNOBS patterns."""
    a, b = flatten(start), flatten(answer)
    out = []
    for key in sorted(set(a) | set(b)):
        if a.get(key) != b.get(key) and not any(fnmatch.fnmatchcase(key, k) for k in knobs):
            out.append((key, a.get(key, "(absent)"), b.get(key, "(absent)")))
    return out


def _holds(condition, before, after):
    if condition == "changed":
        return before != after
    if condition == "unchanged":
        return before == after
    if condition == "absent":
        return after is None
    op, value = re.match(r"(==|!=|<=|>=|<|>) ?(.*)", condition).groups()
    if op in ("==", "!="):
        return (str(after) == value) == (op == "==")
    try:
        a, v = float(after), float(value)
    except (TypeError, ValueError):
        return False
    return {"<": a < v, "<=": a <= v, ">": a > v, ">=": a >= v}[op]


def predictions(sc):
    """The bands a scenario's own checks predict, as settings for aimed hints: prediction.EVENT.FIELD.low/high."""
    out = {}
    for check in sc.checks:
        if check.bounds is not None:
            out[f"prediction.{check.path}.low"], out[f"prediction.{check.path}.high"] = check.bounds
    return out


def aimed_hint(criterion, start, answer, own=None):
    """The hint of CRITERION aimed at what this answer did (its first matching `hints` entry), or its hint.
    Conditions may name the answer's settings (flatten()) and the bands it predicts (predictions())."""
    a = flatten(start)
    b = {**flatten(answer), **predictions(_with_checks(answer, own))}
    for aimed in criterion.hints:
        if all(any(_holds(cond, a.get(k), b.get(k)) for k in _matching(pattern, a, b))
               for pattern, cond in aimed.when.items()):
            return aimed.hint
    return criterion.hint


def _with_checks(sc, own):
    if own is None:
        return sc
    copy = sc.model_copy()
    copy.expect = own
    return copy


def _matching(pattern, a, b):
    keys = [k for k in set(a) | set(b) if fnmatch.fnmatchcase(k, pattern)]
    return keys or [pattern]


def _trusted_none():
    return ()      # a student's answer never loads a topology file: only shipped topologies


def prepare(exercise, scenario_file=None):
    """(start, answer) Scenarios, the answer carrying the exercise's checks besides its own expect."""
    shown = f"exercises/{exercise.name}/start.yaml"
    start = library.load_text(exercise.start_text, name=exercise.name, path=shown)
    if scenario_file:
        path = str(scenario_file)
        answer = library.load_text(source.read_file(path), name=exercise.name, path=path, trusted=_trusted_none())
    else:
        path = shown
        answer = library.load_text(exercise.start_text, name=exercise.name, path=shown)
    facts = library.facts_for(answer)
    world = validation.World(hosts=facts.hosts, guests=[g.name for g in answer.guests] +
                             (["controller"] if answer.controller else []),
                             sampled=answer.sample.hosts if answer.sample else [], counters=facts.counters,
                             events=validation._guest_events(answer, facts.events),
                             kernel_kinds=facts.kernel_kinds, drop_reasons=facts.drop_reasons)
    checks = []
    for c in exercise.criteria:
        if c.check:
            try:
                checks.append(expect.resolve(expect.parse_check(c.check, c.hint), world))
            except expect.CheckSyntaxError as e:
                raise ScenarioError(str(path), 0, c.name, f"the exercise checks {c.check!r}, which this scenario "
                                    f"cannot answer (did you rename or remove a guest or host?): {e}") from None
    own = list(answer.checks)
    answer.expect = checks + own
    return start, answer, own


def grade(exercise, scenario_file=None, out_dir=None, progress=None):
    """Run the student's scenario (default: the starting one) and grade every criterion -> (Result, [Grade])."""
    start, answer, own = prepare(exercise, scenario_file)
    result = run_scenario(answer, out_dir, progress)
    if result.error or result.skipped:
        raise LabError(f"{answer.path}: the run did not complete: {result.error or result.skipped}")
    grades = []
    for c in exercise.criteria:
        if c.check:
            v = result.verdict(c.check.strip())
            grades.append(Grade(**v.model_dump(), criterion=c.name, hint=aimed_hint(c, start, answer, own), kind="check"))
        elif c.unchanged:
            diff = changes(start, answer, exercise.knobs)
            shown = "; ".join(f"{k}: {a} -> {b}" for k, a, b in diff[:6]) + (f"; ... {len(diff) - 6} more" if len(diff) > 6 else "")
            grades.append(Grade(check="only the knobs changed", passed=not diff, observed=shown or "as given",
                                expected="only " + (", ".join(exercise.knobs) or "nothing") + " changed",
                                message=f"changed outside the knobs: {shown}" if diff else "ok: only the knobs changed",
                                criterion=c.name, hint=aimed_hint(c, start, answer, own), kind="unchanged"))
        else:
            grades.append(_grade_prediction(c, own, result))
            aimed = aimed_hint(c, start, answer, own)
            if not grades[-1].passed and aimed != c.hint:
                grades[-1].hint = aimed
    return result, grades


def _grade_prediction(c, own, result):
    mine = [k for k in own if k.path == c.predicts and k.bounds is not None]
    if not mine:
        return Grade(check=f"prediction of {c.predicts}", passed=False, expected=f"a check on {c.predicts} with a band",
                     message=f"no prediction: add a check like '...: first {c.predicts} in [LOW, HIGH]' to expect",
                     criterion=c.name, hint=c.hint, kind="predicts")
    k = mine[0]
    low, high = k.bounds
    v = result.verdict(k.text)
    observed = v.observed if v else None
    narrow = observed is not None and (high - low) <= 2 * c.within * max(abs(observed), 1)
    inside = bool(v and v.passed)
    passed = inside and narrow
    if passed:
        why, hint = "ok", c.hint
    elif not inside:
        why, hint = "your band missed the measured value", c.hint_missed or c.hint
    else:
        why, hint = f"your band is wider than ±{c.within:.0%} of the measured value", c.hint_wide or c.hint
    return Grade(check=k.text, passed=passed, observed=observed, expected=f"[{low}, {high}], at most ±{c.within:.0%}",
                 message=f"{why}: predicted [{expect._fmt(low)}, {expect._fmt(high)}], measured {observed}",
                 criterion=c.name, hint=hint, kind="predicts")
