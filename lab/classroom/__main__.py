"""`python -m lab.classroom grade-one EXERCISE ANSWER OUTDIR STUDENT`: grade one answer, print one JSON line.

Used by `tcplab check --labs` to grade each student in a process of its own (a crash or a hang stays that
student's). Prints {"status": "graded", "grades": [...]} or {"status": "refused"|"error", "message": ...}.
"""
import json
import sys


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 5 or argv[0] != "grade-one":
        print(__doc__, file=sys.stderr)
        return 2
    _, name, answer, out_dir, student = argv
    from ..errors import LabError, ScenarioError
    from ..network import Terminated
    from .exercise import load_exercise
    from .grading import grade
    try:
        exercise = load_exercise(name, student=student)
        _, grades = grade(exercise, answer, out_dir=out_dir)
        line = {"status": "graded", "variant": exercise.variant, "grades": [g.model_dump(mode="json") for g in grades]}
    except ScenarioError as e:
        line = {"status": "refused", "message": str(e)}
    except LabError as e:
        line = {"status": "error", "message": str(e)}
    except (KeyboardInterrupt, Terminated) as e:
        line = {"status": "error", "message": f"stopped ({type(e).__name__} {e})"}
    print(json.dumps(line, default=str), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
