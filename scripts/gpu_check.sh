#!/usr/bin/env bash
# The one prepared check for a CUDA machine (about 3-5 minutes): the `gpu` tests, training speed
# (input-only, model-only bound, end to end, a default-config trial on the built-in corpus),
# prediction speed, and one summary table. How CUDA claims in this project get measured.
#
# Needs python3 with torch, torchaudio, numpy, scikit-learn, matplotlib and pyyaml; soundfile and
# pytest come from wheels carried in .gpu/wheels when absent. Never imports Ray, Optuna or DVC.
#
#   bash scripts/gpu_check.sh --prepare   # here, with the package registry: fetch the wheels
#   bash scripts/gpu_check.sh             # there (carry .gpu); numbers go to $OUT or .gpu/out
#   VGD_GPU_CHECK_DEVICE=cpu bash scripts/gpu_check.sh   # rehearse the script on a CPU machine
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
DEVICE=${VGD_GPU_CHECK_DEVICE:-cuda}
OUT=${OUT:-.gpu/out}
WHEELS=(soundfile cffi pycparser pytest pluggy iniconfig packaging pygments)

if [ "${1:-}" = "--prepare" ]; then
  # cp312 manylinux wheels: the GPU machine runs Python 3.12 and has no network.
  $PY -m pip download --quiet --only-binary=:all: --python-version 3.12 \
    --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 --no-deps \
    -d .gpu/wheels "${WHEELS[@]}"
  ls .gpu/wheels
  exit 0
fi

mkdir -p "$OUT"
SITE=$PWD/.gpu/site
if ! $PY -c "import soundfile, pytest" 2>/dev/null; then
  $PY -m pip install --quiet --no-deps --target "$SITE" .gpu/wheels/*.whl
fi
export PYTHONPATH="$PWD:$SITE${PYTHONPATH:+:$PYTHONPATH}"
$PY - <<'PY'
import importlib.util, sys
import torch
print(f"python {sys.version.split()[0]}, torch {torch.__version__}, "
      f"CUDA {torch.cuda.is_available()} {torch.cuda.get_device_name(0) if torch.cuda.is_available() else ''}")
absent = [m for m in ("ray", "optuna", "dvc") if importlib.util.find_spec(m)]
print("installed here but never imported:", absent or "none")
PY

start=$(date +%s)
echo "== gpu tests"
timeout 150 $PY -m pytest -q -p no:cacheprovider -m gpu tests/test_gpu.py 2>&1 \
  | tee "$OUT/tests.txt" | tail -15 || true

echo "== training speed (built-in corpus, 200 speakers x 10 utterances)"
timeout 180 $PY scripts/bench_train.py --device "$DEVICE" --speakers 200 --utterances 10 \
  --end-to-end --epochs 3 --json "$OUT/train.json" 2>&1 | tail -20 || true

echo "== one default-config trial (40 epochs) on the built-in corpus"
$PY -m vgd.cli -q data synth --out "$OUT/synth" >/dev/null
trial_start=$(date +%s.%N)
timeout 120 $PY -m vgd.cli train --manifest "$OUT/synth/manifest.csv" --device "$DEVICE" \
  --cache-dir "$OUT/cache" --out "$OUT/trial" --restart 2>&1 | tail -3 || true
trial_end=$(date +%s.%N)
$PY -c "import json; print(json.dumps({'trial_seconds': $trial_end - $trial_start}))" \
  > "$OUT/trial.json"

echo "== the model-only bound at larger batches (is the default batch of 32 launch-bound?)"
for bs in 128 512; do
  timeout 60 $PY scripts/bench_train.py --device "$DEVICE" --manifest "$OUT/synth/manifest.csv" \
    --batch-size $bs --seconds 2 --json "$OUT/train_bs$bs.json" 2>&1 | tail -3 || true
done

echo "== the model-only bound at batch 32 with the step compiled (CUDA graphs)"
timeout 150 $PY scripts/bench_train.py --device "$DEVICE" --manifest "$OUT/synth/manifest.csv" \
  --compile --seconds 2 --json "$OUT/train_compiled.json" 2>&1 | tail -4 || true

echo "== prediction speed"
timeout 150 $PY scripts/bench_predict.py --device "$DEVICE" --model "$OUT/trial/model.pt" \
  --threads 8 --minutes 60 --out "$OUT/predict.json" 2>&1 | tail -11 || true

$PY - "$OUT" <<'PY'
import json, sys
from pathlib import Path

out = Path(sys.argv[1])
def load(name):
    path = out / name
    return json.loads(path.read_text()) if path.exists() else {}

rows = []
tests = (out / "tests.txt").read_text().strip().splitlines() if (out / "tests.txt").exists() else []
rows.append(("gpu tests", tests[-1] if tests else "not run"))
train = load("train.json")
for key, value in train.items():
    if isinstance(value, dict) and "clips_per_s" in value:
        rows.append((f"train: {key}", f"{value['clips_per_s']:,.0f} clips/s"))
for bs in (128, 512):
    bound = load(f"train_bs{bs}.json").get("model_only", {})
    if "clips_per_s" in bound:
        rows.append((f"train: model_only at batch {bs}", f"{bound['clips_per_s']:,.0f} clips/s"))
compiled = load("train_compiled.json").get("model_compiled", {})
if compiled:
    rows.append(("train: model_only at batch 32, compiled",
                 f"{compiled['clips_per_s']:,.0f} clips/s" if "clips_per_s" in compiled
                 else compiled.get("error", "?")))
trial = load("trial.json")
if trial:
    rows.append(("default trial, 40 epochs (with start-up)", f"{trial['trial_seconds']:.1f} s"))
history = out / "trial" / "history.json"
if history.exists():
    h = json.loads(history.read_text())
    rows.append(("default trial: training loop", f"{h['seconds']:.1f} s"))
    rows.append(("default trial: best val balanced accuracy",
                 f"{max(e.get('val_balanced_accuracy', 0) for e in h['epochs']):.4f}"))
predict = load("predict.json")
for r in predict.get("clips", []):
    rows.append((f"model only, batch {r['batch']}", f"{r['clips_per_s']:,.0f} clips/s"))
for r in predict.get("files", []):
    vad = "" if r.get("vad", True) else ", no VAD"
    rows.append((f"vgd predict, {r.get('files', 'tones')}, workers {r['workers'] or 'auto'}{vad}", f"{r['files_per_s']:,.0f} files/s"))
if "long" in predict:
    rows.append(("60-minute file", f"{predict['long']['predict_seconds']:.2f} s"))
width = max(len(k) for k, _ in rows)
print("\n== summary (" + str(out) + ")")
for key, value in rows:
    print(f"{key:<{width}}  {value}")
PY
echo "gpu_check took $(( $(date +%s) - start )) s"
