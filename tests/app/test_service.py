"""SpeakerService with the default model on real speech: enrol, identify, "unknown",
verify, live, the gallery on disk (restart, rename, delete), names and bad input."""

from __future__ import annotations

import numpy as np
import pytest
import soxr

from keras_spkid.app.galleries import MODEL_KEY
from keras_spkid.app.live import LiveListener
from keras_spkid.app.service import SpeakerService, clean_name
from keras_spkid.audio.io import SAMPLE_RATE
from keras_spkid.errors import DataError, SpkidError
from keras_spkid.search.gallery import UNKNOWN, Gallery


def enrol_both(service, readers):
    service.enrol("Alice", readers["alice"].enrol_files)
    service.enrol("Bob", [str(p) for p in readers["bob"].enrol_files])


def test_enrol_then_identify_each_reader(service, readers):
    enrol_both(service, readers)
    assert service.speakers() == [("Alice", 3), ("Bob", 3)]
    for name, reader in (("Alice", readers["alice"]), ("Bob", readers["bob"])):
        result = service.identify(str(reader.query_file))
        assert result.decision == name
        assert result.matches[0].name == name and len(result.matches) == 2
        assert result.matches[0].score - result.matches[1].score > 0.2


def test_browser_buffer_identifies_like_the_file(service, readers):
    enrol_both(service, readers)
    x = readers["bob"].query
    pcm = np.round(soxr.resample(x, SAMPLE_RATE, 48000) * 32767).astype(np.int16)
    from_browser = service.identify((48000, np.stack([pcm, pcm], axis=1)))
    from_file = service.identify(str(readers["bob"].query_file))
    assert from_browser.decision == "Bob"
    assert abs(from_browser.matches[0].score - from_file.matches[0].score) < 0.01


def test_unknown_under_the_calibrated_threshold(service, model, readers):
    service.enrol("Alice", readers["alice"].enrol_files)
    assert service.threshold == model.calibration.threshold
    stranger = service.identify(str(readers["bob"].query_file))
    assert stranger.matches[0].name == "Alice"
    assert stranger.matches[0].score < service.threshold and stranger.decision == UNKNOWN
    assert service.identify(str(readers["alice"].query_file)).decision == "Alice"


def test_verify_same_and_different(service, readers):
    alice, bob = readers["alice"], readers["bob"]
    same = service.verify(str(alice.enrol_files[0]), str(alice.query_file))
    different = service.verify(str(alice.query_file), str(bob.query_file))
    assert same.same is True and different.same is False
    assert same.score >= same.threshold > different.score


