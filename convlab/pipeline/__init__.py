"""The characteristic-generator pipeline (docs/concepts/theory.md §4), stage by stage: the teacher (velocity matching,
oracle or kernel), Euler characteristics, the one-step student, and the measured error budget. A run is described by
a PipelineSpec (convlab.pipeline.spec); the run kind that drives it from a study's config is
convlab.runs.characteristic."""

from convlab.pipeline.measure import measure
from convlab.pipeline.spec import CharacteristicsSpec, EvalSpec, PipelineSpec, StudentSpec, TeacherSpec
from convlab.pipeline.student import characteristics, fit_student, fit_students, student_stack_key
from convlab.pipeline.teacher import Teacher, build_teacher, build_teachers, teacher_stack_key

__all__ = [
    "CharacteristicsSpec",
    "EvalSpec",
    "PipelineSpec",
    "StudentSpec",
    "TeacherSpec",
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
