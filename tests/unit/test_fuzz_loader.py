"""Fuzzing the loader: thousands of mutations of every shipped scenario and exercise file (keys deleted, types
swapped, NaN and infinities, huge and negative numbers, unicode, long strings, duplicate keys, aliases, cut
files, flipped bytes). Each must load or raise the lab's own error, each within a second."""
import copy
import math
import random
import time
from pathlib import Path

import yaml

from lab import library
from lab.classroom import load_exercise, variants_of
from lab.classroom.exercise import EXERCISE_DIR, parse_exercise
from lab.errors import LabError

SEED = 20261125
WEIRD = [None, True, False, 0, -1, -(10 ** 30), 10 ** 30, 1.5, float("nan"), float("inf"), -float("inf"), "",
         "x" * 5000, "\u202e\u0000evil", "../../../etc/passwd", "; touch /tmp/tcplab-fuzz #", [], {}, [1, [2, [3]]],
         {"a": {"b": {"c": 1}}}, "h1", "s1", "{h1}:9000", "1e9", "0x10", "ﾟ∀ﾟ", 65536, 2 ** 63, 1e-300]


def _paths(data, prefix=()):
    yield prefix
    if isinstance(data, dict):
        for k, v in data.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(data, list):
        for i, v in enumerate(data):
            yield from _paths(v, prefix + (i,))


def _set(data, path, value):
    node = data
    for p in path[:-1]:
        node = node[p]
    if value is _DELETE:
        del node[path[-1]]
    else:
        node[path[-1]] = value


_DELETE = object()


def mutate(data, rng):
    data = copy.deepcopy(data)
    for _ in range(rng.randint(1, 3)):
        paths = [p for p in _paths(data) if p]
        if not paths:
            break
        path = rng.choice(paths)
        choice = rng.random()
        try:
            if choice < 0.25:
                _set(data, path, _DELETE)
            elif choice < 0.85:
                _set(data, path, copy.deepcopy(rng.choice(WEIRD)))
            else:
                node = data
                for p in path[:-1]:
                    node = node[p]
                if isinstance(node, dict):
                    node[rng.choice(["hopts", "inNamespace", "extra", "at", "kind", "file", "name"])] = rng.choice(WEIRD)
        except (KeyError, IndexError, TypeError):
            pass
    return data


def text_mutations(text, rng):
    lines = text.splitlines()
    i = rng.randrange(len(lines))
    kinds = [
        lambda: "\n".join(lines[: rng.randrange(1, len(lines) + 1)]),                     # cut short
        lambda: "\n".join(lines[:i] + [lines[i]] + lines[i:]),                              # a duplicate line/key
        lambda: "a: &a [x, x]\nb: [*a, *a]\n" + text,                                       # aliases
        lambda: text.replace(":", ": &x", 1),                                               # an anchor
        lambda: "".join(chr(rng.randrange(1, 0x2FFF)) if rng.random() < 0.01 else c for c in text),  # noise
        lambda: text + "\n" + "  " * rng.randrange(1, 40) + "deep: [" * 30,               # deep, broken
        lambda: "\t" + text,
    ]
    return rng.choice(kinds)()


def _check(load, text, failures, slow):
    started = time.monotonic()
    try:
        load(text)
    except LabError:
        pass
    except Exception as e:  # noqa: BLE001 (any other exception is the finding)
        failures.append(f"{type(e).__name__}: {e}\n--- input ---\n{text[:600]}")
    took = time.monotonic() - started
    if took > 1.0:
        slow.append((took, text[:300]))


def _dump(data):
    try:
        return yaml.safe_dump(data, allow_unicode=True, sort_keys=False)
    except (yaml.YAMLError, ValueError, RecursionError):
        return None


def test_thousands_of_mutations_load_or_are_refused_quickly():
    rng = random.Random(SEED)
    sources = [(p, lambda t, p=p: library.load_text(t, name="fuzz", path=str(p))) for p in library.scenario_paths()]
    # exercise files are templates: fuzz them as a student gets them, with variant 0's numbers filled in
    exercises = [load_exercise(p.name, variant=0 if variants_of(p.name) else None)
                 for p in sorted(EXERCISE_DIR.iterdir()) if (p / "exercise.yaml").is_file()]
    sources += [(ex.folder / "exercise.yaml", lambda t, ex=ex: parse_exercise(t, str(ex.folder / "exercise.yaml")))
                for ex in exercises]
    sources += [(ex.folder / "start.yaml", lambda t, ex=ex: library.load_text(t, name="fuzz", path=str(ex.start)))
                for ex in exercises]
    texts = {ex.folder / name: ex.text(ex.folder / name) for ex in exercises for name in ("exercise.yaml", "start.yaml")}
    failures, slow, count = [], [], 0
    started = time.monotonic()
    for path, load in sources:
        text = texts.get(path) or Path(path).read_text()
        data = yaml.safe_load(text)
        for _ in range(120):
            dumped = _dump(mutate(data, rng))
            if dumped is not None:
                _check(load, dumped, failures, slow)
                count += 1
            _check(load, text_mutations(text, rng), failures, slow)
            count += 1
    took = time.monotonic() - started
    print(f"{count} mutations in {took:.1f} s")
    assert count >= 3000
    assert not failures, f"{len(failures)} crashed the loader; first:\n{failures[0]}"
    assert not slow, f"{len(slow)} took over 1 s; slowest: {max(slow)}"


def test_numbers_that_are_not_finite_never_pass():
    base = yaml.safe_load((library.SCENARIO_DIR / "windows" / "zero-window.yaml").read_text())
    for key in ("duration",):
        for bad in (math.nan, math.inf, -math.inf):
            data = dict(base, **{key: bad})
            try:
                library.load_text(yaml.safe_dump(data), name="fuzz")
            except LabError as e:
                assert "finite" in str(e)
            else:
                raise AssertionError(f"{key}={bad} was accepted")
