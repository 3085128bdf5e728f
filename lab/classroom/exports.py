"""Grades in the forms CI engines read: JUnit XML (GitLab, Jenkins) and GitHub Classroom's autograding
payload (base64 JSON read by classroom-resources/autograding-grading-reporter: one test per criterion)."""
import base64
import json
from xml.sax.saxutils import escape, quoteattr


def junit(exercise, grades, wall_s=0.0):
    """One <testcase> per criterion; a failed one carries its message and its hint."""
    failures = sum(not g.passed for g in grades)
    cases = []
    for g in grades:
        body = "" if g.passed else \
            f"<failure message={quoteattr(g.message)}>{escape('hint: ' + (g.hint or ''))}</failure>"
        cases.append(f"    <testcase classname={quoteattr('tcplab.' + exercise.name)} name={quoteattr(g.criterion)}>"
                     f"{body}</testcase>")
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<testsuites name="tcplab">\n'
            f'  <testsuite name={quoteattr(exercise.name)} tests="{len(grades)}" failures="{failures}" errors="0" '
            f'skipped="0" time="{wall_s:.1f}">\n' + "\n".join(cases) + "\n  </testsuite>\n</testsuites>\n")


def autograding(grades, max_score=100):
    """The payload GitHub Classroom's grading reporter decodes (its env RUNNER_RESULTS): base64 of
    {version, status, max_score, tests: [{name, status, message, score}]}."""
    each = max_score / len(grades) if grades else 0
    payload = {"version": 1, "status": "pass" if all(g.passed for g in grades) else "fail", "max_score": max_score,
               "tests": [{"name": g.criterion, "status": "pass" if g.passed else "fail",
                          "message": g.message if g.passed else f"{g.message} | hint: {g.hint}",
                          "score": round(each, 2) if g.passed else 0, "line_no": 0, "execution_time": "0s"}
                         for g in grades]}
    return base64.b64encode(json.dumps(payload).encode()).decode()


def error_payload(message, max_score=100):
    """The payload for an answer that could not be graded (a refusal, an error): status error, one test."""
    payload = {"version": 1, "status": "error", "max_score": max_score,
               "tests": [{"name": "submission", "status": "error", "message": message, "score": 0}]}
    return base64.b64encode(json.dumps(payload).encode()).decode()
