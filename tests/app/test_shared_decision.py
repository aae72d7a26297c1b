"""Every path that can say "unknown" decides with the same code and the same decision.

The model's calibration is swapped for a decision that names nobody, then for one that
names everybody; the Python API (``Gallery.identify``), the demo's Identify, Live and
Verify, and ``closest_celeb.py query`` must all follow it (none may keep a threshold of
its own, such as the old pair threshold, which lies between the two).
"""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import soxr

from keras_spkid.app.live import LiveListener
from keras_spkid.app.service import SpeakerService
from keras_spkid.audio.io import SAMPLE_RATE
from keras_spkid.cli.celeb import main as closest_celeb
from keras_spkid.scoring.decision import UNKNOWN, OpenSetDecision
from keras_spkid.search.gallery import Gallery

NOBODY = OpenSetDecision.fixed(0.9999, source="names nobody")
EVERYBODY = OpenSetDecision(((-1.0, -1.0),), gallery_sizes=(1, 100), source="names everybody")


@pytest.fixture(scope="module")
def model():
    """conv6: the decision code is the same for every model, and conv6 embeds 8x faster
    (each path here embeds the query again; ``closest_celeb.py`` also loads the model)."""
    from keras_spkid.inference.model_io import load_embedding_model

    return load_embedding_model("conv6")


def with_decision(model, decision):
    calibration = dataclasses.replace(model.calibration, open_set=decision.to_dict())
    return dataclasses.replace(model, calibration=calibration)


def live_decisions(service, x) -> set[str]:
    listener = LiveListener()
    pcm = np.round(soxr.resample(x, SAMPLE_RATE, 48000) * 32767).astype(np.int16)
    updates = [service.live(listener, 48000, pcm[i : i + 4800]) for i in range(0, 48000 * 3, 4800)]
    return {u.identification.decision for u in updates if u and u.identification}


@pytest.mark.parametrize("decision, expected", [(NOBODY, UNKNOWN), (EVERYBODY, "Alice")])
def test_every_path_follows_the_calibrated_decision(
    model, readers, tmp_path, capsys, decision, expected
):
    assert NOBODY.threshold_for(1, 3) > model.calibration.threshold > -1.0
    service = SpeakerService(with_decision(model, decision), tmp_path / "gallery.npz")
    service.enrol("Alice", readers["alice"].enrol_files)
    alice = readers["alice"]

    assert service.identify(str(alice.query_file)).decision == expected  # Identify tab
    assert live_decisions(service, alice.query) == {expected}  # Live tab
    verdict = service.verify(str(alice.enrol_files[0]), str(alice.query_file))  # Verify tab
    assert verdict.same is (expected != UNKNOWN)

    gallery = Gallery.load(service.gallery_path)  # the Python API, from the saved file
    assert gallery.decision == decision
    query = service.embed([alice.query], ["query"])
    assert gallery.identify(query)[0].decision == expected

    capsys.readouterr()
    status = closest_celeb(
        [
            "query",
            "--model",
            "conv6",
            "--gallery",
            str(service.gallery_path),
            "--audio",
            str(alice.query_file),
            "--json",
        ]
    )
    answer = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert status == 0 and answer["decision"] == expected
