"""Audio I/O: formats, mono mix, resampling, and one clear error per kind of bad file."""

import os

import numpy as np
import pytest
import soundfile as sf

from conftest import voice
from vgd.audio import AudioError, _decoder_notes_dropped, load_audio, save_audio
from vgd.config import AudioConfig

CFG = AudioConfig()


@pytest.mark.parametrize(
    "ext,fmt,subtype",
    [
        (".wav", "WAV", "PCM_16"),
        (".wav", "WAV", "PCM_24"),
        (".wav", "WAV", "FLOAT"),
        (".flac", "FLAC", "PCM_16"),
        (".ogg", "OGG", "VORBIS"),
        (".mp3", "MP3", "MPEG_LAYER_III"),
    ],
)
def test_reads_common_formats(tmp_path, ext, fmt, subtype):
    path = tmp_path / f"a{ext}"
    sf.write(path, voice(150, 1.0), 16000, format=fmt, subtype=subtype)
    wave = load_audio(path)
    assert wave.dtype == np.float32 and wave.ndim == 1
    assert abs(wave.size - 16000) < 2000  # lossy codecs add a little padding


def test_stereo_44k1_is_mixed_and_resampled(tmp_path):
    left = voice(150, 1.0, rate=44100)
    stereo = np.stack([left, -left * 0 + 0.5 * left], axis=1)
    sf.write(tmp_path / "s.wav", stereo, 44100)
    wave = load_audio(tmp_path / "s.wav")
    assert wave.size == 16000
    expected = 0.75 * np.sqrt(np.mean(left**2))
    assert np.sqrt(np.mean(wave**2)) == pytest.approx(expected, rel=0.05)


def test_int_pcm_8k_is_upsampled(tmp_path):
    pcm = (voice(120, 1.0, rate=8000) * 32767).astype(np.int16)
    sf.write(tmp_path / "low.wav", pcm, 8000, subtype="PCM_16")
    assert load_audio(tmp_path / "low.wav").size == 16000


def test_non_ascii_name(tmp_path):
    save_audio(tmp_path / "voix_éèà_声.wav", voice(200, 1.0), 16000)
    assert load_audio(tmp_path / "voix_éèà_声.wav").size == 16000


def _reason(path, config=CFG):
    with pytest.raises(AudioError) as info:
        load_audio(path, config)
    assert str(path) in str(info.value) and "\n" not in str(info.value)
    return info.value.reason


def test_missing(tmp_path):
    assert _reason(tmp_path / "nope.wav").startswith("missing")


def test_empty_file(tmp_path):
    (tmp_path / "e.wav").write_bytes(b"")
    assert _reason(tmp_path / "e.wav").startswith("empty (0 bytes)")


def test_zero_frames(tmp_path):
    sf.write(tmp_path / "z.wav", np.zeros(0, np.float32), 16000)
    assert _reason(tmp_path / "z.wav").startswith("empty (0 audio frames)")


def test_not_audio(tmp_path):
    (tmp_path / "t.wav").write_text("this is a text file, not a wave")
    assert _reason(tmp_path / "t.wav").startswith("not audio or corrupt")


def test_fake_mp3_gets_one_line_and_no_decoder_notes(tmp_path, capfd):
    """libmpg123 prints "Note: Illegal Audio-MPEG-Header" when it probes a file that is not MP3,
    and libsndfile then says the existing file "does not exist"."""
    rng = np.random.default_rng(0)
    (tmp_path / "fake.mp3").write_bytes(rng.integers(0, 256, 3000, dtype=np.uint8).tobytes())
    reason = _reason(tmp_path / "fake.mp3")
    assert reason == "not audio or corrupt (no format libsndfile can decode)"
    os.write(2, b"still here\n")  # stderr works again after the probe
    assert capfd.readouterr().err == "still here\n"


def test_only_decoder_notes_are_dropped_from_stderr(capfd):
    with _decoder_notes_dropped():
        os.write(2, b"Note: Illegal Audio-MPEG-Header 0x00000000 at offset 2.\nanother thread\n")
    assert capfd.readouterr().err == "another thread\n"


@pytest.mark.parametrize("broken", ["tempfile.TemporaryFile", "os.dup"])
def test_a_probe_still_answers_when_stderr_cannot_be_held(tmp_path, monkeypatch, broken):
    def refuse(*args, **kwargs):
        raise OSError(24, "Too many open files")

    monkeypatch.setattr(broken, refuse)
    save_audio(tmp_path / "ok.wav", voice(150, 1.0), 16000)
    assert load_audio(tmp_path / "ok.wav").size == 16000
    (tmp_path / "t.wav").write_text("this is a text file, not a wave")
    assert _reason(tmp_path / "t.wav").startswith("not audio or corrupt")


def test_truncated_header_is_corrupt(tmp_path):
    save_audio(tmp_path / "c.flac", voice(150, 1.0), 16000)
    data = (tmp_path / "c.flac").read_bytes()
    (tmp_path / "c.flac").write_bytes(data[:20])
    assert _reason(tmp_path / "c.flac").startswith("not audio or corrupt")


def test_too_short(tmp_path):
    save_audio(tmp_path / "s.wav", voice(150, 0.2), 16000)
    assert _reason(tmp_path / "s.wav").startswith("too short (0.20 s")


def test_silent(tmp_path):
    sf.write(tmp_path / "q.wav", np.zeros(16000, np.float32), 16000)
    assert _reason(tmp_path / "q.wav").startswith("silent")
    sf.write(tmp_path / "hum.wav", 1e-5 * voice(100, 1.0), 16000)
    assert _reason(tmp_path / "hum.wav").startswith("silent")


def test_directory_is_not_audio(tmp_path):
    assert "directory" in _reason(tmp_path)
