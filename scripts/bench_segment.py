"""Segmentation on real speech: conversations of speakers the model never trained on.

    python scripts/bench_segment.py [--fold K | --all-folds] [--folds 5] [--seed 0]
        [--manifest CORPUS.csv ...] [--turn-noise MIN MAX]
        [--model CHECKPOINT | --reuse-models] [--set key=value ...] [--conversations 4]
        [--min-confidence C] [--bridge S] [--hour [--repeats 3]]
        [--root ../shared/data/LibriSpeech] [--work runs/bench_segment]
        [--out results/bench/segment]

For fold K of the speaker-disjoint folds (the same as scripts/bench_accuracy.py: test = fold K,
validation = fold K+1, training = the rest) a model is trained from scratch (the default
recipe, ``--set`` changes it) unless ``--model`` names one, which must not have trained on fold
K's speakers, or ``--reuse-models`` finds the one an earlier run trained for fold K under
--work. Fold K's speakers, women and men alternating, become ``--conversations``
recordings with pauses of faint noise (0.3-2 s) and non-speech inserts (synthetic music,
coloured noise, tones; 2-8 s) between turns; the reference says where each utterance's speech
is (frame energy: pauses of 0.3 s or more inside an utterance are non-speech). ``vgd segment``
runs on them, and the result is scored on 10 ms frames: F1 per class (female, male,
non-speech), speech miss and false-alarm rates, gender accuracy on detected speech, the error of
the women's share of speaking time per recording, and the real-time factor. The F1 scores are
given twice: on every frame (the headline), and without the frames within 0.25 s of a
reference boundary (NIST RT's collar), since where a word's tail ends depends on a threshold.

``--manifest`` (repeatable) adds corpora to LibriSpeech's speakers: the folds are then drawn over
the pool, speaker-disjoint and stratified by corpus × gender; a fold model trained here samples
speakers evenly (``data.balance=speaker``, genders even within each corpus); each conversation
interleaves the corpora's speakers; and every turn's clip gets 0.5-3 s (``--turn-noise``) of
its room's noise before and after it (noise at the clip's own noise floor, marked non-speech),
as real recordings have. Every score is also given per corpus (the frames of its turns), with
the share of speech labelled ``unknown``, and the false alarms by where they lie (in a clip, its
room noise, a pause or an insert). Each fold also says where gender accuracy on detected speech
went: to ``unknown`` (and how long its segments are), and to wrong answers, split into turns
answered mostly wrong (the voices the model places on the other side, named) and the rest.
``--min-confidence`` passes ``vgd segment`` another threshold of ``unknown`` (its segments go to
``segments_c<C>.csv`` beside the default's), to sweep it with ``--reuse-models``; ``--bridge``
likewise passes the seconds of pause ``vgd segment`` hears across (``segments_b<S>.csv``).

``--hour`` instead times ``vgd segment`` on one 60-minute recording of fold K's speakers in a
fresh process (wall time and peak RSS) and scores it too. Prints measured numbers; writes JSON to
--out. LibriSpeech (c) 2014 Vassil Panayotov, CC BY 4.0; speechocean762 (Zhang et al., Interspeech
2021), free for commercial and non-commercial use.
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import json
import logging
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf

from vgd import signals
from vgd.audio import load_audio, save_audio
from vgd.checkpoint import CheckpointError
from vgd.cli import main as vgd_main
from vgd.config import ConfigError, RunConfig, load_config, parse_override
from vgd.corpora import build
from vgd.io import atomic_write_json
from vgd.manifest import Clip, ManifestError, read_manifests
from vgd.segment import SegmentConfig
from vgd.splits import corpora_of, speaker_folds, speaker_key
from vgd.train import save_outputs, train

PROJECT = Path(__file__).resolve().parents[1]
DEFAULT_ROOT = PROJECT.parent / "shared/data/LibriSpeech"
RATE = 16000
FRAME_S = 0.01
CLASSES = ("female", "male", "nonspeech")
# Secondary scores leave out frames this close to a reference boundary, as NIST RT's speaker
# diarization scoring does: where a word's tail ends is a matter of threshold, not of accuracy.
COLLAR_S = 0.25
# The targets: labels printed beside measured numbers, never results.
TARGETS = {"macro_f1": 0.95, "nonspeech_f1": 0.90, "share_error_points": 3.0}
# Issue #19 part 5, for conversations of several corpora with room noise in every turn.
CORPORA_TARGETS = {"macro_f1": 0.95, "gender_accuracy": 0.98, "unknown_of_speech": 0.03}
# Room noise before and after each turn's clip (seconds), when several corpora are benchmarked.
TURN_NOISE_S = (0.5, 3.0)
ROOM = "room noise"
HOUR_TARGETS = {"seconds": 20.0, "peak_rss_mib": 1024.0}


def _bench_accuracy():
    """scripts/bench_accuracy.py as a module, for its fold assignment (one definition of folds)."""
    path = Path(__file__).resolve().parent / "bench_accuracy.py"
    spec = importlib.util.spec_from_file_location("bench_accuracy", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# ----------------------------------------------------------------------------- reference


def frame_db(wave: np.ndarray) -> np.ndarray:
    """Energy (dBFS) of each whole 10 ms frame."""
    hop = round(FRAME_S * RATE)
    frames = wave[: wave.size // hop * hop].reshape(-1, hop)
    return 10 * np.log10(np.mean(np.square(frames, dtype=np.float64), axis=1) + 1e-12)


def reference_speech(
    wave: np.ndarray, floor_margin_db: float = 15.0, min_pause_s: float = 0.3
) -> list[tuple[float, float]]:
    """Speech (start, end) seconds of a read utterance, from 10 ms frame energy.

    A frame is speech when its energy is ``floor_margin_db`` above the utterance's noise floor
    (its 5th-percentile frame), or halfway from the floor to its loud frames (95th percentile)
    when that is less: some LibriSpeech readers have a floor only ~12 dB under their speech.
    Pauses shorter than ``min_pause_s`` are bridged (the NIST RT rule for speaker segments), and
    islands shorter than 50 ms dropped (clicks).
    """
    db = frame_db(wave)
    floor, loud = np.percentile(db, [5, 95])
    active = db > floor + min(floor_margin_db, (loud - floor) / 2)
    edges = np.diff(np.concatenate([[0], active.astype(np.int8), [0]]))
    spans = list(zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)))
    merged: list[list[int]] = []
    for a, b in spans:
        if merged and (a - merged[-1][1]) * FRAME_S < min_pause_s:
            merged[-1][1] = b
        else:
            merged.append([a, b])
    return [(a * FRAME_S, b * FRAME_S) for a, b in merged if (b - a) * FRAME_S >= 0.05]


# ----------------------------------------------------------------------------- conversations


@dataclass(frozen=True)
class Layout:
    """How turns, pauses and non-speech inserts are drawn (seconds, dBFS)."""

    pause_s: tuple[float, float] = (0.3, 2.0)
    pause_db: tuple[float, float] = (-65.0, -50.0)
    insert_probability: float = 0.35  # after each turn
    insert_s: tuple[float, float] = (2.0, 8.0)
    insert_db: tuple[float, float] = (-32.0, -20.0)


def nonspeech_insert(rng: np.random.Generator, layout: Layout) -> tuple[str, np.ndarray]:
    """Music, coloured noise or a tone of random length and level."""
    seconds = float(rng.uniform(*layout.insert_s))
    level = float(rng.uniform(*layout.insert_db))
    seed = int(rng.integers(1 << 30))
    kind = str(rng.choice(["music", "noise", "tone"]))
    if kind == "music":
        wave = signals.music_like(seconds, seed=seed)
    elif kind == "noise":
        colour = str(rng.choice(list(signals.NOISE_EXPONENTS)))
        wave, kind = signals.coloured_noise(seconds, colour, seed), f"{colour} noise"
    else:
        freq = float(rng.uniform(150, 3000))
        wave, kind = signals.tone(seconds, freq), f"tone {freq:.0f} Hz"
    rms = float(np.sqrt(np.mean(np.square(wave)))) or 1.0
    return kind, (wave * 10 ** (level / 20) / rms).astype(np.float32)


def pause(rng: np.random.Generator, layout: Layout) -> np.ndarray:
    seconds = float(rng.uniform(*layout.pause_s))
    level = float(rng.uniform(*layout.pause_db))
    return signals.coloured_noise(seconds, "pink", int(rng.integers(1 << 30)), level)


def room_noise(wave: np.ndarray, seconds: float, rng: np.random.Generator) -> np.ndarray:
    """``seconds`` of the noise of the room ``wave`` was recorded in: pink or brown noise at the
    clip's own noise floor (its 5th-percentile 10 ms frame) ±3 dB, kept within -75..-35 dBFS.

    A real recording starts and ends with its room before anyone speaks; a level of its own
    floor makes the lead-in sound like the clip's own pauses, and holds no speech.
    """
    n = round(seconds * RATE)
    colour, seed = str(rng.choice(["pink", "brown"])), int(rng.integers(1 << 30))
    floor = float(np.percentile(frame_db(wave), 5)) if wave.size >= 160 else -60.0
    level = float(np.clip(floor + rng.uniform(-3.0, 3.0), -75.0, -35.0))
    if n == 0:
        return np.zeros(0, dtype=np.float32)
    return signals.coloured_noise(n / RATE, colour, seed, level)


def conversation(
    turns: Sequence[tuple[np.ndarray, str]],
    rng: np.random.Generator,
    layout: Layout = Layout(),
    turn_noise: tuple[float, float] = (0.0, 0.0),
    noise_rng: np.random.Generator | None = None,
) -> tuple[np.ndarray, list[tuple[float, float, str]], list[tuple[float, float, str]]]:
    """Turns (wave, gender) joined by pauses and inserts: the wave, the reference segments and
    every part as (start, end, what): a gender, ``pause``, ``room noise`` or the kind of insert.

    With ``turn_noise`` (MIN, MAX) > 0 each turn's clip is preceded and followed by
    :func:`room_noise` of a length drawn from [MIN, MAX] s (from ``noise_rng``, so the pauses and
    inserts stay those of a conversation without it); the reference calls it non-speech.
    """
    noise_rng = noise_rng if noise_rng is not None else np.random.default_rng(0)
    waves, reference, parts = [], [], []

    def add(wave: np.ndarray, what: str) -> float:
        start = parts[-1][1] if parts else 0.0
        waves.append(wave)
        parts.append((start, start + wave.size / RATE, what))
        return start

    def add_room(wave: np.ndarray) -> None:
        if turn_noise[1] > 0:
            add(room_noise(wave, float(noise_rng.uniform(*turn_noise)), noise_rng), ROOM)

    add(pause(rng, layout), "pause")
    for wave, label in turns:
        add_room(wave)
        start = add(wave, label)
        add_room(wave)
        reference += [(start + a, start + b, label) for a, b in reference_speech(wave)]
        add(pause(rng, layout), "pause")
        if rng.random() < layout.insert_probability:
            kind, insert = nonspeech_insert(rng, layout)
            add(insert, kind)
            add(pause(rng, layout), "pause")
    return np.concatenate(waves), reference, parts


def interleave(groups: Sequence[Sequence[Clip]]) -> list[Clip]:
    """The groups merged so that each is spread evenly over the result (by relative position)."""
    keyed = [((j + 0.5) / len(g), i, c) for i, g in enumerate(groups) for j, c in enumerate(g)]
    return [c for _, _, c in sorted(keyed, key=lambda t: t[:2])]


def conversation_turns(clips: Sequence[Clip], n: int, seed: int) -> list[list[Clip]]:
    """The clips dealt into ``n`` conversations, women and men alternating in each.

    Each corpus's women and men are dealt on their own, and interleaved within a conversation,
    so that every conversation holds every corpus it can. With one corpus the deal is the one
    the LibriSpeech results were measured on.
    """
    rng = np.random.default_rng(seed)
    corpora = corpora_of(clips)
    groups = {
        (x, k): [c for c in clips if c.label == x and c.corpus == k]
        for x in ("female", "male")
        for k in corpora
    }
    for group in groups.values():
        rng.shuffle(group)
    out = []
    for i in range(n):
        f = interleave([groups["female", k][i::n] for k in corpora])
        m = interleave([groups["male", k][i::n] for k in corpora])
        first, second = (f, m) if i % 2 == 0 else (m, f)
        turns = [c for pair in zip(first, second) for c in pair]
        turns += first[len(second) :] + second[len(first) :]
        out.append(turns)
    return [t for t in out if t]


def turn_spans(
    parts: Sequence[tuple[float, float, str]], tags: Sequence[str]
) -> list[tuple[float, float, str]]:
    """(start, end, tag) of each turn: its clip with the room noise either side of it."""
    spans = []
    for j, (start, end, what) in enumerate(parts):
        if what in ("female", "male"):
            if j > 0 and parts[j - 1][2] == ROOM:
                start = parts[j - 1][0]
            if j + 1 < len(parts) and parts[j + 1][2] == ROOM:
                end = parts[j + 1][1]
            spans.append((start, end))
    return [(s, e, tag) for (s, e), tag in zip(spans, tags, strict=True)]


def write_conversations(
    clips: Sequence[Clip],
    n: int,
    seed: int,
    folder: Path,
    repeats: int = 1,
    turn_noise: tuple[float, float] = (0.0, 0.0),
) -> list[dict[str, Any]]:
    """Write ``n`` conversations (each turn list played ``repeats`` times) and their references."""
    rng, noise_rng = np.random.default_rng([seed, 1]), np.random.default_rng([seed, 2])
    cache: dict[str, np.ndarray] = {}
    out = []
    for i, turns in enumerate(conversation_turns(clips, n, seed)):
        for c in turns:
            if c.path not in cache:
                cache[c.path] = load_audio(c.path)
        played = [(cache[c.path], c.label) for _ in range(repeats) for c in turns]
        wave, reference, parts = conversation(
            played, rng, turn_noise=turn_noise, noise_rng=noise_rng
        )
        corpora = [c.corpus for _ in range(repeats) for c in turns]
        path = folder / f"conversation{i:02d}.wav"
        save_audio(path, wave, RATE)
        out.append(
            {
                "path": str(path),
                "seconds": wave.size / RATE,
                "turns": len(played),
                "speakers": sorted({c.speaker for c in turns}),
                "corpora": {k: corpora.count(k) for k in sorted(set(corpora))},
                "inserts": [p[2] for p in parts if p[2] not in ("pause", ROOM, "female", "male")],
                "room_noise_seconds": sum(e - s for s, e, x in parts if x == ROOM),
                "parts": parts,
                "reference": reference,
                "turn_spans": turn_spans(parts, corpora),
                "turn_speakers": ["/".join(speaker_key(c)) for _ in range(repeats) for c in turns],
            }
        )
    return out


# ----------------------------------------------------------------------------- scoring


def frames_of(segments: Sequence[tuple[float, float, str]], frames: int, names) -> np.ndarray:
    """A label index per 10 ms frame; frames no segment covers get ``names.index('nonspeech')``."""
    out = np.full(frames, names.index("nonspeech"), dtype=int)
    for start, end, label in segments:
        out[round(start / FRAME_S) : round(end / FRAME_S)] = names.index(label)
    return out


HYP = ("female", "male", "nonspeech", "unknown")


def frame_counts(ref: np.ndarray, hyp: np.ndarray, scored: np.ndarray | None = None) -> np.ndarray:
    """(3, 4) counts: reference class (CLASSES) × hypothesis label (HYP), ``scored`` frames only."""
    if scored is not None:
        ref, hyp = ref[scored], hyp[scored]
    counts = np.zeros((len(CLASSES), len(HYP)), dtype=np.int64)
    np.add.at(counts, (ref, hyp), 1)
    return counts


def outside_collar(ref: np.ndarray, collar_s: float) -> np.ndarray:
    """Frames farther than ``collar_s`` from every change of reference label (NIST's collar)."""
    keep = np.ones(ref.size, dtype=bool)
    reach = round(collar_s / FRAME_S)
    for edge in np.flatnonzero(np.diff(ref)) + 1:
        keep[max(edge - reach, 0) : edge + reach] = False
    return keep


def frame_scores(counts: np.ndarray) -> dict[str, float]:
    """F1 per class, macro F1, speech miss and false alarm, gender accuracy on detected speech,
    and three shares of ``unknown``.

    ``unknown_share``: of reference speech the segmenter detected, the share it called unknown;
    ``unknown_of_speech``: of all reference speech (missed speech counts in the total);
    ``unknown_of_detected``: of all speech the segmenter output (false alarms included).
    """
    out: dict[str, float] = {}
    for k, name in enumerate(CLASSES):
        tp, ref, hyp = counts[k, k], counts[k].sum(), counts[:, k].sum()
        p, r = tp / max(hyp, 1), tp / max(ref, 1)
        out[f"f1_{name}"] = float(2 * p * r / (p + r)) if p + r > 0 else 0.0
    out["macro_f1"] = float(np.mean([out[f"f1_{x}"] for x in CLASSES]))
    ns, speech_hyp = 2, [0, 1, 3]
    ref_speech = counts[:2].sum()
    out["speech_miss"] = float(counts[:2, ns].sum() / max(ref_speech, 1))
    out["false_alarm"] = float(counts[ns, speech_hyp].sum() / max(counts[ns].sum(), 1))
    detected = counts[:2][:, speech_hyp].sum()
    out["gender_accuracy"] = float((counts[0, 0] + counts[1, 1]) / max(detected, 1))
    out["unknown_share"] = float(counts[:2, 3].sum() / max(detected, 1))
    out["unknown_of_speech"] = float(counts[:2, 3].sum() / max(ref_speech, 1))
    out["unknown_of_detected"] = float(counts[:, 3].sum() / max(counts[:, speech_hyp].sum(), 1))
    out["speech_seconds"] = float(ref_speech * FRAME_S)
    return out


def turn_outcomes(
    parts: Sequence[tuple[float, float, str]],
    speakers: Sequence[str],
    ref: np.ndarray,
    hyp: np.ndarray,
) -> list[dict[str, Any]]:
    """Per turn's clip: its speaker and gender, and its detected reference-speech frames
    answered right, wrong (the other gender) and ``unknown``."""
    clips = [(s, e, x) for s, e, x in parts if x in ("female", "male")]
    speech, nonspeech = ref != CLASSES.index("nonspeech"), HYP.index("nonspeech")
    out = []
    for (start, end, label), speaker in zip(clips, speakers, strict=True):
        span = slice(round(start / FRAME_S), round(end / FRAME_S))
        h = hyp[span][speech[span] & (hyp[span] != nonspeech)]
        other = "male" if label == "female" else "female"
        out.append(
            {
                "speaker": speaker,
                "label": label,
                "detected": int(h.size),
                "right": int((h == HYP.index(label)).sum()),
                "wrong": int((h == HYP.index(other)).sum()),
                "unknown": int((h == HYP.index("unknown")).sum()),
            }
        )
    return out


def lost_accuracy(
    turns: Sequence[dict[str, Any]], unknown_s: Sequence[float] = ()
) -> dict[str, Any]:
    """Where gender accuracy on detected speech goes (shares of detected speech): ``unknown``
    (with the lengths of its segments, and the voices it fell on, most first), and wrong
    answers split into turns answered mostly wrong (a voice the model places on the other
    side) and the rest (a stretch of a turn, a boundary), with the voices of the former."""
    detected = max(sum(t["detected"] for t in turns), 1)
    lost = [t for t in turns if t["wrong"] > t["detected"] / 2]
    unknown_of, detected_of = Counter(), Counter()
    for t in turns:
        unknown_of[t["speaker"]] += t["unknown"]
        detected_of[t["speaker"]] += t["detected"]
    return {
        "unknown": sum(t["unknown"] for t in turns) / detected,
        "unknown_segments_s": [round(x, 2) for x in unknown_s],
        "unknown_voices": [
            {"speaker": v, "unknown_s": n * FRAME_S, "detected_s": detected_of[v] * FRAME_S}
            for v, n in unknown_of.most_common()
            if n > 0
        ],
        "wrong": sum(t["wrong"] for t in turns) / detected,
        "wrong_in_lost_turns": sum(t["wrong"] for t in lost) / detected,
        "lost_turns": [
            {**t, "seconds": t["detected"] * FRAME_S}
            for t in sorted(lost, key=lambda t: -t["wrong"])
        ],
    }


def women_share(segments: Sequence[tuple[float, float, str]]) -> float | None:
    female = sum(e - s for s, e, x in segments if x == "female")
    male = sum(e - s for s, e, x in segments if x == "male")
    return female / (female + male) if female + male > 0 else None


def read_segments(csv_path: Path) -> dict[str, list[tuple[float, float, str]]]:
    """``vgd segment --format csv`` output → segments per path; a failed file raises."""
    out: dict[str, list[tuple[float, float, str]]] = {}
    with open(csv_path, newline="") as f:
        for row in csv.DictReader(f):
            if row["error"]:
                raise RuntimeError(f"{row['path']}: vgd segment failed: {row['error']}")
            out.setdefault(row["path"], []).append(
                (float(row["start"]), float(row["end"]), row["label"])
            )
    return out


def score_files(
    files: Sequence[dict], hyps: dict[str, list], collar_s: float = COLLAR_S
) -> dict[str, Any]:
    """Frame scores over all files (and per file), the same outside a collar around every
    reference boundary, and the women's-share errors."""
    total = np.zeros((len(CLASSES), len(HYP)), dtype=np.int64)
    collared = np.zeros_like(total)
    by_corpus: dict[str, np.ndarray] = {}
    alarms: dict[str, np.ndarray] = {}
    per_file, turns, unknown_s = [], [], []
    for f in files:
        frames = round(f["seconds"] / FRAME_S)
        ref = frames_of(f["reference"], frames, CLASSES)
        hyp = frames_of(hyps[f["path"]], frames, HYP)
        counts = frame_counts(ref, hyp)
        total += counts
        if "turn_speakers" in f:
            turns += turn_outcomes(f["parts"], f["turn_speakers"], ref, hyp)
            unknown_s += [e - s for s, e, x in hyps[f["path"]] if x == "unknown"]
        for corpus, mask in turn_masks(f.get("turn_spans", []), frames).items():
            by_corpus.setdefault(corpus, np.zeros_like(total))
            by_corpus[corpus] += frame_counts(ref, hyp, mask)
        for kind, mask in part_masks(f.get("parts", []), frames).items():
            quiet = mask & (ref == CLASSES.index("nonspeech"))
            found = quiet & (hyp != HYP.index("nonspeech"))
            alarms[kind] = alarms.get(kind, np.zeros(2)) + [quiet.sum(), found.sum()]
        collared += frame_counts(ref, hyp, outside_collar(ref, collar_s))
        ref_share, hyp_share = women_share(f["reference"]), women_share(hyps[f["path"]])
        error = 100 * abs(hyp_share - ref_share) if hyp_share is not None else 100.0
        per_file.append(
            {
                "path": f["path"],
                "seconds": f["seconds"],
                "women_share_reference": ref_share,
                "women_share_segment": hyp_share,
                "share_error_points": error,
                **frame_scores(counts),
            }
        )
    errors = [p["share_error_points"] for p in per_file]
    scores = frame_scores(total)
    scores.update({f"collar_{k}": v for k, v in frame_scores(collared).items()})
    scores.update(share_error_mean=float(np.mean(errors)), share_error_max=float(np.max(errors)))
    per_corpus = {k: frame_scores(c) for k, c in sorted(by_corpus.items())}
    return {
        "scores": scores,
        "counts": total.tolist(),
        "per_corpus": per_corpus,
        "false_alarm_by_part": {
            k: {"nonspeech_seconds": q * FRAME_S, "false_alarm_seconds": a * FRAME_S}
            for k, (q, a) in sorted(alarms.items())
        },
        "collar_s": collar_s,
        "files": per_file,
        **({"lost": lost_accuracy(turns, unknown_s)} if turns else {}),
    }


def part_masks(parts: Sequence[tuple[float, float, str]], frames: int) -> dict[str, np.ndarray]:
    """The frames of each kind of part: ``clip`` (a turn's clip), ``room noise``, ``pause`` or
    ``insert`` (music, noise, tones), so that false alarms can be told apart by where they lie."""
    out: dict[str, np.ndarray] = {}
    for start, end, what in parts:
        kind = (
            "clip" if what in ("female", "male") else what if what in (ROOM, "pause") else "insert"
        )
        mask = out.setdefault(kind, np.zeros(frames, dtype=bool))
        mask[round(start / FRAME_S) : round(end / FRAME_S)] = True
    return out


def turn_masks(spans: Sequence[tuple[float, float, str]], frames: int) -> dict[str, np.ndarray]:
    """Per tag (corpus), the frames of its turns (clip and room noise; not pauses or inserts)."""
    out: dict[str, np.ndarray] = {}
    for start, end, tag in spans:
        mask = out.setdefault(tag, np.zeros(frames, dtype=bool))
        mask[round(start / FRAME_S) : round(end / FRAME_S)] = True
    return out


# ----------------------------------------------------------------------------- running


def speaker_names(clips: Sequence[Clip]) -> list[str]:
    return sorted({"/".join(speaker_key(c)) for c in clips})


class HeldOutError(ValueError):
    """A saved fold model cannot be shown to have never heard the fold's test speakers."""


def check_held_out(record: Path, test: Sequence[Clip], several_corpora: bool) -> None:
    """Raise HeldOutError unless the speakers a saved fold model trained on (``record``, written
    when it was trained) exclude every test speaker. Models of one corpus saved before the
    record existed are taken on trust: their folds are the ones drawn here."""
    if not record.is_file():
        if several_corpora:
            raise HeldOutError(
                f"{record}: missing, so the model beside it cannot be shown to be held out from "
                "this pool's fold (train it here, or give --model)"
            )
        return
    seen = set(json.loads(record.read_text())["trained"])
    leaked = sorted(seen & set(speaker_names(test)))
    if leaked:
        raise HeldOutError(
            f"{record}: the saved model trained on {len(leaked)} of this fold's test speakers "
            f"({', '.join(leaked[:3])}...): other folds or corpora; train it again here"
        )


def train_fold(args: argparse.Namespace, clips: list[Clip], folds: list[int], k: int) -> Path:
    """Train on every fold but K (K+1 validates), save under --work; the checkpoint's path.

    With several corpora the speakers weigh the same (``data.balance=speaker``, genders even
    within each corpus) unless ``--set data.balance=...`` says otherwise.
    """
    saved = Path(args.work) / f"fold{k}" / "model.pt"
    record = saved.with_name("speakers.json")
    several = len(corpora_of(clips)) > 1
    if args.reuse_models and saved.is_file():
        check_held_out(record, [c for c, f in zip(clips, folds) if f == k], several)
        print(f"fold {k}: reusing {saved} (trained by an earlier run without fold {k})")
        return saved
    overrides = dict(parse_override(x) for x in args.set or [])
    if several:
        overrides.setdefault("data.balance", "speaker")
        print(
            f"fold {k}: training on {len(corpora_of(clips))} corpora "
            f"({', '.join(corpora_of(clips))}) with data.balance={overrides['data.balance']}"
        )
    config = load_config(args.config, overrides)
    fold = _bench_accuracy().fold_clips(clips, folds, k, args.seed)
    run = RunConfig(str(args.root), threads=args.threads)
    result = train(config, run, clips=fold, progress=not args.quiet)
    path = save_outputs(result, Path(args.work) / f"fold{k}")["model"]
    trained = speaker_names([c for c in fold if c.split in ("train", "val")])
    atomic_write_json(
        record, {"fold": k, "folds": args.folds, "seed": args.seed, "trained": trained}
    )
    print(f"fold {k}: trained in {result.seconds:.0f} s (best epoch {result.best_epoch}): {path}")
    return path


# The bench's options passed on to ``vgd segment``: (argument, flag, file-name tag, field).
SEGMENT_OPTIONS = (
    ("min_confidence", "--min-confidence", "c", "min_confidence"),
    ("bridge", "--bridge", "b", "bridge_s"),
)


def _given(args: argparse.Namespace) -> list[tuple[str, str, str, float]]:
    """(flag, tag, field, value) of each option given on the command line, in a fixed order."""
    return [
        (flag, tag, field, getattr(args, name))
        for name, flag, tag, field in SEGMENT_OPTIONS
        if getattr(args, name) is not None
    ]


def segment_options(args: argparse.Namespace) -> list[str]:
    """``vgd segment``'s options the bench passes on (none: its defaults)."""
    return [x for flag, _, _, value in _given(args) for x in (flag, str(value))]


def segment_config(args: argparse.Namespace) -> SegmentConfig:
    """The settings ``vgd segment`` runs with: its defaults, changed by the bench's options."""
    return replace(SegmentConfig(), **{field: value for _, _, field, value in _given(args)})


def segments_csv(work: Path, args: argparse.Namespace) -> Path:
    """Where a fold's segments go: one file per setting, so a sweep keeps the default's."""
    tags = [f"{tag}{value:g}" for _, tag, _, value in _given(args)]
    return work / ("segments.csv" if not tags else f"segments_{'_'.join(tags)}.csv")


def run_segment(
    model: Path, files: Sequence[dict], out_csv: Path, options: Sequence[str] = ()
) -> float:
    """``vgd segment`` on the files (one call, batching across them); its wall seconds."""
    argv = ["-q", "segment", *[f["path"] for f in files], "--model", str(model), *options]
    start = time.perf_counter()
    status = vgd_main([*argv, "--format", "csv", "--out", str(out_csv)])
    seconds = time.perf_counter() - start
    if status != 0:
        raise RuntimeError(f"vgd segment exited with {status}")
    return seconds


def run_fold(args, clips, folds, k) -> dict[str, Any]:
    model = Path(args.model) if args.model else train_fold(args, clips, folds, k)
    test = [c for c, f in zip(clips, folds) if f == k]
    work = Path(args.work) / f"fold{k}"
    files = write_conversations(
        test, args.conversations, args.seed + k, work / "audio", turn_noise=args.turn_noise
    )
    out_csv = segments_csv(work, args)
    seconds = run_segment(model, files, out_csv, segment_options(args))
    report = score_files(files, read_segments(out_csv))
    audio_s = sum(f["seconds"] for f in files)
    report["scores"].update(rtf=seconds / audio_s, segment_seconds=seconds, audio_seconds=audio_s)
    report.update(fold=k, model=str(model), test_speakers=len(speaker_names(test)))
    hidden = ("reference", "parts", "turn_spans", "turn_speakers")
    report["conversations"] = [{k: v for k, v in f.items() if k not in hidden} for f in files]
    return report


# A child's peak RSS counts the pages of the process it was forked from (Linux keeps the high
# water mark across exec), and this one holds PyTorch and an hour of audio: a small launcher
# process forks the measured command instead.
LAUNCHER = (
    "import resource, subprocess, sys, time; t = time.perf_counter(); "
    "subprocess.run(sys.argv[1:], check=True); "
    "print(time.perf_counter() - t, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)"
)


def timed_process(cmd: Sequence[str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of ``cmd`` run in a fresh process."""
    out = subprocess.run(
        [sys.executable, "-c", LAUNCHER, *cmd], capture_output=True, text=True, check=True
    )
    seconds, kib = out.stdout.split()[-2:]
    return float(seconds), float(kib) / 1024


def run_hour(args, clips, folds, k, repeats: int = 3) -> dict[str, Any]:
    """One 60-minute recording of fold K's speakers, segmented ``repeats`` times, each in a
    fresh process (Python and PyTorch start-up included)."""
    model = Path(args.model) if args.model else train_fold(args, clips, folds, k)
    test = [c for c, f in zip(clips, folds) if f == k]
    work = Path(args.work) / f"hour{k}"
    minutes_per_pass = sum(c.duration_s for c in test) / 60 * 1.25  # with pauses and inserts
    repeats = max(int(np.ceil(args.minutes / minutes_per_pass)), 1)
    [f] = write_conversations(test, 1, args.seed + k, work, repeats, args.turn_noise)
    keep = round(args.minutes * 60 * RATE)
    if f["seconds"] * RATE > keep:  # trim to the length asked for (the reference too)
        wave, _ = sf.read(f["path"], dtype="float32", frames=keep)
        save_audio(f["path"], wave, RATE)
        f["seconds"] = keep / RATE
        f["reference"] = [
            (s, min(e, f["seconds"]), x) for s, e, x in f["reference"] if s < f["seconds"]
        ]
    out_csv = segments_csv(work, args)
    cmd = [sys.executable, "-m", "vgd.cli", "-q", "segment", f["path"], "--model", str(model)]
    cmd += segment_options(args)
    # A shared machine's speed drifts: the median of a few runs, with the range.
    runs = [timed_process([*cmd, "--format", "csv", "--out", str(out_csv)]) for _ in range(repeats)]
    walls = [w for w, _ in runs]
    report = score_files([f], read_segments(out_csv))
    report["scores"].update(
        process_seconds=float(np.median(walls)),
        process_seconds_range=[min(walls), max(walls)],
        peak_rss_mib=max(p for _, p in runs),
        audio_seconds=f["seconds"],
        rtf=float(np.median(walls)) / f["seconds"],
    )
    report.update(fold=k, model=str(model), command=" ".join(["python", *cmd[1:]]))
    return report


# ----------------------------------------------------------------------------- reporting

COLUMNS = [
    ("f1_female", "F1 fem", "{:.3f}"),
    ("f1_male", "F1 male", "{:.3f}"),
    ("f1_nonspeech", "F1 non", "{:.3f}"),
    ("macro_f1", "macro F1", "{:.3f}"),
    ("speech_miss", "miss", "{:.3f}"),
    ("false_alarm", "FA", "{:.3f}"),
    ("gender_accuracy", "gender acc", "{:.3f}"),
    ("unknown_share", "unknown", "{:.3f}"),
    ("unknown_of_speech", "unk/speech", "{:.3f}"),
    ("collar_f1_nonspeech", "F1 non c", "{:.3f}"),
    ("collar_macro_f1", "macro c", "{:.3f}"),
    ("share_error_mean", "share err", "{:.2f}"),
    ("share_error_max", "max", "{:.2f}"),
    ("rtf", "RTF", "{:.4f}"),
]


def table(rows: Sequence[tuple[str, dict[str, float]]]) -> str:
    width = max([10, *(len(name) for name, _ in rows)])
    head = f"{'':<{width}}" + "".join(f" {title:>10}" for _, title, _ in COLUMNS)
    lines = [head]
    for name, s in rows:
        cells = [fmt.format(s[key]) if key in s else "-" for key, _, fmt in COLUMNS]
        lines.append(f"{name:<{width}}" + "".join(f" {c:>10}" for c in cells))
    return "\n".join(lines)


def alarm_line(report: dict[str, Any]) -> str:
    """Where the false alarms lie: seconds called speech of each kind of non-speech."""
    cells = [
        f"{k} {v['false_alarm_seconds']:.1f} of {v['nonspeech_seconds']:.0f} s"
        for k, v in report.get("false_alarm_by_part", {}).items()
    ]
    return f"fold {report['fold']}: non-speech called speech: " + "; ".join(cells)


def lost_line(lost: dict[str, Any], name: str) -> str:
    """Where gender accuracy on detected speech went, and whose turns were answered wrong."""
    voices = Counter(t["speaker"] for t in lost["lost_turns"])
    who = ", ".join(v + (f" x{n}" if n > 1 else "") for v, n in voices.most_common())
    unknown = lost["unknown_segments_s"]
    n = len(lost["lost_turns"])
    return (
        f"{name}: detected speech answered unknown {lost['unknown']:.2%} ({len(unknown)} "
        f"segments, median {np.median(unknown) if unknown else 0:.1f} s{unknown_voices(lost)}), "
        f"wrong {lost['wrong']:.2%} ({lost['wrong_in_lost_turns']:.2%} in {n} "
        f"turn{'' if n == 1 else 's'} answered mostly wrong{': ' + who if who else ''})"
    )


def unknown_voices(lost: dict[str, Any], most: int = 3) -> str:
    """How many voices the ``unknown`` speech fell on, and the share of it on the ``most``."""
    voices = lost.get("unknown_voices", [])  # most first, as lost_accuracy and mean_lost sort them
    total = sum(v["unknown_s"] for v in voices)
    if not total:
        return ""
    top = voices[:most]
    names = ", ".join(f"{v['speaker']} {v['unknown_s']:.1f} s" for v in top)
    share = sum(v["unknown_s"] for v in top) / total
    return f", on {len(voices)} voice{'' if len(voices) == 1 else 's'}: {share:.0%} on {names}"


def mean_lost(reports: Sequence[dict]) -> dict[str, Any]:
    """The folds' mean shares, and every fold's lost turns."""
    shares = ("unknown", "wrong", "wrong_in_lost_turns")
    return {
        **{k: float(np.mean([r["lost"][k] for r in reports])) for k in shares},
        "unknown_segments_s": [x for r in reports for x in r["lost"]["unknown_segments_s"]],
        "unknown_voices": sorted(
            (v for r in reports for v in r["lost"].get("unknown_voices", [])),
            key=lambda v: -v["unknown_s"],
        ),
        "lost_turns": [t for r in reports for t in r["lost"]["lost_turns"]],
    }


def report_rows(report: dict[str, Any], name: str) -> list[tuple[str, dict[str, float]]]:
    """The report's row, and one per corpus (its turns' frames) when there are several."""
    rows = [(name, report["scores"])]
    if len(report.get("per_corpus", {})) > 1:
        rows += [(f"  {k}", s) for k, s in report["per_corpus"].items()]
    return rows


def mean_per_corpus(reports: Sequence[dict]) -> dict[str, dict[str, float]]:
    names = sorted({k for r in reports for k in r.get("per_corpus", {})})
    return {
        k: mean_scores([{"scores": r["per_corpus"][k]} for r in reports if k in r["per_corpus"]])
        for k in names
    }


def mean_scores(reports: Sequence[dict]) -> dict[str, float]:
    keys = reports[0]["scores"].keys()
    return {key: float(np.mean([r["scores"][key] for r in reports])) for key in keys}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--root", type=Path, default=DEFAULT_ROOT, help="LibriSpeech folder")
    p.add_argument(
        "--manifest",
        action="append",
        default=[],
        help="another corpus's manifest, pooled with LibriSpeech's speakers (repeatable)",
    )
    p.add_argument(
        "--turn-noise",
        type=float,
        nargs=2,
        metavar=("MIN", "MAX"),
        help="seconds of room noise before and after each turn's clip, drawn from [MIN, MAX] "
        f"(default: {TURN_NOISE_S[0]:g} {TURN_NOISE_S[1]:g} with --manifest, else 0 0: the "
        "LibriSpeech-only results were measured without it)",
    )
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--fold", type=int, default=0, help="the held-out fold (default: %(default)s)")
    p.add_argument("--all-folds", action="store_true", help="every fold, then the mean")
    p.add_argument("--seed", type=int, default=0, help="fold assignment and conversation seed")
    p.add_argument("--model", help="a checkpoint that never trained on the fold's speakers")
    p.add_argument("--config", help="YAML training config (defaults when omitted)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="config override")
    p.add_argument(
        "--reuse-models",
        action="store_true",
        help="score with the fold models an earlier run saved under --work instead of training",
    )
    p.add_argument("--conversations", type=int, default=4)
    p.add_argument(
        "--min-confidence",
        type=float,
        help="vgd segment's threshold of 'unknown' (default: its own, as shipped)",
    )
    p.add_argument(
        "--bridge",
        type=float,
        help="vgd segment's seconds of pause heard across (default: its own, as shipped)",
    )
    p.add_argument("--hour", action="store_true", help="time one long recording instead")
    p.add_argument("--minutes", type=float, default=60.0, help="length of the --hour recording")
    p.add_argument("--repeats", type=int, default=3, help="timed runs in --hour mode")
    p.add_argument("--threads", type=int, default=0, help="torch CPU threads for training")
    p.add_argument(
        "--work",
        help="models, audio and segments (default: runs/bench_segment, or "
        "runs/bench_segment_<corpora> with --manifest)",
    )
    p.add_argument("--out", default="results/bench/segment")
    p.add_argument("-q", "--quiet", action="store_true", help="no per-epoch progress")
    args = p.parse_args(argv)
    if args.model and args.all_folds:
        p.error("--model cannot be held out from every fold: use it with --fold")
    if not 0 <= args.fold < args.folds:
        p.error(f"--fold must be in [0, {args.folds})")
    if args.min_confidence is not None and not 0 <= args.min_confidence <= 1:
        p.error(f"--min-confidence must be in [0, 1], got {args.min_confidence:g}")
    if args.bridge is not None and args.bridge < 0:
        p.error(f"--bridge must be >= 0, got {args.bridge:g}")
    if args.turn_noise is None:
        args.turn_noise = TURN_NOISE_S if args.manifest else (0.0, 0.0)
    lo, hi = args.turn_noise = tuple(args.turn_noise)
    if not 0 <= lo <= hi:
        p.error(f"--turn-noise MIN MAX must satisfy 0 <= MIN <= MAX, got {lo:g} {hi:g}")
    return args


def load_pool(args: argparse.Namespace) -> list[Clip]:
    """LibriSpeech's clips, and those of every ``--manifest``."""
    clips = build("librispeech", args.root, validate="header", progress=False).clips
    return clips + (read_manifests(args.manifest) if args.manifest else [])


def pool_name(corpora: Sequence[str]) -> str:
    """'' for LibriSpeech alone (the names its results have always had), else the corpora."""
    return "" if len(corpora) <= 1 else "+".join(corpora)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.WARNING if args.quiet else logging.INFO, format="%(message)s", force=True
    )
    if not args.root.is_dir():
        print(f"bench_segment: error: {args.root}: no such folder (LibriSpeech)", file=sys.stderr)
        return 2
    try:
        clips = load_pool(args)
        corpora = corpora_of(clips)
        pool = pool_name(corpora)
        args.work = args.work or (f"runs/bench_segment_{pool}" if pool else "runs/bench_segment")
        folds = speaker_folds(clips, args.folds, args.seed)
        for name in corpora:
            mine = [c for c in clips if c.corpus == name]
            print(f"{name}: {len(mine)} clips, {len(speaker_names(mine))} speakers")
        lo, hi = args.turn_noise
        if hi > 0:
            print(f"room noise of {lo:g}-{hi:g} s before and after every turn (non-speech)")
        if args.hour:
            report = run_hour(args, clips, folds, args.fold, args.repeats)
            s = report["scores"]
            print(table(report_rows(report, f"hour f{args.fold}")))
            if "lost" in report:
                print(lost_line(report["lost"], f"hour f{args.fold}"))
            lo, hi = s["process_seconds_range"]
            print(
                f"{s['audio_seconds'] / 60:.0f}-minute recording: {s['process_seconds']:.1f} s "
                f"(median of {args.repeats}, range {lo:.1f}-{hi:.1f}) for `vgd segment` in a "
                f"fresh process (target ≤ {HOUR_TARGETS['seconds']:g}), peak RSS "
                f"{s['peak_rss_mib']:.0f} MiB (target < {HOUR_TARGETS['peak_rss_mib']:g})"
            )
            path = Path(args.out) / f"{pool + '_' if pool else ''}hour_fold{args.fold}.json"
            atomic_write_json(path, report)
            print(f"wrote {path}")
            return 0
        ks = range(args.folds) if args.all_folds else [args.fold]
        reports = []
        for k in ks:
            reports.append(run_fold(args, clips, folds, k))
            print(alarm_line(reports[-1]))
            if "lost" in reports[-1]:
                print(lost_line(reports[-1]["lost"], f"fold {k}"))
            print(table([row for r in reports for row in report_rows(r, f"fold {r['fold']}")]))
    except (ConfigError, ManifestError, CheckpointError, HeldOutError, FileNotFoundError) as e:
        print(f"bench_segment: error: {e}", file=sys.stderr)
        return 2
    summary = {"scores": mean_scores(reports), "per_corpus": mean_per_corpus(reports)}
    if all("lost" in r for r in reports):
        summary["lost"] = mean_lost(reports)
    rows = [row for r in reports for row in report_rows(r, f"fold {r['fold']}")]
    print(table(rows + (report_rows(summary, "mean") if len(reports) > 1 else [])))
    targets = CORPORA_TARGETS if pool else TARGETS
    if "lost" in summary:
        print(lost_line(summary["lost"], "mean" if len(reports) > 1 else f"fold {ks[0]}"))
    print(f"targets: {targets}")
    name = "all_folds.json" if args.all_folds else f"fold{args.fold}.json"
    name = f"{pool}_{name}" if pool else name
    atomic_write_json(
        Path(args.out) / name,
        {
            "command": " ".join(["python scripts/bench_segment.py", *(argv or sys.argv[1:])]),
            "corpora": corpora,
            "turn_noise_s": list(args.turn_noise),
            "folds": args.folds,
            "seed": args.seed,
            "segment_config": asdict(segment_config(args)),
            "mean": summary["scores"],
            "mean_per_corpus": summary["per_corpus"],
            **({"mean_lost": summary["lost"]} if "lost" in summary else {}),
            "targets": targets,
            "reports": reports,
        },
    )
    print(f"wrote {Path(args.out) / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
