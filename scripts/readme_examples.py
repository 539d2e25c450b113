"""The inputs of the README's `vgd predict` and `vgd segment` examples, from ../shared/data.

    python scripts/readme_examples.py --out /tmp/examples
    cd /tmp/examples && vgd -q predict clip.flac recordings/ && vgd -q segment meeting.wav

Writes clip.flac (a LibriSpeech reader), recordings/ (two more readers and two speechocean762
speakers, one of each gender) and meeting.wav (a woman reading, then a man, about 9 s each,
with quiet room noise before, between and after). Nothing is copied into the repository.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import numpy as np

from vgd.audio import load_audio, save_audio
from vgd.corpora import build
from vgd.manifest import read_manifest

RATE = 16000


def first_of(clips, label: str, skip: int = 0):
    """The ``skip``-th clip of ``label``, in the manifest's order (a fixed choice)."""
    return [c for c in clips if c.label == label][skip]


def noise(seconds: float, rng: np.random.Generator, dbfs: float = -50.0) -> np.ndarray:
    """Quiet, slightly coloured room noise."""
    white = rng.standard_normal(int(seconds * RATE)).astype(np.float32)
    brown = np.cumsum(white) / np.sqrt(np.arange(1, white.size + 1))
    wave = 0.5 * white + brown
    return (wave / np.sqrt(np.mean(wave**2)) * 10 ** (dbfs / 20)).astype(np.float32)


def meeting(female: str, male: str) -> np.ndarray:
    """A woman's 9 s, then a man's, with room noise around and between the turns."""
    rng = np.random.default_rng(0)
    turns = [load_audio(p)[: 9 * RATE] for p in (female, male)]
    parts = [noise(1.8, rng), turns[0], noise(1.0, rng), turns[1], noise(1.5, rng)]
    wave = np.concatenate(parts)
    return wave + noise(wave.size / RATE, rng)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", type=Path, default=Path("../shared/data"))
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args(argv)
    librispeech = build("librispeech", args.data / "LibriSpeech", progress=False).clips
    so762_csv = args.data / "speechocean762" / "manifest.csv"
    so762 = read_manifest(so762_csv)
    recordings = args.out / "recordings"
    recordings.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(first_of(librispeech, "female").path, args.out / "clip.flac")
    picks = {
        "reader-male.flac": first_of(librispeech, "male"),
        "reader-female.flac": first_of(librispeech, "female", 1),
        "so762-female.flac": first_of(so762, "female"),
        "so762-male.flac": first_of(so762, "male"),
    }
    for name, clip in picks.items():
        shutil.copyfile(clip.path, recordings / name)
    talk = meeting(first_of(librispeech, "female", 2).path, first_of(librispeech, "male", 1).path)
    save_audio(args.out / "meeting.wav", talk, RATE)
    print(f"wrote {args.out}: clip.flac, recordings/ ({len(picks)} files), meeting.wav")
    return 0


if __name__ == "__main__":
    sys.exit(main())
