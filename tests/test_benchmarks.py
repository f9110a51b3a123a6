"""The benchmarks are code that must keep working (they are run by hand, not in CI): the study that bench_sweep
writes is a valid study, and every benchmark script parses its command line."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from convlab.study.plan import load_plan

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def test_the_sweep_benchmark_writes_a_valid_study(tmp_path):
    sys.path.insert(0, str(BENCHMARKS))
    try:
        import bench_sweep
    finally:
        sys.path.remove(str(BENCHMARKS))
    path = tmp_path / "bench_sweep.yaml"
    path.write_text(bench_sweep.STUDY.format(steps=600, ns=[1000, 2000, 3000]))
    assert len(load_plan(path).runs) == 3


@pytest.mark.parametrize("script", sorted(BENCHMARKS.glob("bench_*.py")), ids=lambda p: p.stem)
def test_benchmark_scripts_parse_their_options(script):
    proc = subprocess.run([sys.executable, script, "--help"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and "usage" in proc.stdout, proc.stderr[-2000:]


def test_the_batched_training_benchmark_runs(tmp_path):
    """A few steps end to end: the benchmark calls the pipeline and the training loop, whose signatures move."""
    proc = subprocess.run(
        [sys.executable, BENCHMARKS / "bench_batched.py", "--members", "2", "--steps", "2", "--sizes", "1,2"]
        + ["--out", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    record = json.loads((tmp_path / "batched_cpu.json").read_text())
    assert 0 < record["fraction_of_floor"] and record["mflop_per_member_step"] > 0