def test_messages_for_empty_gallery_short_and_silent_clips(service, readers):
    with pytest.raises(DataError, match="nobody is enrolled yet"):
        service.identify(str(readers["alice"].query_file))
    with pytest.raises(SpkidError, match="at least one clip"):
        service.enrol("Alice", [None, None])
    with pytest.raises(SpkidError, match="enrol at most 5"):
        service.enrol("Alice", readers["alice"].enrol_files * 2)
    short = (SAMPLE_RATE, readers["alice"].query[: SAMPLE_RATE // 4])
    with pytest.raises(SpkidError, match=r"^clip 2: too short: 0.25 s"):
        service.enrol("Alice", [readers["alice"].enrol_files[0], short])
    with pytest.raises(SpkidError, match="^query: clip is silent"):
        service.identify((48000, np.zeros(48000, np.int16)))
    assert service.speakers() == [] and not service.gallery_path.exists()


def test_gallery_survives_a_restart_with_edits(service, model, readers):
    enrol_both(service, readers)
    added = service.enrol("alice", [readers["alice"].enrol_files[0]])  # same person, any case
    assert (added.name, added.added, added.clips, added.new) == ("Alice", 1, 4, False)
    assert service.rename("Bob", "Robert <b>") == "Robert b"
    restarted = SpeakerService(model, service.gallery_path)
    assert restarted.speakers() == [("Alice", 4), ("Robert b", 3)]
    assert restarted.identify(str(readers["bob"].query_file)).decision == "Robert b"
    restarted.delete("alice")
    assert SpeakerService(model, service.gallery_path).speakers() == [("Robert b", 3)]
    restarted.delete("Robert b")
    assert not service.gallery_path.exists()
    assert SpeakerService(model, service.gallery_path).speakers() == []


def test_rename_and_delete_refusals(service, readers):
    enrol_both(service, readers)
    with pytest.raises(DataError, match="already enrolled"):
        service.rename("Alice", "BOB")
    with pytest.raises(DataError, match="nobody called 'Carol'"):
        service.delete("Carol")
    with pytest.raises(DataError, match="choose an enrolled person"):
        service.rename(None, "Carol")
    assert service.speakers() == [("Alice", 3), ("Bob", 3)]


def test_clean_name_keeps_names_and_drops_markup_and_paths():
    assert clean_name("  Zoë   O'Brien-Smith ") == "Zoë O'Brien-Smith"
    assert clean_name("<script>alert(1)</script>") == "scriptalert(1)script"
    assert clean_name("../../etc/passwd") == "....etcpasswd"
    assert clean_name("李小龍") == "李小龍"
    assert len(clean_name("x" * 100)) == 40
    for bad in ("", "   ", "<>/", None, "Unknown"):
        with pytest.raises(SpkidError, match="^name: "):
            clean_name(bad)


def test_gallery_of_another_model_is_refused_but_editable(service, model, readers):
    enrol_both(service, readers)
    gallery = Gallery.load(service.gallery_path)
    gallery.meta[MODEL_KEY] = "0" * 64
    gallery.save(service.gallery_path)
    old = SpeakerService(model, service.gallery_path)
    with pytest.raises(DataError, match="enrol them again"):
        old.identify(str(readers["alice"].query_file))
    with pytest.raises(DataError, match="enrol them again"):
        old.enrol("Carol", readers["alice"].enrol_files[:1])
    old.delete("Alice")
    old.delete("Bob")
    assert old.enrol("Carol", readers["alice"].enrol_files[:1]).new
    assert Gallery.load(service.gallery_path).meta[MODEL_KEY] == old.fingerprint


def test_live_names_the_speaker_and_ignores_silence(service, readers):
    enrol_both(service, readers)
    listener = LiveListener()
    x = readers["bob"].query
    pcm = np.round(soxr.resample(x, SAMPLE_RATE, 48000) * 32767).astype(np.int16)
    silence = np.zeros(48000 * 3, np.int16)
    stream = np.concatenate([pcm, silence])
    updates = [
        service.live(listener, 48000, stream[i : i + 4800])
        for i in range(0, len(stream) - 4799, 4800)
    ]
    updates = [u for u in updates if u is not None]
    named = [u.identification.decision for u in updates if u.identification is not None]
    assert len(named) >= 5 and set(named) == {"Bob"}
    assert updates[-1].identification is None  # 3 s of silence: no new answer


def test_closest_celebrity_finds_the_reader(service, readers):
    query = readers["alice"].query[3 * SAMPLE_RATE :]  # 12 s on: after the gallery's 4 x 3 s
    result = service.closest_celebrity((SAMPLE_RATE, query))
    assert result.matches[0].name == "LibriSpeech 5703" and len(result.matches) == 5


def test_celebrity_gallery_of_another_model(model, tmp_path, readers):
    gallery = Gallery.from_embeddings(np.eye(4, 32), ["a", "b", "c", "d"])
    gallery.save(tmp_path / "vox.npz")
    service = SpeakerService(model, tmp_path / "people.npz", tmp_path / "vox.npz")
    with pytest.raises(DataError, match=f"32-dim embeddings but the model gives {model.dim}"):
        service.closest_celebrity(str(readers["alice"].query_file))
    missing = SpeakerService(model, tmp_path / "people.npz", tmp_path / "none.npz")
    with pytest.raises(DataError, match="gallery not found"):
        missing.closest_celebrity(str(readers["alice"].query_file))
