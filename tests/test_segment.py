"""Segmentation: non-speech stays non-speech, turns land where they are, the turn search is exact,
formats parse, bad files are rows, and block-wise streaming gives the whole-file answer."""

from __future__ import annotations

import csv
import importlib.util
import io
import itertools
import json
import math
import sys
import tracemalloc
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import load_script
from vgd import signals
from vgd.audio import save_audio
from vgd.checkpoint import LoadedModel
from vgd.cli import main
from vgd.config import ModelSpec, TrainConfig, WindowConfig
from vgd.formats import (
    CSV_COLUMNS,
    NONSPEECH,
    UNKNOWN,
    FileSegments,
    Segment,
    format_segments,
    write_per_file,
)
from vgd.segment import (
    FRAME_S,
    SegmentConfig,
    Segmenter,
    cut_windows,
    decode,
    min_turn_path,
    segment_paths,
    stretches,
    tighten_speech,
    to_segments,
    window_plan,
)

HAS_SILERO = importlib.util.find_spec("silero_vad") is not None
needs_silero = pytest.mark.skipif(not HAS_SILERO, reason="silero-vad is not installed")
SR = 16000
# synthetic_voice speakers whose pitch is clearly on one side of the stand-in model's 165 Hz
# (vgd.synth F0: female 0 = 246 Hz, 4 = 256 Hz; male 1 = 114 Hz, 2 = 89 Hz).
FEMALE, MALE = (0, 4), (1, 2)
# Synthetic voices start after 0.05-0.25 s of silence, some with a lone 60 ms syllable before a
# pause (female 0: a burst at 0.24 s, speech from 0.48 s) that the VAD's 0.25 s minimum drops;
# measured, the first detected edge was 0.71 s into such a part.
EDGE_TOL_S = 0.8


