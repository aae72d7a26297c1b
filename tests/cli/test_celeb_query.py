"""``closest_celeb.py query`` on audio that must get no name (issue 14): each bad file is
one ``error:`` line naming it, and a run where every file is bad exits 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from keras_spkid.audio.io import load_audio
from keras_spkid.cli.celeb import main
from tests.fixtures.bad_audio import REASONS, make_bad_audio

GALLERY = (
    Path(__file__).resolve().parents[2] / "keras_spkid" / "pretrained" / "default" / "gallery.npz"
)


@pytest.mark.slow  # loads and traces the default CAM++ twice (about 40 s on 2 cores)
def test_bad_audio_gets_an_error_not_a_name(tmp_path, shared_data, capsys):
    speech = load_audio(shared_data / "librispeech_1utt" / "5703/5703-47198-0000.flac")
    made = make_bad_audio(tmp_path, speech)
    bad = [str(made[name]) for name in REASONS]
    command = ["query", "--gallery", str(GALLERY)]
    status = main([*command, "--json", "--audio", *bad, str(made["inverted_stereo.wav"])])
    assert status == 1  # every bad file failed, the stereo one answered
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["audio"] for line in lines] == [*bad, str(made["inverted_stereo.wav"])]
    for line, name in zip(lines, REASONS):
        assert "matches" not in line and REASONS[name] in line["error"], line
    assert lines[-1]["matches"]
    assert main([*command, "--audio", *bad]) == 2
    out, err = capsys.readouterr()
    errors = [line for line in err.splitlines() if line.startswith("error: ")]
    assert not out and len(errors) == len(bad)
    assert all(path in line for path, line in zip(bad, errors))


@pytest.mark.slow  # loads and traces the default CAM++ (about 25 s on 2 cores)
def test_a_query_with_too_little_speech_gets_no_name(tmp_path, shared_data, capsys):
    """A 0.25 s mp3 of reader 5703 was repeated to 1 s and named as another reader."""
    import subprocess

    import soundfile

    speech = load_audio(shared_data / "librispeech_1utt" / "5703/5703-47198-0000.flac")
    for seconds in (0.25, 0.2, 2.0):
        soundfile.write(
            tmp_path / f"q{seconds}.wav", speech[16000 : 16000 + int(seconds * 16000)], 16000
        )
    mp3 = tmp_path / "q0.25.mp3"
    subprocess.run(
        ["ffmpeg", "-v", "error", "-i", str(tmp_path / "q0.25.wav"), str(mp3)], check=True
    )
    short = [str(mp3), str(tmp_path / "q0.2.wav")]
    # one run (each loads the default CAM++): the short clips fail, the 2 s one is named
    query = ["query", "--gallery", str(GALLERY), "--audio", *short, str(tmp_path / "q2.0.wav")]
    assert main(query) == 1  # some failed (all failing is exit 2: the test above)
    out, err = capsys.readouterr()
    errors = err.strip().splitlines()
    assert len(errors) == 2, err
    for path, error in zip(short, errors):
        assert error.startswith(f"error: {path}: ") and "(at least 0.3 s" in error, error
    lines = out.splitlines()
    assert lines[0].startswith(f"{tmp_path / 'q2.0.wav'}: "), out
    assert "LibriSpeech 5703" in lines[1]
    assert not any(path in out for path in short), out  # no answer for the short clips
