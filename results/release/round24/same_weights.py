"""Two checkpoints field by field: which top-level fields differ, and every weight tensor equal?"""

import sys

import torch

a, b = (torch.load(p, weights_only=True) for p in sys.argv[1:3])
weights_a, weights_b = a["state_dict"], b["state_dict"]
same = [k for k in weights_a if k in weights_b and torch.equal(weights_a[k], weights_b[k])]
print(f"weight tensors: {len(weights_a)} in the first, {len(weights_b)} in the second, ", end="")
print(f"{len(same)} equal")
for field in a:
    if field != "state_dict":
        print(f"{field}: {'equal' if a[field] == b.get(field) else 'differs'}")
for k in a["metrics"]:
    if a["metrics"][k] != b["metrics"].get(k):
        print(f"  metrics.{k} differs")
