"""Speaker-disjoint, seeded splits and folds, stratified by corpus × gender.

An utterance-level random split lets the model meet the same voice in training and test and
inflates accuracy; every split here assigns whole speakers. With several corpora in one manifest
(its ``corpus`` column), each corpus's women and men are spread over the splits and folds on their
own, so no fold is all one corpus's men. With one corpus the strata are the labels, and the
splits and folds are the ones earlier single-corpus results used.
"""

from __future__ import annotations

import random
from collections import Counter, defaultdict
from collections.abc import Sequence

from vgd.config import SplitConfig
from vgd.manifest import Clip, ManifestError

SPLITS = ("train", "val", "test")

SpeakerKey = tuple[str, str]


def speaker_key(clip: Clip) -> SpeakerKey:
    """Speakers are distinct per corpus: LibriSpeech 19 and VCTK 19 are not one person."""
    return (clip.corpus, clip.speaker)


def speakers_by_label(clips: Sequence[Clip]) -> dict[str, list[SpeakerKey]]:
    """Each speaker under the label most of their clips carry, sorted for determinism."""
    votes: dict[SpeakerKey, Counter] = defaultdict(Counter)
    for c in clips:
        votes[speaker_key(c)][c.label] += 1
    groups: dict[str, list[SpeakerKey]] = defaultdict(list)
    for spk, counter in votes.items():
        label = sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))[0][0]
        groups[label].append(spk)
    return {label: sorted(spks) for label, spks in sorted(groups.items())}


def speakers_by_stratum(clips: Sequence[Clip]) -> dict[str, list[SpeakerKey]]:
    """Speakers grouped by corpus × label, keyed by the stratum's seed name (sorted).

    With one corpus the key is the label alone, as it was before corpora were strata, so the
    seeded shuffles (and so every single-corpus split and fold) stay the same.
    """
    by_label = speakers_by_label(clips)
    corpora = sorted({corpus for spks in by_label.values() for corpus, _ in spks})
    if len(corpora) <= 1:
        return by_label
    strata: dict[str, list[SpeakerKey]] = {}
    for corpus in corpora:
        for label, speakers in by_label.items():
            mine = [s for s in speakers if s[0] == corpus]
            if mine:
                strata[f"{corpus}:{label}"] = mine
    return strata


def corpora_of(clips: Sequence[Clip]) -> list[str]:
    """The corpora the clips come from, sorted."""
    return sorted({c.corpus for c in clips})


def _split_counts(n: int, config: SplitConfig) -> tuple[int, int]:
    n_test = max(1, round(n * config.test_fraction)) if config.test_fraction > 0 else 0
    n_val = max(1, round(n * config.val_fraction)) if config.val_fraction > 0 else 0
    return n_val, n_test


def assign_splits(clips: Sequence[Clip], config: SplitConfig = SplitConfig()) -> list[Clip]:
    """Give every clip a split so that speakers never cross splits and each split has each label
    (of each corpus)."""
    groups = speakers_by_stratum(clips)
    split_of: dict[SpeakerKey, str] = {}
    for label, speakers in groups.items():
        n_val, n_test = _split_counts(len(speakers), config)
        if len(speakers) - n_val - n_test < 1:
            raise ManifestError(
                f"{label!r} has {len(speakers)} speaker(s): too few for a speaker-disjoint "
                f"split with val {config.val_fraction:g} and test {config.test_fraction:g}"
            )
        order = list(speakers)
        random.Random(f"{config.seed}:{label}").shuffle(order)
        for i, spk in enumerate(order):
            split_of[spk] = "test" if i < n_test else "val" if i < n_test + n_val else "train"
    return [c.with_split(split_of[speaker_key(c)]) for c in clips]


def ensure_splits(clips: Sequence[Clip], config: SplitConfig = SplitConfig()) -> list[Clip]:
    """Keep the splits a manifest already has (after checking them) or assign them."""
    assigned = [c for c in clips if c.split]
    if not assigned:
        return assign_splits(clips, config)
    if len(assigned) != len(clips):
        raise ManifestError(f"{len(clips) - len(assigned)} clip(s) have no split; set all or none")
    unknown = sorted({c.split for c in clips} - set(SPLITS))
    if unknown:
        raise ManifestError(f"unknown split name(s) {unknown}; expected {list(SPLITS)}")
    check_speaker_disjoint(clips)
    return list(clips)


def check_speaker_disjoint(clips: Sequence[Clip]) -> None:
    """Raise ManifestError naming a speaker that appears in two splits."""
    seen: dict[SpeakerKey, str] = {}
    for c in clips:
        first = seen.setdefault(speaker_key(c), c.split)
        if first != c.split:
            raise ManifestError(
                f"speaker {c.speaker!r} ({c.corpus or 'no corpus'}) is in both {first!r} and "
                f"{c.split!r}: splits must be speaker-disjoint"
            )


def select(clips: Sequence[Clip], splits: Sequence[str]) -> list[Clip]:
    """The clips of the named splits, in manifest order."""
    wanted = set(splits)
    return [c for c in clips if c.split in wanted]


def hold_out_speakers(clips: Sequence[Clip], fraction: float, seed: int = 0) -> set[SpeakerKey]:
    """A seeded ``fraction`` of each label's (each corpus × label's) speakers, at least one of
    each when fraction > 0."""
    held: set[SpeakerKey] = set()
    for label, speakers in speakers_by_stratum(clips).items():
        n = min(len(speakers), max(1, round(len(speakers) * fraction))) if fraction > 0 else 0
        order = list(speakers)
        random.Random(f"{seed}:hold-out:{label}").shuffle(order)
        held.update(order[:n])
    return held


def speaker_folds(clips: Sequence[Clip], k: int, seed: int = 0) -> list[int]:
    """A fold index in [0, k) per clip: speaker-disjoint, each fold holding every label of every
    corpus (stratified by corpus × label)."""
    if k < 2:
        raise ValueError("k must be >= 2")
    fold_of: dict[SpeakerKey, int] = {}
    strata = speakers_by_stratum(clips)
    # With several strata each one starts where the last left off, so the remainders do not all
    # land in fold 0; with one corpus every label starts at fold 0, as before.
    offset, rotate = 0, len(corpora_of(clips)) > 1
    for label, speakers in strata.items():
        if len(speakers) < k:
            raise ManifestError(f"{label!r} has {len(speakers)} speakers: fewer than {k} folds")
        order = list(speakers)
        random.Random(f"{seed}:{label}").shuffle(order)
        fold_of.update({spk: (offset + i) % k for i, spk in enumerate(order)})
        offset += len(order) if rotate else 0
    return [fold_of[speaker_key(c)] for c in clips]
