"""Write the sha256 of every Python module of the given packages, as JSON.

    python scripts/code_digest.py vgd search --out results/release/code.json

A DVC stage cannot depend on ``vgd/`` when its outputs live in ``vgd/pretrained/`` (each run
would change its own input). vgd/pretrained/dvc.yaml runs this on every ``dvc repro`` instead
and its stages depend on the digest, which changes only when a module does.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from pathlib import Path

from vgd.io import atomic_write_text


def digest(packages: list[Path]) -> dict[str, str]:
    """{module path: sha256} of every .py file under the packages, sorted by path."""
    files = sorted(f for p in packages for f in p.rglob("*.py"))
    return {f.as_posix(): hashlib.sha256(f.read_bytes()).hexdigest() for f in files}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("packages", type=Path, nargs="+")
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    missing = [str(x) for x in args.packages if not x.is_dir()]
    if missing:
        print(f"code_digest: error: {', '.join(missing)}: no such folder", file=sys.stderr)
        return 2
    atomic_write_text(args.out, json.dumps(digest(args.packages), indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
