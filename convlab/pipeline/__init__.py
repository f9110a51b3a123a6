"""The characteristic-generator pipeline (THEORY.md section 4) and its run configuration."""

from convlab.pipeline.characteristic import run_characteristic
from convlab.record import RunRecord
from convlab.config import CharacteristicRun
from convlab.pipeline.teacher import MemoryCache, teacher_key

__all__ = ["RunRecord", "run_characteristic", "CharacteristicRun", "MemoryCache", "teacher_key"]
