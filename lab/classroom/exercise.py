"""Exercises as data: exercises/NAME/{exercise.yaml, start.yaml, handout.md}, checked by one schema.

exercise.yaml:
    title: one line
    knobs:                       # what a student may change; everything else must stay as in start.yaml
      - guests.app.args.backlog
      - hosts.server.sysctl.*
    criteria:                    # each: a name, a hint, and one kind
      - {name: ..., unchanged: true, hint: ...}              only the knobs changed (says what else did)
      - {name: ..., check: "server: TcpExt.ListenOverflows == 0", hint: ...}     what the kernel did
      - {name: ..., predicts: eagain.accepted, within: 0.25, hint: ...,
         hint_missed: ..., hint_wide: ...}                   the student's own band around a measured value
Knob patterns match the flattened names of lab/classroom/grading.py (`guests.NAME.args.FLAG`,
`hosts.HOST.sysctl.KEY`, `guests.NAME.start`, `links.A-B.bw`, ...), with * as a wildcard.
"""
import hashlib
import re
from pathlib import Path
from typing import Annotated, Dict, List, Optional, Union

from pydantic import Field, StringConstraints, ValidationError, model_validator

from .. import source
from ..errors import LabError, ScenarioError
from ..model import Strict, _error
from ..names import LongText, Title
from ..scenario import schema_error

EXERCISE_DIR = Path(__file__).resolve().parents[2] / "exercises"
Pattern = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.*\-\[\]]{1,120}$")]


Condition = Annotated[str, StringConstraints(pattern=r"^(changed|unchanged|absent|(==|!=|<=|>=|<|>) ?[A-Za-z0-9_.:-]{1,40})$")]


class AimedHint(Strict):
    """A hint aimed at one misconception: shown when the answer's settings match every condition, e.g.
    {when: {guests.app.args.io: changed, guests.app.args.backlog: "< 19"}, hint: ...}."""
    when: Dict[Pattern, Condition] = Field(min_length=1, max_length=6)
    hint: LongText


class Criterion(Strict):
    name: Title
    hint: LongText
    hints: List[AimedHint] = Field(default_factory=list, max_length=12)   # the first that matches wins
    check: Optional[Annotated[str, StringConstraints(max_length=500)]] = None
    unchanged: Optional[bool] = None
    predicts: Optional[Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_-]*\.[a-z][a-z0-9_]*$")]] = None
    within: float = Field(0.25, gt=0, le=1)
    hint_missed: Optional[LongText] = None      # predicts: the band missed the measured value
    hint_wide: Optional[LongText] = None        # predicts: the band held it but was too wide

    @model_validator(mode="after")
    def _one_kind(self):
        kinds = [k for k in ("check", "unchanged", "predicts") if getattr(self, k) not in (None, False)]
        if len(kinds) != 1:
            raise _error("criterion", "each criterion has exactly one of check, unchanged: true, predicts")
        return self

    @property
    def kind(self):
        return next(k for k in ("check", "unchanged", "predicts") if getattr(self, k) not in (None, False))


class ExerciseSpec(Strict):
    title: Title
    knobs: List[Pattern] = Field(default_factory=list, max_length=40)
    criteria: List[Criterion] = Field(min_length=1, max_length=20)


ParamName = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9_]{0,30}$")]
Value = Union[Annotated[int, Field(ge=-(10 ** 12), le=10 ** 12)], Annotated[float, Field(ge=-1e12, le=1e12)],
              Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.,:-]{1,60}$")]]


class VariantsSpec(Strict):
    """exercises/NAME/variants.yaml: sets of numbers, one drawn per student (each set is checked solvable)."""
    variants: List[Dict[ParamName, Value]] = Field(min_length=1, max_length=20)
    shown: Optional[List[ParamName]] = None      # the values a student is told (default: all); others are the teacher's

    @model_validator(mode="after")
    def _same_names(self):
        names = set(self.variants[0])
        if any(set(v) != names for v in self.variants):
            raise _error("variants", "every variant names the same values ({names})", names=", ".join(sorted(names)))
        return self


PLACEHOLDER = re.compile(r"\{\{\s*([a-z][a-z0-9_]*)\s*\}\}")


