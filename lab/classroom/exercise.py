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
from pathlib import Path
from typing import Annotated, List, Optional

from pydantic import Field, StringConstraints, ValidationError, model_validator

from .. import source
from ..errors import LabError, ScenarioError
from ..model import Strict, _error
from ..names import LongText, Title
from ..scenario import schema_error

EXERCISE_DIR = Path(__file__).resolve().parents[2] / "exercises"
Pattern = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_.*\-\[\]]{1,120}$")]


class Criterion(Strict):
    name: Title
    hint: LongText
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


class Exercise:
    """An exercise folder: its spec, its start scenario and its handout."""

    def __init__(self, name, spec, folder):
        self.name, self.spec, self.folder = name, spec, folder

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


def load_exercise(name):
    if not isinstance(name, str) or name not in exercise_names():
        raise LabError(f"unknown exercise {name!r} (exercises: {', '.join(exercise_names())})")
    folder = EXERCISE_DIR / name
    shown = f"exercises/{name}/exercise.yaml"
    return Exercise(name, parse_exercise(source.read_file(folder / "exercise.yaml", shown), shown), folder)


def parse_exercise(text, shown):
    """exercise.yaml's text -> ExerciseSpec, refusals at the file's line (like scenarios)."""
    data, lines = source.load_yaml(text, shown)
    if not isinstance(data, dict):
        raise ScenarioError(shown, 1, None, "an exercise is a mapping with title, knobs and criteria")
    try:
        return ExerciseSpec.model_validate(data)
    except ValidationError as e:
        raise schema_error(e, data, lines, shown) from None

