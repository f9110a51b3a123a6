"""The characteristic-generator pipeline (docs/concepts/theory.md §4), stage by stage: the teacher (velocity matching,
oracle or kernel), Euler characteristics, the one-step student, and the measured error budget. The run kind that
drives it, and its config, is convlab.runs.characteristic."""

from convlab.pipeline.measure import measure
from convlab.pipeline.student import characteristics, fit_student, fit_students, student_stack_key
from convlab.pipeline.teacher import Teacher, build_teacher, build_teachers, teacher_stack_key

__all__ = [
    "Teacher",
    "build_teacher",
    "build_teachers",
    "characteristics",
    "fit_student",
    "fit_students",
    "measure",
    "student_stack_key",
    "teacher_stack_key",
]