def render(text, values, shown):
    """Put a variant's VALUES into TEXT's {{name}} placeholders (numbers and short words only)."""
    def one(m):
        if m.group(1) not in values:
            raise ScenarioError(shown, text[:m.start()].count("\n") + 1, None,
                                f"{{{{{m.group(1)}}}}} is not a variant value ({', '.join(sorted(values)) or 'none'})")
        return str(values[m.group(1)])
    return PLACEHOLDER.sub(one, text)


def variant_index(exercise, student, count):
    """The variant of STUDENT (a student id): the same every time, spread evenly over the class."""
    digest = hashlib.sha256(f"tcplab:{exercise}:{student}".encode()).hexdigest()
    return int(digest, 16) % count


class Exercise:
    """An exercise folder: its spec, its start scenario and its handout, rendered for one variant."""

    def __init__(self, name, spec, folder, values=None, variant=None):
        self.name, self.spec, self.folder = name, spec, folder
        self.values = values or {}          # this student's numbers ({} when the exercise has no variants)
        self.variant = variant              # their index in variants.yaml

    def text(self, path):
        """A file of the exercise (or a teacher's file for it) with this variant's numbers filled in."""
        return render(source.read_file(path, str(path)), self.values, str(path))

    @property
    def start_text(self):
        return self.text(self.start)

    @property
    def handout_text(self):
        return self.text(self.handout)

    @property
    def title(self):
        return self.spec.title

    @property
    def criteria(self):
        return self.spec.criteria

    @property
    def knobs(self):
        return self.spec.knobs

    @property
    def start(self):
        return self.folder / "start.yaml"

    @property
    def handout(self):
        return self.folder / "handout.md"


def exercise_names():
    return [p.name for p in sorted(EXERCISE_DIR.iterdir()) if (p / "exercise.yaml").is_file()]


def list_exercises():
    return [load_exercise(n) for n in exercise_names()]


def variants_spec(name):
    """An exercise's VariantsSpec (variants.yaml), or None when every student gets the same numbers."""
    path = EXERCISE_DIR / name / "variants.yaml"
    if not path.is_file():
        return None
    shown = f"exercises/{name}/variants.yaml"
    data, lines = source.load_yaml(source.read_file(path, shown), shown)
    try:
        return VariantsSpec.model_validate(data)
    except ValidationError as e:
        raise schema_error(e, data or {}, lines, shown) from None


def variants_of(name):
    """[{name: value}] of an exercise's variants, or [] when every student gets the same numbers."""
    spec = variants_spec(name)
    return spec.variants if spec else []


def shown_values(name, values):
    """The part of a variant's VALUES a student is told."""
    spec = variants_spec(name)
    return {k: v for k, v in values.items() if spec is None or spec.shown is None or k in spec.shown}


def load_exercise(name, student=None, variant=None):
    """Exercise NAME, with the numbers of STUDENT's variant (or variant number VARIANT)."""
    if not isinstance(name, str) or name not in exercise_names():
        raise LabError(f"unknown exercise {name!r} (exercises: {', '.join(exercise_names())})")
    folder = EXERCISE_DIR / name
    variants = variants_of(name)
    index = None
    if variants:
        index = variant if variant is not None else variant_index(name, student or "", len(variants))
        if not 0 <= index < len(variants):
            raise LabError(f"{name} has variants 0 to {len(variants) - 1}, not {index}")
    values = variants[index] if variants else {}
    shown = f"exercises/{name}/exercise.yaml"
    text = render(source.read_file(folder / "exercise.yaml", shown), values, shown)
    return Exercise(name, parse_exercise(text, shown), folder, values, index)


def parse_exercise(text, shown):
    """exercise.yaml's text -> ExerciseSpec, refusals at the file's line (like scenarios)."""
    data, lines = source.load_yaml(text, shown)
    if not isinstance(data, dict):
        raise ScenarioError(shown, 1, None, "an exercise is a mapping with title, knobs and criteria")
    try:
        return ExerciseSpec.model_validate(data)
    except ValidationError as e:
        raise schema_error(e, data, lines, shown) from None

