"""scripts/bench_segment.py on two corpora: the deal, the room noise in each turn, the unknown
shares and the arguments. Tiny synthetic audio only; nothing under ../shared is read."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import load_script
from vgd.audio import save_audio
from vgd.manifest import Clip
from vgd.signals import synthetic_voice

SR = 16000


@pytest.fixture(scope="module")
def bench():
    """scripts/bench_segment.py as a module."""
    yield load_script("bench_segment")
    del sys.modules["bench_segment"]


def pool(per_label: dict[str, int], n_clips: int = 1) -> list[Clip]:
    """Fake clips: ``per_label[corpus]`` speakers of each gender, ``n_clips`` each."""
    return [
        Clip(f"{k}/{x}{i}_{j}.flac", x, f"{x}{i}", 3.0, k)
        for k, n in per_label.items()
        for x in ("female", "male")
        for i in range(n)
        for j in range(n_clips)
    ]


def test_conversations_mix_corpora_and_alternate_genders(bench) -> None:
    clips = pool({"ls": 8, "so": 4}, n_clips=3)
    convs = bench.conversation_turns(clips, 4, seed=0)
    assert sorted(c.path for t in convs for c in t) == sorted(c.path for c in clips)
    for turns in convs:
        assert {c.corpus for c in turns} == {"ls", "so"}
        labels = [c.label for c in turns]
        assert all(a != b for a, b in zip(labels, labels[1:]))
        # Interleaved, not one corpus after the other: the rarer corpus's turns are spread.
        where = [i for i, c in enumerate(turns) if c.corpus == "ls"]
        assert where[0] < len(turns) / 2 < where[-1]


def test_one_corpus_deal_is_the_one_results_were_measured_on(bench) -> None:
    clips = pool({"librispeech": 7})
    rng = np.random.default_rng(3)  # the deal before corpora were dealt apart
    by_label = {x: [c for c in clips if c.label == x] for x in ("female", "male")}
    for group in by_label.values():
        rng.shuffle(group)
    f, m = by_label["female"][1::2], by_label["male"][1::2]
    old = [c for pair in zip(m, f) for c in pair] + m[len(f) :] + f[len(m) :]
    assert bench.conversation_turns(clips, 2, seed=3)[1] == old


def voice(label: str, seconds: float, seed: int = 0) -> np.ndarray:
    return synthetic_voice(seconds, label, speaker=seed, seed=seed)


def test_room_noise_surrounds_each_turn_and_the_reference_calls_it_nonspeech(bench) -> None:
    turns = [(voice("female", 1.5), "female"), (voice("male", 1.5, 1), "male")]
    wave, reference, parts = bench.conversation(
        turns, np.random.default_rng(0), turn_noise=(0.5, 1.0), noise_rng=np.random.default_rng(1)
    )
    assert all(a[1] == b[0] for a, b in zip(parts, parts[1:]))
    assert parts[-1][1] == pytest.approx(wave.size / SR)
    for j, (*_, what) in enumerate(parts):
        if what in ("female", "male"):
            assert parts[j - 1][2] == parts[j + 1][2] == bench.ROOM
    room = [(s, e) for s, e, what in parts if what == bench.ROOM]
    assert len(room) == 4 and all(0.5 - 1e-6 <= e - s <= 1.0 + 1e-6 for s, e in room)
    ref = bench.frames_of(reference, round(wave.size / SR / bench.FRAME_S), bench.CLASSES)
    for s, e in room:
        chunk = wave[round(s * SR) : round(e * SR)]
        level = 10 * np.log10(np.mean(np.square(chunk, dtype=np.float64)))
        assert -79 < level < -31  # a room's floor: audible on a meter, far under speech
        assert (ref[round(s / bench.FRAME_S) : round(e / bench.FRAME_S)] == 2).all()
    spans = bench.turn_spans(parts, ["a", "b"])
    assert [(s, e) for s, e, _ in spans] == [(room[0][0], room[1][1]), (room[2][0], room[3][1])]
    # Pauses and inserts are drawn as they are without room noise.
    _, same_ref, plain = bench.conversation(turns, np.random.default_rng(0))
    kept = [(round(e - s, 6), w) for s, e, w in parts if w != bench.ROOM]
    assert kept == [(round(e - s, 6), w) for s, e, w in plain] and len(same_ref) == len(reference)


def test_written_conversations_score_per_corpus(bench, tmp_path: Path) -> None:
    clips = []
    for k, corpus in enumerate(("ls", "so")):
        for label in ("female", "male"):
            path = tmp_path / f"{corpus}_{label}.wav"
            save_audio(path, voice(label, 1.2, k), SR)
            clips.append(Clip(str(path), label, f"{corpus}{label}", 1.2, corpus))
    [f] = bench.write_conversations(clips, 1, 0, tmp_path / "audio", turn_noise=(0.5, 0.6))
    assert f["corpora"] == {"ls": 2, "so": 2} and 4.0 <= f["room_noise_seconds"] <= 4.8 + 1e-6
    assert [tag for *_, tag in f["turn_spans"]] == [c.corpus for c in bench.conversation_turns(
        clips, 1, 0)[0]]  # fmt: skip
    # Every turn's speech is called unknown in corpus "so", right in corpus "ls".
    so = [(s, e) for s, e, tag in f["turn_spans"] if tag == "so"]
    hyp = [(a, b, "unknown" if any(s <= a < e for s, e in so) else x) for a, b, x in f["reference"]]
    report = bench.score_files([f], {f["path"]: hyp})
    per = report["per_corpus"]
    assert set(per) == {"ls", "so"}
    assert per["ls"]["unknown_of_speech"] == 0 and per["ls"]["macro_f1"] == 1.0
    assert per["so"]["unknown_of_speech"] == per["so"]["unknown_share"] == 1.0
    assert 0 < report["scores"]["unknown_of_speech"] < 1
    assert per["ls"]["f1_nonspeech"] == 1.0  # the room noise inside its turns is non-speech
    assert len(bench.report_rows(report, "fold 0")) == 3
    alarms = report["false_alarm_by_part"]
    assert set(alarms) <= {"clip", "room noise", "pause", "insert"}
    assert alarms["room noise"]["nonspeech_seconds"] == pytest.approx(f["room_noise_seconds"], 0.01)
    assert all(v["false_alarm_seconds"] == 0 for v in alarms.values())
    # A hypothesis that calls the first turn's leading room noise speech is caught there.
    lead = next((s, e) for s, e, what in f["parts"] if what == bench.ROOM)
    report = bench.score_files([f], {f["path"]: [*hyp, (*lead, "male")]})
    alarms = report["false_alarm_by_part"]
    assert alarms["room noise"]["false_alarm_seconds"] == pytest.approx(lead[1] - lead[0], abs=0.02)
    assert "room noise" in bench.alarm_line({"fold": 0, **report})
    # Each turn is named by its speaker: "so"'s turns are all unknown, none wrong.
    scored = bench.score_files([f], {f["path"]: hyp})
    lost = scored["lost"]
    assert f["turn_speakers"] == [f"{c.corpus}/{c.speaker}" for c in bench.conversation_turns(
        clips, 1, 0)[0]]  # fmt: skip
    assert lost["wrong"] == 0 and lost["lost_turns"] == []
    assert 0 < lost["unknown"] < 1
    assert lost["unknown"] == pytest.approx(1 - scored["scores"]["gender_accuracy"])


def test_unknown_shares_on_hand_made_frames(bench) -> None:
    ref = bench.frames_of([(1.0, 3.0, "female"), (4.0, 6.0, "male")], 700, bench.CLASSES)
    hyp_segments = [
        (1.0, 2.0, "female"),
        (2.0, 3.0, "unknown"),  # 1 s of reference speech called unknown
        (4.0, 5.5, "male"),  # 0.5 s missed
        (6.2, 6.5, "unknown"),  # 0.3 s false alarm, unknown
    ]
    s = bench.frame_scores(bench.frame_counts(ref, bench.frames_of(hyp_segments, 700, bench.HYP)))
    assert s["unknown_share"] == pytest.approx(100 / 350)  # of detected reference speech
    assert s["unknown_of_speech"] == pytest.approx(100 / 400)  # of all reference speech
    assert s["unknown_of_detected"] == pytest.approx(130 / 380)  # of all speech output
    assert s["speech_seconds"] == pytest.approx(4.0)
    assert s["gender_accuracy"] == pytest.approx(250 / 350)
    masks = bench.turn_masks([(0.5, 3.5, "a"), (3.5, 6.8, "b")], 700)
    assert (
        masks["a"].sum() == 300 and masks["b"].sum() == 330 and not (masks["a"] & masks["b"]).any()
    )


def test_lost_accuracy_tells_unknown_from_voices_answered_wrong(bench) -> None:
    parts = [(0.0, 1.0, "pause"), (1.0, 3.0, "female"), (3.0, 4.0, "pause"), (4.0, 6.0, "male")]
    parts += [(6.0, 7.0, "pause"), (7.0, 9.0, "female")]
    ref = bench.frames_of([p for p in parts if p[2] != "pause"], 900, bench.CLASSES)
    hyp_segments = [
        (1.0, 2.5, "female"),
        (2.5, 3.0, "unknown"),  # a stretch of a right turn
        (4.0, 6.0, "female"),  # a man answered as a woman: his whole turn
        (7.2, 8.8, "female"),  # 0.2 s missed (not detected: not counted)
        (8.8, 9.0, "male"),  # a wrong tail in a right turn
    ]
    hyp = bench.frames_of(hyp_segments, 900, bench.HYP)
    turns = bench.turn_outcomes(parts, ["ls/a", "so/b", "ls/c"], ref, hyp)
    assert [(t["detected"], t["right"], t["wrong"], t["unknown"]) for t in turns] == [
        (200, 150, 0, 50),
        (200, 0, 200, 0),
        (180, 160, 20, 0),
    ]
    lost = bench.lost_accuracy(turns, [0.5])
    assert lost["unknown"] == pytest.approx(50 / 580) and lost["wrong"] == pytest.approx(220 / 580)
    assert lost["wrong_in_lost_turns"] == pytest.approx(200 / 580)
    assert [t["speaker"] for t in lost["lost_turns"]] == ["so/b"]
    s = bench.frame_scores(bench.frame_counts(ref, hyp))
    assert s["gender_accuracy"] == pytest.approx(1 - lost["unknown"] - lost["wrong"])
    assert lost["unknown_voices"] == [
        {"speaker": "ls/a", "unknown_s": pytest.approx(0.5), "detected_s": pytest.approx(2.0)}
    ]
    line = bench.lost_line(lost, "fold 0")
    assert "unknown 8.62% (1 segments, median 0.5 s, on 1 voice: 100% on ls/a 0.5 s)" in line
    assert "1 turn answered mostly wrong: so/b" in line
    other = {**lost["unknown_voices"][0], "speaker": "ls/d", "unknown_s": 1.5}
    both = bench.mean_lost([{"lost": lost}, {"lost": {**lost, "unknown_voices": [other]}}])
    assert [v["speaker"] for v in both["unknown_voices"]] == ["ls/d", "ls/a"]
    assert ", on 2 voices: 100% on ls/d 1.5 s, ls/a 0.5 s)" in bench.lost_line(both, "mean")
    assert bench.unknown_voices(both, most=1) == ", on 2 voices: 75% on ls/d 1.5 s"
    both = bench.mean_lost([{"lost": lost}, {"lost": {**lost, "unknown": 0.0}}])
    assert both["unknown"] == pytest.approx(25 / 580) and len(both["lost_turns"]) == 2
    assert both["unknown_segments_s"] == [0.5, 0.5]


def test_a_sweep_keeps_the_default_segments(bench, tmp_path: Path) -> None:
    default = bench.parse_args([])
    assert default.min_confidence is None and bench.segment_options(default) == []
    assert bench.segments_csv(tmp_path, default) == tmp_path / "segments.csv"
    swept = bench.parse_args(["--min-confidence", "0.6"])
    assert bench.segment_options(swept) == ["--min-confidence", "0.6"]
    assert bench.segments_csv(tmp_path, swept) == tmp_path / "segments_c0.6.csv"
    for bad in ("1.5", "-0.1"):
        with pytest.raises(SystemExit):
            bench.parse_args(["--min-confidence", bad])
    both = bench.parse_args(["--min-confidence", "0.6", "--bridge", "0"])
    assert bench.segment_options(both) == ["--min-confidence", "0.6", "--bridge", "0.0"]
    assert bench.segments_csv(tmp_path, both) == tmp_path / "segments_c0.6_b0.csv"
    assert (bench.segment_config(both).min_confidence, bench.segment_config(both).bridge_s) == (
        0.6,
        0.0,
    )
    assert bench.segment_config(default) == bench.SegmentConfig()
    with pytest.raises(SystemExit):
        bench.parse_args(["--bridge", "-1"])


def test_turn_noise_arguments(bench) -> None:
    manifest = ["--manifest", "so.csv"]
    assert bench.parse_args([]).turn_noise == (0.0, 0.0)
    assert bench.parse_args(manifest).turn_noise == bench.TURN_NOISE_S == (0.5, 3.0)
    assert bench.parse_args([*manifest, "--turn-noise", "0", "0"]).turn_noise == (0.0, 0.0)
    assert bench.parse_args(["--turn-noise", "1", "1"]).turn_noise == (1.0, 1.0)
    for bad in (["2", "1"], ["-0.5", "1"], ["-2", "-1"], ["1"]):
        with pytest.raises(SystemExit):
            bench.parse_args(["--turn-noise", *bad])


def test_a_reused_model_must_be_held_out(bench, tmp_path: Path) -> None:
    test = pool({"ls": 1, "so": 1})
    record = tmp_path / "speakers.json"
    bench.check_held_out(record, test, several_corpora=False)  # one corpus: older runs trusted
    with pytest.raises(bench.HeldOutError, match="missing"):
        bench.check_held_out(record, test, several_corpora=True)
    record.write_text(json.dumps({"trained": ["so/female0", "ls/other"]}))
    with pytest.raises(bench.HeldOutError, match="1 of this fold's test speakers"):
        bench.check_held_out(record, test, several_corpora=True)
    record.write_text(json.dumps({"trained": ["ls/other"]}))
    bench.check_held_out(record, test, several_corpora=True)


def fake_corpora(root: Path, speakers: int = 4) -> tuple[Path, Path]:
    """A LibriSpeech tree and a second corpus's manifest, ``speakers`` per gender in each."""
    ls = root / "LibriSpeech"
    rows = [";ID  |SEX| SUBSET           |MINUTES| NAME"]
    lines = ["path,label,speaker,corpus"]
    for i in range(2 * speakers):
        label, spk = ("female", "male")[i % 2], str(100 + i)
        rows.append(f"{spk:<5}| {label[0].upper()} | train-clean-100  | 25.00 | Reader {spk}")
        path = ls / "train-clean-100" / spk / "7" / f"{spk}-7-0000.flac"
        save_audio(path, voice(label, 2.5, i), SR)
        save_audio(root / "so" / f"s{i}.flac", voice(label, 2.5, 50 + i), SR)
        lines.append(f"s{i}.flac,{label},so{i},so")
    (ls / "SPEAKERS.TXT").write_text("\n".join(rows) + "\n")
    (root / "so" / "manifest.csv").write_text("\n".join(lines) + "\n")
    return ls, root / "so" / "manifest.csv"


