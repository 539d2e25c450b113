"""Two cross_corpus.py reports run by run: per-corpus scores, out-of-fold logits, curves equal?"""

import json
import sys
from pathlib import Path

FIELDS = ("per_corpus", "oof", "curve")


def runs(path: str) -> dict:
    report = json.loads(Path(path).read_text())
    return {(r["recipe"], r["kind"], r["train"], r["seed"], r["fold"]): r for r in report["runs"]}


a, b = runs(sys.argv[1]), runs(sys.argv[2])
common = sorted(set(a) & set(b))
same = {k for k in common if all(a[k].get(f) == b[k].get(f) for f in FIELDS)}
fields = ", ".join(FIELDS)
print(f"runs {len(a)} and {len(b)}, common {len(common)}; identical in {fields}: {len(same)}")
for k in common:
    if k not in same:
        print("differs:", k, [f for f in FIELDS if a[k].get(f) != b[k].get(f)])
seconds = sum(r.get("train_seconds", 0) for r in b.values() if r["recipe"] == "default")
print(f"train seconds {seconds:.0f}")
