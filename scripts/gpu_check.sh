#!/usr/bin/env bash
# The GPU checks in one short script: the tests marked `gpu` (CPU and CUDA through the same code path), then
# small studies run on CUDA and on the same machine's CPU side by side (time per run, how far the metrics
# move), training throughput and batched training (32 ring8 teachers, batched vs one at a time) on both
# devices, the kernel teacher at large n, the whole sample_size study on CUDA, batched and with --batch off (its
# wall time both ways), and manifold_dim's neural block where the CPU cannot go. Every step has its own time limit.
#   bash scripts/gpu_check.sh [OUTDIR]          (PYTHON=... to pick the interpreter; needs a CUDA device)
#   DEVICES=cpu bash scripts/gpu_check.sh /tmp/x   (a dry check of the script itself on a machine without one)
set -u
out=${1:-results/gpu_check}
py=${PYTHON:-python3}
devices=${DEVICES:-cuda cpu}
mkdir -p "$out"
step() { echo; echo "== $* ($(date +%T))"; }

step device
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
$py -c "import torch; print('torch', torch.__version__, '| CUDA', torch.cuda.is_available(), '| CPU threads', torch.get_num_threads())" || exit 1

step "tests marked gpu"
timeout 300 $py -m pytest -q -p no:cacheprovider -o addopts="-ra --strict-markers" -m gpu --hypothesis-profile=ci \
    tests/solvers/test_integrate.py tests/targets/test_fields.py tests/pipeline/test_characteristic.py tests/theory/test_on_device.py

# label | study | overrides (small versions of shipped studies) | jobs; each label has its own results root.
# quickstart_w2: the sampled W2 at K = 512 over 8 seeds, to compare its spread on the two devices.
studies=(
  "quickstart|studies/quickstart.yaml|--set seeds=2|4"
  "quickstart_w2|studies/quickstart.yaml|--set seeds=8 --set grid.K=[512] --set grid.solver=[euler]|4"
  'jko_flow|studies/jko_flow.yaml|--set grid.target=[{"name":"gaussian","D":4,"mean":1.0,"s":0.5}] --set grid.gamma=[1.0] --set seeds=1|1'
)
for entry in "${studies[@]}"; do
  IFS='|' read -r label study overrides jobs <<<"$entry"
  name=$(basename "$study" .yaml)
  for device in $devices; do
    step "$label on $device"
    # word splitting of $overrides is wanted, but not globbing of its brackets
    set -f; timeout 240 $py -m convlab sweep "$study" $overrides --jobs "$jobs" --device "$device" --out "$out/$label/$device" | tail -n 25; set +f
  done
  step "$label: cpu vs cuda"
  # a sweep with --set overrides writes to <name>+<overrides> (a study of its own)
  cpu_dir=$(ls -d "$out/$label/cpu/$name"* 2>/dev/null | head -n 1)
  cuda_dir=$(ls -d "$out/$label/cuda/$name"* 2>/dev/null | head -n 1)
  [ -n "$cuda_dir" ] && [ -n "$cpu_dir" ] && $py benchmarks/compare_devices.py "$cpu_dir" "$cuda_dir"
  [ -n "$cuda_dir" ] && cp "$cuda_dir/report.md" "$out/${label}_cuda_report.md" 2>/dev/null
done

for device in $devices; do
  step "training throughput on $device"
  timeout 240 $py benchmarks/bench_training.py --device "$device" --steps 200 --repeats 2
  step "batched training on $device"
  timeout 300 $py benchmarks/bench_batched.py --device "$device" --steps 200 --out "$out/bench"
done

step "kernel teacher at large n on ${devices%% *}"
timeout 300 $py benchmarks/bench_kernel.py --device "${devices%% *}" --sizes 10000,30000,100000

for batch in auto off; do
  step "sample_size on ${devices%% *}, --batch $batch"
  start=$(date +%s)
  timeout 420 $py -m convlab sweep studies/sample_size.yaml --device "${devices%% *}" --batch "$batch" --jobs 1 \
    --out "$out/sample_size_$batch" | tail -n 30
  echo "sample_size --batch $batch: $(( $(date +%s) - start )) s wall"
done

step "manifold_dim, the GPU version of its neural block (n to 1e5, D up to 256, d up to 4) on ${devices%% *}"
# The shipped study's neural block (teacher and one-step generator, held-out checkpoints), widened where the CPU
# cannot go: d in {1, 2, 4}, D in {16, 128, 256}, n = 1e3 .. 1e5, 2 seeds, batched (stacks of up to 64 networks).
# Resumable: what the time limit leaves undone is done by running the same command again.
$py - "$out/manifold_dim_gpu.yaml" <<'PY'
import os, sys, yaml
study = yaml.safe_load(open("studies/manifold_dim.yaml"))
study["blocks"] = [b for b in study["blocks"] if b["name"] == "neural"]
(block,) = study["blocks"]
block["zip"] = [{"target.d": [1, 1, 1, 2, 2, 2, 4, 4, 4], "target.D": [16, 128, 256] * 3}]
block["grid"] = {"teacher.n": [1000, 3000, 10000, 30000, 100000]}
study.update(name="manifold_dim_gpu", seeds=2, resources={"jobs": 1, "batch": "auto"})
study["rates"] = [r for r in study["rates"] if r.get("where") == {"teacher.kind": "trained"}]
study["figure"] = os.path.abspath("figures/manifold_dim.py")
yaml.safe_dump(study, open(sys.argv[1], "w"), sort_keys=False)
PY
start=$(date +%s)
timeout 540 $py -m convlab sweep "$out/manifold_dim_gpu.yaml" --device "${devices%% *}" --out "$out" | tail -n 80
echo "manifold_dim GPU version: $(( $(date +%s) - start )) s wall"
step done
