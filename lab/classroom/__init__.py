"""Exercises that check themselves: a handout, a starting scenario, criteria as data, and a grader.

- exercise.py: exercises/NAME/ (exercise.yaml's schema, start.yaml, handout.md)
- grading.py: one answer, run for real and graded criterion by criterion (a Grade: a verdict plus a hint)
- labs.py: a whole class, each answer in its own process and time limit, rows written as they finish
The grader runs the student's scenario for real and grades by counters and events, like Kathará's lab
checker but on live kernel counters rather than declared settings.
"""
from .exercise import Exercise, exercise_names, list_exercises, load_exercise, variants_of
from .grading import Grade, changes, flatten, grade
from .labs import check_labs

__all__ = ["Exercise", "Grade", "changes", "check_labs", "exercise_names", "flatten", "grade", "list_exercises",
           "load_exercise", "variants_of"]
