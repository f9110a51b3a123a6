"""The characteristic-generator pipeline (THEORY.md section 4), stage by stage: the teacher (velocity matching,
oracle or kernel), Euler characteristics, the one-step student, and the measured error budget. The run kind that
drives it, and its config, is convlab.runs.characteristic."""

from convlab.pipeline.measure import measure
from convlab.pipeline.student import characteristics, fit_student
from convlab.pipeline.teacher import Teacher, build_teacher

__all__ = ["Teacher", "build_teacher", "characteristics", "fit_student", "measure"]