class PitchModel(torch.nn.Module):
    """A stand-in gender model: (B, T) waves → (B, 2) logits (female, male) from the
    autocorrelation pitch, female above 165 Hz. Deterministic and instant, so the tests check
    segmentation, not a trained network."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = torch.nn.Parameter(torch.tensor(0.1))  # logit per Hz from 165

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        x = wave - wave.mean(dim=1, keepdim=True)
        n = x.shape[1]
        ac = torch.fft.irfft(torch.fft.rfft(x, 2 * n).abs() ** 2)[:, :n]  # (B, n) autocorrelation
        lo, hi = SR // 400, SR // 60
        f0 = SR / (ac[:, lo:hi].argmax(dim=1) + lo).float()
        z = self.scale * (f0 - 165.0)
        return torch.stack([z, -z], dim=1)


@pytest.fixture(scope="module")
def loaded() -> LoadedModel:
    if not HAS_SILERO:
        pytest.skip("silero-vad is not installed")
    spec = ModelSpec(window=WindowConfig(seconds=1.0))
    return LoadedModel(PitchModel().eval(), spec, TrainConfig())


def voice(label: str, seconds: float, which: int = 0, seed: int = 0) -> np.ndarray:
    speaker = (FEMALE if label == "female" else MALE)[which]
    return signals.synthetic_voice(seconds, label, speaker, seed=seed)


def overlap(segments: list[Segment], start: float, end: float, label: str) -> float:
    """The share of [start, end) that segments of ``label`` cover."""
    covered = sum(
        max(0.0, min(s.end, end) - max(s.start, start)) for s in segments if s.label == label
    )
    return covered / (end - start)


def speech_labels(segments: list[Segment]) -> list[str]:
    """Labels of the speech segments in order, repeats collapsed."""
    out = [s.label for s in segments if s.label != NONSPEECH]
    return [x for i, x in enumerate(out) if i == 0 or out[i - 1] != x]


def check_tiling(result: FileSegments) -> None:
    """Segments cover [0, duration] end to end, in order, with no gap."""
    segs = result.segments
    assert segs[0].start == 0.0
    assert segs[-1].end == pytest.approx(result.duration_s, abs=1e-3)
    assert all(a.end == b.start for a, b in zip(segs, segs[1:]))
    assert all(s.end > s.start for s in segs)


# ----------------------------------------------------------------------------- the pure core


def brute_force(logp: np.ndarray, min_len: int) -> float:
    """The best score over every labelling whose runs all last ``min_len`` frames or more."""
    T, C = logp.shape
    best = -math.inf
    for labels in itertools.product(range(C), repeat=T):
        lengths = [len(list(g)) for _, g in itertools.groupby(labels)]
        if len(lengths) > 1 and min(lengths) < min_len:
            continue
        best = max(best, float(logp[np.arange(T), labels].sum()))
    return best


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("min_len,classes", [(1, 2), (2, 2), (3, 2), (2, 3)])
def test_min_turn_path_is_the_best_allowed_path(seed: int, min_len: int, classes: int) -> None:
    logp = np.log(np.random.default_rng(seed).dirichlet(np.ones(classes), size=9))
    path = min_turn_path(logp, min_len)
    runs = [len(list(g)) for _, g in itertools.groupby(path.tolist())]
    assert len(runs) == 1 or min(runs) >= min_len
    assert logp[np.arange(9), path].sum() == pytest.approx(brute_force(logp, min_len))


def _posteriors(p_female: np.ndarray) -> np.ndarray:
    return np.stack([p_female, 1 - p_female], axis=1)


def test_smoothing_removes_a_short_blip_and_keeps_a_turn() -> None:
    p = np.full(1000, 0.9)  # 10 s of female
    p[300:350] = 0.05  # a 0.5 s male blip
    p[600:] = 0.1  # a 4 s male turn
    segs = decode([(0, 1000)], _posteriors(p), np.ones(1000), ("female", "male"), 10.0)
    assert [(s.start, s.end, s.label) for s in segs] == [(0.0, 6.0, "female"), (6.0, 10.0, "male")]
    unsmoothed = decode(
        [(0, 1000)], _posteriors(p), np.ones(1000), ("female", "male"), 10.0,
        SegmentConfig(min_turn_s=0.0),
    )  # fmt: skip
    assert speech_labels(unsmoothed) == ["female", "male", "female", "male"]


def test_turns_in_speech_regions_further_apart_than_the_bridge_are_kept_however_short() -> None:
    p = np.r_[np.full(400, 0.9), np.full(50, 0.5), np.full(30, 0.1), np.full(20, 0.5)]
    speech = [(0, 400), (450, 480)]  # 0.3 s of male after a 0.5 s pause: its own region
    apart = SegmentConfig(bridge_s=0.3)
    segs = decode(speech, _posteriors(p), np.full(500, 0.8), ("female", "male"), 5.0, apart)
    assert [(s.label, s.start, s.end) for s in segs] == [
        ("female", 0.0, 4.0),
        (NONSPEECH, 4.0, 4.5),
        ("male", 4.5, 4.8),
        (NONSPEECH, 4.8, 5.0),
    ]


def test_a_turn_runs_across_a_pause_shorter_than_the_bridge() -> None:
    p = np.r_[np.full(400, 0.9), np.full(50, 0.5), np.full(30, 0.4), np.full(20, 0.5)]
    speech = [(0, 400), (450, 480)]  # 0.3 s after a 0.5 s pause, leaning male on its own
    names, conf = ("female", "male"), np.full(500, 0.8)
    heard_together = SegmentConfig(bridge_s=1.0, min_confidence=0.0)
    segs = decode(speech, _posteriors(p), conf, names, 5.0, heard_together)
    assert [(s.label, s.start, s.end) for s in segs] == [
        ("female", 0.0, 4.0),
        (NONSPEECH, 4.0, 4.5),  # the pause is still non-speech
        ("female", 4.5, 4.8),  # too short to be a turn of its own within the stretch
        (NONSPEECH, 4.8, 5.0),
    ]
    # a longer pause splits the stretch: the region is decoded alone again
    far = [(0, 400), (460, 480)]
    apart = decode(far, _posteriors(p), conf, names, 5.0, replace(heard_together, bridge_s=0.5))
    assert speech_labels(apart) == ["female", "male"]


def test_stretches_join_regions_across_gaps_under_the_bridge() -> None:
    speech = [(0, 200), (250, 280), (400, 500), (599, 650)]
    assert stretches(speech, 100) == [(0, 280), (400, 650)]
    assert stretches(speech, 50) == [(0, 200), (250, 280), (400, 500), (599, 650)]
    assert stretches(speech, 0) == speech and stretches([], 100) == []
    # the windows of a stretch span its pauses, so a lone word is heard with its neighbours
    plan = window_plan(stretches(speech, 100), window_frames=300, hop_frames=100)
    assert plan[0] == (0, 280, 0, 280)  # one window: the word at 2.5 s with the 2 s before it
    assert [(c0, c1) for _, _, c0, c1 in plan[1:]] == [(400, 650)]


def _db(*parts: tuple[int, float]) -> np.ndarray:
    """Frame energies: (frames, dB) parts one after another."""
    return np.concatenate([np.full(n, level) for n, level in parts])


def test_tightened_speech_ends_where_the_signal_falls_to_the_floor() -> None:
    # 1 s floor, 3 s speech, 1 s floor; the VAD's region starts 0.05 s early, ends 0.15 s late
    db = _db((100, -60.0), (300, -20.0), (100, -60.0))
    assert tighten_speech([(95, 415)], db, margin_db=15.0, min_pause=30) == [(100, 400)]
    # a word's tail 10 dB over the floor is under the margin: not speech; at 20 dB it is
    tail = _db((100, -60.0), (280, -20.0), (20, -50.0), (100, -60.0))
    assert tighten_speech([(95, 415)], tail, 15.0, 30) == [(100, 380)]
    assert tighten_speech([(95, 415)], tail, 5.0, 30) == [(100, 400)]


def test_tightening_cuts_long_pauses_bridges_short_ones_and_never_grows() -> None:
    db = _db((50, -60.0), (100, -25.0), (40, -60.0), (100, -25.0), (10, -60.0), (100, -25.0))
    got = tighten_speech([(50, 400)], db, margin_db=15.0, min_pause=30)
    assert got == [(50, 150), (190, 400)]  # the 0.4 s pause cut, the 0.1 s one bridged
    # the region is a subset of what the VAD said, even where loud frames lie outside it
    assert tighten_speech([(60, 140)], db, 15.0, 30) == [(60, 140)]
    # no frame stands out (speech as loud as the noise around it): the VAD's region stays
    flat = np.full(500, -30.0)
    assert tighten_speech([(100, 300)], flat, 15.0, 30) == [(100, 300)]


def test_a_pause_inside_a_turn_is_nonspeech_without_splitting_the_turn() -> None:
    p = np.r_[np.full(150, 0.9), np.full(40, 0.5), np.full(150, 0.3)]  # mostly female
    names, speech, voiced = ("female", "male"), [(0, 340)], [(0, 150), (190, 340)]
    config = SegmentConfig(min_confidence=0.0)  # labels as decoded, none called unknown
    segs = decode(speech, _posteriors(p), np.full(340, 0.9), names, 3.4, config, voiced)
    assert [(s.label, s.start, s.end) for s in segs] == [
        ("female", 0.0, 1.5),
        (NONSPEECH, 1.5, 1.9),
        ("female", 1.9, 3.4),
    ]
    # decoded region by region, the 1.5 s after the pause would be its own (male) turn
    alone = decode(
        voiced, _posteriors(p), np.full(340, 0.9), names, 3.4, replace(config, bridge_s=0)
    )
    assert [s.label for s in alone] == ["female", NONSPEECH, "male"]


def test_low_confidence_speech_is_unknown_and_merges() -> None:
    p = np.r_[np.full(300, 0.6), np.full(300, 0.35), np.full(300, 0.95)]
    labels = np.r_[np.zeros(300, int), np.ones(300, int), np.zeros(300, int)]
    segs = to_segments(labels, _posteriors(p), np.ones(900), ("female", "male"), 9.0, 0.7)
    assert [(s.label, s.start, s.end) for s in segs] == [(UNKNOWN, 0.0, 6.0), ("female", 6.0, 9.0)]
    assert segs[0].confidence == pytest.approx(0.625)  # (0.6 + 0.65) / 2, frame-weighted
    assert to_segments(labels, _posteriors(p), np.ones(900), ("female", "male"), 9.0, 0.5)[
        0
    ].label == ("female")


def test_window_plan_covers_regions_within_the_hop() -> None:
    plan = window_plan([(10, 60), (100, 1000)], window_frames=300, hop_frames=100)
    assert plan[0] == (10, 50, 10, 60)  # shorter than a window: one window of the region
    starts = [p[0] for p in plan[1:]]
    assert starts[0] == 100 and starts[-1] == 1000 - 300
    assert max(np.diff(starts)) <= 100
    assert all(length == 300 and (c0, c1) == (s, s + 300) for s, length, c0, c1 in plan[1:])


@pytest.mark.parametrize("block", [1, 159, 160, 1000, 10**6])
def test_cut_windows_is_independent_of_block_size(block: int) -> None:
    wave = np.arange(20000, dtype=np.float32)
    plan = window_plan([(5, 30), (40, 120)], window_frames=50, hop_frames=20)
    blocks = (wave[i : i + block] for i in range(0, wave.size, block))
    for (samples, c0, c1), (first, length, p0, p1) in zip(cut_windows(blocks, plan, 160), plan):
        np.testing.assert_array_equal(samples, wave[first * 160 : (first + length) * 160])
        assert (c0, c1) == (p0, p1)


def test_summary_and_config_validation() -> None:
    r = FileSegments("a.wav", 10.0, [Segment(0, 2, NONSPEECH, 1), Segment(2, 5, "female", 0.9)])
    r.segments += [Segment(5, 6, UNKNOWN, 0.6), Segment(6, 10, "male", 0.8)]
    s = r.summary()
    assert (s["speech_s"], s["female_s"], s["male_s"], s["unknown_s"]) == (8.0, 3.0, 4.0, 1.0)
    assert s["women_share"] == pytest.approx(3 / 7)
    assert (
        FileSegments("b.wav", 3.0, [Segment(0, 3, NONSPEECH, 1)]).summary()["women_share"] is None
    )
    bad_values = [{"hop_s": 0}, {"min_turn_s": -1}, {"min_confidence": 1.5}, {"bridge_s": -1}]
    for bad in [*bad_values, {"edge_margin_db": 0}]:
        with pytest.raises(ValueError, match="SegmentConfig"):
            SegmentConfig(**bad)


# ----------------------------------------------------------------------------- formats

RESULTS = [
    FileSegments(
        "dir/my talk.wav",
        6.0,
        [
            Segment(0.0, 1.0, NONSPEECH, 0.99),
            Segment(1.0, 3.5, "female", 0.91),
            Segment(3.5, 4.0, UNKNOWN, 0.6),
            Segment(4.0, 6.0, "male", 0.88),
        ],
    ),
    FileSegments("bad.wav", error="not audio or corrupt (x)"),
]


def test_csv_has_the_columns_and_an_error_row() -> None:
    rows = list(csv.DictReader(io.StringIO(format_segments(RESULTS, "csv"))))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert [r["label"] for r in rows[:4]] == [NONSPEECH, "female", UNKNOWN, "male"]
    assert rows[1]["start"] == "1.000" and rows[1]["end"] == "3.500"
    assert rows[4]["path"] == "bad.wav" and rows[4]["error"].startswith("not audio")


def test_rttm_lines_have_ten_fields_and_no_nonspeech() -> None:
    lines = format_segments(RESULTS, "rttm").splitlines()
    assert len(lines) == 3
    fields = [line.split() for line in lines]
    assert all(len(f) == 10 and f[0] == "SPEAKER" and f[1] == "my_talk" for f in fields)
    assert [(f[3], f[4], f[7]) for f in fields] == [
        ("1.000", "2.500", "female"),
        ("3.500", "0.500", UNKNOWN),
        ("4.000", "2.000", "male"),
    ]


def test_textgrid_is_one_interval_tier_covering_the_file(tmp_path: Path) -> None:
    text = format_segments(RESULTS, "textgrid")  # the failed file has nothing to write
    assert text.startswith('File type = "ooTextFile"\nObject class = "TextGrid"\n')
    assert 'class = "IntervalTier"' in text and "intervals: size = 4" in text
    xs = [float(line.split("=")[1]) for line in text.splitlines() if "xm" in line][4:]
    assert xs[0] == 0.0 and xs[-1] == 6.0 and all(a == b for a, b in zip(xs[1::2], xs[2::2]))
    with pytest.raises(ValueError, match="one recording"):
        format_segments([RESULTS[0], RESULTS[0]], "textgrid")
    written = write_per_file([RESULTS[0], RESULTS[1], RESULTS[0]], "textgrid", tmp_path)
    assert [Path(p).name for p in written] == ["my_talk.TextGrid", "my_talk-2.TextGrid"]


def test_json_holds_segments_summary_and_errors() -> None:
    data = json.loads(format_segments(RESULTS, "json"))
    assert data[0]["segments"][1] == {
        "start": 1.0,
        "end": 3.5,
        "label": "female",
        "confidence": 0.91,
    }
    assert data[0]["summary"]["women_share"] == pytest.approx(2.5 / 4.5, abs=1e-4)
    assert data[1]["error"] and data[1]["summary"] is None and data[1]["segments"] == []


# ----------------------------------------------------------------------------- on audio


NONSPEECH_SIGNALS = {
    "music": lambda: signals.music_like(8.0, seed=2),
    "white": lambda: signals.coloured_noise(8.0, "white", seed=1),
    "pink": lambda: signals.coloured_noise(8.0, "pink", seed=1),
    "brown": lambda: signals.coloured_noise(8.0, "brown", seed=1),
    "tone": lambda: signals.tone(8.0, 523.0),
    "hiss": lambda: signals.silence_with_hiss(8.0),
    "silence": lambda: np.zeros(8 * SR, np.float32),
}


def test_nonspeech_files_come_out_nonspeech(loaded: LoadedModel, tmp_path: Path) -> None:
    paths = []
    for name, make in NONSPEECH_SIGNALS.items():
        paths.append(tmp_path / f"{name}.wav")
        save_audio(paths[-1], make(), SR)
    for r in segment_paths(loaded, paths, progress=False):
        assert r.error is None, r
        assert [(s.label, s.start, s.end) for s in r.segments] == [(NONSPEECH, 0.0, 8.0)], r.path


def test_turns_and_pauses_land_near_the_truth(loaded: LoadedModel, tmp_path: Path) -> None:
    wave, spans = signals.timeline(
        [
            (NONSPEECH, signals.music_like(3.0, seed=5)),
            ("female", voice("female", 5.0, 0)),
            (NONSPEECH, signals.silence_with_hiss(1.5, -55.0)),
            ("male", voice("male", 5.0, 0)),
            (NONSPEECH, signals.coloured_noise(3.0, "pink", seed=5)),
            ("female", voice("female", 4.0, 1, seed=1)),
            (NONSPEECH, signals.tone(2.0, 880.0, -20.0)),
        ]
    )
    save_audio(tmp_path / "talk.wav", wave, SR)
    [r] = segment_paths(loaded, [tmp_path / "talk.wav"], progress=False)
    check_tiling(r)
    assert speech_labels(r.segments) == ["female", "male", "female"]
    for start, end, label in spans:
        assert overlap(r.segments, start, end, label) > (0.9 if label == NONSPEECH else 0.7)
    first = next(s for s in r.segments if s.label != NONSPEECH)
    assert 0 <= first.start - spans[1][0] < EDGE_TOL_S
    assert r.summary()["women_share"] == pytest.approx(0.5, abs=0.15)


def test_a_change_of_speaker_without_a_pause_is_found(loaded, tmp_path: Path) -> None:
    wave, spans = signals.timeline(
        [("female", voice("female", 8.0, 0)), ("male", voice("male", 8.0, 1))]
    )
    save_audio(tmp_path / "two.wav", wave, SR)
    [r] = segment_paths(loaded, [tmp_path / "two.wav"], progress=False)
    assert speech_labels(r.segments) == ["female", "male"]
    change = next(s.start for s in r.segments if s.label == "male")
    assert abs(change - 8.0) < 1.0


def test_a_bad_file_is_an_error_row_and_the_rest_go_on(loaded, tmp_path: Path) -> None:
    save_audio(tmp_path / "good.wav", voice("male", 3.0), SR)
    (tmp_path / "corrupt.wav").write_bytes(b"RIFF not really a wave file" * 10)
    (tmp_path / "empty.flac").write_bytes(b"")
    paths = [tmp_path / "corrupt.wav", tmp_path / "missing.wav", tmp_path / "good.wav"]
    results = segment_paths(loaded, [*paths, tmp_path / "empty.flac"], progress=False)
    by_name = {Path(r.path).name: r for r in results}
    assert "corrupt" in by_name["corrupt.wav"].error or "not audio" in by_name["corrupt.wav"].error
    assert "missing" in by_name["missing.wav"].error
    assert "empty" in by_name["empty.flac"].error
    assert by_name["good.wav"].error is None
    assert speech_labels(by_name["good.wav"].segments) == ["male"]


def test_other_sample_rates_and_stereo(loaded: LoadedModel, tmp_path: Path) -> None:
    mono = voice("female", 4.0, 0)
    import soundfile as sf

    from vgd.audio import resample

    stereo = np.stack([resample(mono, SR, 44100)] * 2, axis=1)
    sf.write(tmp_path / "stereo44k.flac", stereo, 44100)
    [r] = segment_paths(loaded, [tmp_path / "stereo44k.flac"], progress=False)
    assert r.duration_s == pytest.approx(4.0, abs=1e-3)
    assert speech_labels(r.segments) == ["female"]


def long_recording(minutes: float) -> np.ndarray:
    """Turns of both genders, pauses, music and noise, repeated to ``minutes``."""
    parts = []
    for i in range(int(minutes * 60 / 20) + 1):
        parts += [
            voice("female", 6.0, i % 2, seed=i),
            signals.silence_with_hiss(1.0, -55.0, seed=i),
            voice("male", 6.0, i % 2, seed=i),
            signals.music_like(4.0, seed=i) * 0.3,
            signals.coloured_noise(3.0, "brown", seed=i, level_db=-35.0),
        ]
    return np.concatenate(parts)[: round(minutes * 60 * SR)]


@pytest.mark.slow
def test_blocks_give_the_whole_file_answer_in_bounded_memory(loaded, tmp_path: Path) -> None:
    wave = long_recording(5.0)
    save_audio(tmp_path / "long.wav", wave, SR)
    [whole] = Segmenter(loaded, block_s=1e6).segment_paths([tmp_path / "long.wav"])
    tracemalloc.start()
    [blocks] = Segmenter(loaded, batch_size=8, block_s=4.7).segment_paths([tmp_path / "long.wav"])
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    # The VAD of a stream matches one call to ~1e-7, far from any threshold: the same segments.
    assert [(s.label, s.start, s.end) for s in blocks.segments] == [
        (s.label, s.start, s.end) for s in whole.segments
    ]
    # numpy allocations (torch's are not traced) stay far below the 19 MB of float32 samples:
    # a block (0.3 MB), a batch of eight 1-s windows twice (0.5 MB) and per-frame arrays (1 MB).
    assert peak < wave.nbytes / 4, f"peak {peak / 2**20:.1f} MiB"
    assert len(speech_labels(whole.segments)) >= 20


def test_batches_across_files_do_not_mix_them(loaded: LoadedModel, tmp_path: Path) -> None:
    for name, label in [("a", "female"), ("b", "male"), ("c", "female")]:
        save_audio(tmp_path / f"{name}.wav", voice(label, 4.0, 0), SR)
    paths = [tmp_path / f"{x}.wav" for x in "abc"]
    together = Segmenter(loaded, batch_size=7).segment_paths(paths)
    alone = [Segmenter(loaded, batch_size=1).segment_paths([p])[0] for p in paths]
    assert [r.segments for r in together] == [r.segments for r in alone]
    assert [speech_labels(r.segments) for r in together] == [["female"], ["male"], ["female"]]


# ----------------------------------------------------------------------------- CLI


@needs_silero
def test_cli_segment_formats_and_exit_codes(toy_model: Path, tmp_path: Path, capsys) -> None:
    save_audio(tmp_path / "music.wav", signals.music_like(4.0), SR)
    save_audio(tmp_path / "talk.wav", voice("female", 4.0), SR)
    model = ["--model", str(toy_model)]
    out = tmp_path / "seg.csv"
    assert main(["-q", "segment", str(tmp_path), *model, "--out", str(out)]) == 0
    rows = list(csv.DictReader(out.open()))
    music = [r for r in rows if r["path"].endswith("music.wav")]
    assert [(r["label"], r["start"], r["end"]) for r in music] == [(NONSPEECH, "0.000", "4.000")]
    assert "women" in capsys.readouterr().out  # the summary table

    assert main(["-q", "segment", str(tmp_path / "talk.wav"), *model, "--format", "rttm"]) == 0
    captured = capsys.readouterr()
    assert all(len(line.split()) == 10 for line in captured.out.splitlines())
    assert "talk.wav" in captured.err  # the summary goes to stderr when stdout has the data

    folder = tmp_path / "grids"
    args = ["-q", "segment", str(tmp_path / "music.wav"), str(tmp_path / "talk.wav"), *model]
    assert main([*args, "--format", "textgrid", "--out", f"{folder}/"]) == 0
    assert sorted(p.name for p in folder.iterdir()) == ["music.TextGrid", "talk.TextGrid"]
    assert main([*args, "--format", "textgrid"]) == 2  # two recordings, one TextGrid
    assert main([*args, "--min-confidence", "2"]) == 2
    assert "min_confidence" in capsys.readouterr().err
    assert main([*args, "--bridge", "-1"]) == 2
    assert "bridge_s" in capsys.readouterr().err
    assert main([*args, "--batch-size", "0"]) == 2

    assert main(["-q", "segment", str(tmp_path / "nope.wav"), *args[2:], "--format", "json"]) == 1
    captured = capsys.readouterr()
    data = json.loads(captured.out)
    assert data[0]["error"].startswith("missing") and data[1]["error"] is None
    assert "failed: " in captured.err


@needs_silero
def test_cli_plot_segments(toy_model: Path, tmp_path: Path) -> None:
    wave, _ = signals.timeline(
        [("m", signals.music_like(2.0)), ("f", voice("female", 4.0)), ("n", signals.tone(1.0, 300))]
    )
    save_audio(tmp_path / "talk.wav", wave, SR)
    for view in ("wave", "mel"):
        out = tmp_path / f"{view}.png"
        args = ["plot", "segments", str(tmp_path / "talk.wav"), "--model", str(toy_model)]
        assert main([*args, "--view", view, "--out", str(out)]) == 0
        assert out.read_bytes()[:4] == b"\x89PNG"
    assert main([*args, "--out", str(tmp_path / "x.png"), "--min-turn", "-1"]) == 2
    assert main([*args, "--out", str(tmp_path / "x.png"), "--seconds", "0"]) == 2
    assert main(["plot", "segments", str(tmp_path / "nope.wav"), "--model", str(toy_model)]) == 2


def test_segmenter_rejects_reserved_labels(loaded: LoadedModel) -> None:
    spec = replace(loaded.spec, labels=("speech", NONSPEECH))
    with pytest.raises(ValueError, match="reserved"):
        Segmenter(replace(loaded, spec=spec))
    assert FRAME_S == 0.01


# ----------------------------------------------------------------------------- the benchmark


@pytest.fixture(scope="module")
def bench():
    """scripts/bench_segment.py as a module."""
    yield load_script("bench_segment")
    del sys.modules["bench_segment"]


def test_bench_scores_frames(bench) -> None:
    ref = [(1.0, 3.0, "female"), (4.0, 6.0, "male")]
    ref_frames = bench.frames_of(ref, 700, bench.CLASSES)
    perfect = bench.frame_scores(
        bench.frame_counts(ref_frames, bench.frames_of(ref, 700, bench.HYP))
    )
    assert perfect["macro_f1"] == 1.0 and perfect["speech_miss"] == perfect["false_alarm"] == 0
    late = [(1.2, 3.0, "female"), (4.0, 6.0, "female"), (6.5, 7.0, "unknown")]
    s = bench.frame_scores(bench.frame_counts(ref_frames, bench.frames_of(late, 700, bench.HYP)))
    assert s["speech_miss"] == pytest.approx(20 / 400)  # 0.2 s of 4 s
    assert s["false_alarm"] == pytest.approx(50 / 300)  # 0.5 s of 3 s of non-speech
    assert s["gender_accuracy"] == pytest.approx(180 / 380)  # the male turn is called female
    assert s["f1_male"] == 0.0 and s["unknown_share"] == 0.0
    keep = bench.outside_collar(ref_frames, 0.25)
    assert not keep[75:125].any() and keep[125:275].all() and keep.sum() == 700 - 4 * 50
    assert bench.women_share(late) == pytest.approx(3.8 / 3.8) and bench.women_share([]) is None


def test_bench_conversations_alternate_and_reference_lies_in_turns(bench) -> None:
    from vgd.manifest import Clip

    clips = [Clip(f"{x}{i}.flac", x, f"{x}{i}", 5.0, "ls") for x in ("female", "male")
             for i in range(5)]  # fmt: skip
    convs = bench.conversation_turns(clips, 2, seed=0)
    assert sorted(c.path for turns in convs for c in turns) == sorted(c.path for c in clips)
    for turns in convs:
        labels = [c.label for c in turns]
        assert all(a != b for a, b in zip(labels, labels[1:]))
    turns = [(voice("female", 3.0), "female"), (voice("male", 3.0), "male")]
    wave, reference, parts = bench.conversation(turns, np.random.default_rng(0))
    assert parts[0][0] == 0 and parts[-1][1] == pytest.approx(wave.size / SR)
    assert all(a[1] == b[0] for a, b in zip(parts, parts[1:]))
    spans = {what: (s, e) for s, e, what in parts if what in ("female", "male")}
    for s, e, label in reference:
        assert spans[label][0] <= s < e <= spans[label][1]