def test_a_fold_end_to_end_says_where_gender_accuracy_went(
    bench, tmp_path: Path, toy_model: Path, capsys
) -> None:
    ls, so = fake_corpora(tmp_path)
    argv = ["--root", str(ls), "--manifest", str(so), "--folds", "2", "--fold", "0"]
    argv += ["--model", str(toy_model), "--conversations", "1", "-q"]
    argv += ["--work", str(tmp_path / "work"), "--out", str(tmp_path / "out")]
    assert bench.main([*argv, "--min-confidence", "0.6"]) == 0
    printed = capsys.readouterr().out
    assert "fold 0: detected speech answered unknown" in printed
    [report_path] = (tmp_path / "out").glob("*_fold0.json")
    saved = json.loads(report_path.read_text())
    assert "--min-confidence 0.6" in saved["command"]
    lost = saved["reports"][0]["lost"]
    assert {"unknown", "wrong", "wrong_in_lost_turns", "lost_turns", "unknown_segments_s"} <= set(
        lost
    )
    scores = saved["reports"][0]["scores"]
    assert lost["unknown"] + lost["wrong"] == pytest.approx(1 - scores["gender_accuracy"])
    assert "turn_speakers" not in saved["reports"][0]["conversations"][0]
    # The threshold's segments are kept apart from the default's.
    assert (tmp_path / "work" / "fold0" / "segments_c0.6.csv").is_file()
    assert not (tmp_path / "work" / "fold0" / "segments.csv").exists()
