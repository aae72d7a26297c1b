"""``closest_celeb.py query`` on audio that must get no name (issue 14): each bad file is
one ``error:`` line naming it, and a run where every file is bad exits 2."""

from __future__ import annotations

import json
from pathlib import Path

from keras_spkid.audio.io import load_audio
from keras_spkid.cli.celeb import main
from tests.fixtures.bad_audio import REASONS, make_bad_audio

GALLERY = (
    Path(__file__).resolve().parents[2] / "keras_spkid" / "pretrained" / "default" / "gallery.npz"
)


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
