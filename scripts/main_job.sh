#!/usr/bin/env bash
# The main job on the built-in corpus: generate voices → search → retrain → evaluate (dvc repro),
# promote the model into models/, then classify a few held-out clips with `vgd predict`.
# Run inside the project's venv (`make run` does that for you). VGD_SEARCH_SPACE=smoke runs a
# seconds-long search instead of the default space (how CI runs the main job).
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -n "${VGD_SEARCH_SPACE:-}" ]; then
  # A smaller main job (CI uses smoke): DVC's own params override, recorded as an experiment;
  # params.yaml keeps the override afterwards (git checkout params.yaml undoes it).
  # ++: set the key whether or not params.yaml names it (it leaves the default unnamed).
  dvc exp run --set-param "++search.space=${VGD_SEARCH_SPACE}"
else
  dvc repro
fi
dvc metrics show

# A better (or first) model becomes the default for `vgd predict`; a worse one is refused.
vgd promote || echo "(not promoted: the current model in models/ stays the default)"
vgd models

examples=$(python - <<'PY'
from vgd.manifest import read_manifest
from vgd.params import load_params
manifest = load_params("params.yaml").data.manifest
test = [c for c in read_manifest(manifest) if c.split == "test"]
print(" ".join(next(c.path for c in test if c.label == label) for label in ("female", "male")))
PY
)
vgd predict $examples

cat <<'TXT'

results:     results/pipeline/eval/metrics.json (confusion.png, roc.png beside it)
search:      results/search/pipeline/ (trials.csv, best_config.yaml, search.png)
model:       models/ (`vgd models` lists the versions; `vgd predict FILE` uses the current one)
tensorboard: tensorboard --logdir results/search/pipeline/ray
plots:       dvc plots show  (writes dvc_plots/index.html)
TXT
