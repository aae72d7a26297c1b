"""The tf.data augmentation: achieved SNRs, reverberation, determinism, graph mode."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import tensorflow as tf
from scipy.signal import convolve

from keras_spkid.augment.augmenter import KINDS, Augmenter
from keras_spkid.augment.mixing import scale_to_snr
from keras_spkid.augment.sets import split_musan
from keras_spkid.errors import DataError
from tests.augment.conftest import synthetic_rir

ONLY = {kind: {other: float(other == kind) for other in KINDS} for kind in KINDS}


@pytest.fixture(scope="module")
def sets(musan_raw, rirs_raw, tmp_path_factory):
    """``(musan_split, rir_root)`` prepared from the raw test folders."""
    split = tmp_path_factory.mktemp("musan") / "musan_split"
    split_musan(musan_raw / "musan", split, progress=False)
    return split, rirs_raw / "RIRS_NOISES" / "simulated_rirs"


@pytest.fixture(scope="module")
def speech(musan_raw):
    """Two seconds of real speech, ``float32 [32000]``."""
    path = musan_raw / "musan" / "speech" / "librivox" / "speech-librivox-0001.wav"
    return sf.read(path, dtype="float32")[0][16000:48000]


def _snr(clean, augmented) -> float:
    added = np.asarray(augmented, np.float64) - clean
    return 10 * np.log10(np.mean(clean.astype(np.float64) ** 2) / np.mean(added**2))


def test_scale_to_snr_is_exact():
    rng = np.random.default_rng(0)
    clean = rng.standard_normal(16000).astype(np.float32) * 0.05
    noise = rng.standard_normal(16000).astype(np.float32) * 3.0
    for snr in (-5.0, 0.0, 7.5, 20.0):
        scaled = scale_to_snr(clean, noise, tf.constant(snr)).numpy()
        assert _snr(clean, clean + scaled) == pytest.approx(snr, abs=0.01)
    assert not scale_to_snr(clean, np.zeros(16000, np.float32), tf.constant(5.0)).numpy().any()


@pytest.mark.parametrize("category, low, high", [("noise", 0, 15), ("music", 5, 15)])
def test_achieved_snr_of_noise_and_music(sets, speech, category, low, high):
    augmenter = Augmenter(*sets, weights=ONLY[category])
    snrs = [_snr(speech, augmenter(speech, [7, seed])) for seed in range(12)]
    assert all(low - 0.5 <= snr <= high + 0.5 for snr in snrs), snrs
    assert np.ptp(snrs) > 2.0  # drawn at random per example
    fixed = Augmenter(*sets, weights=ONLY[category], snr_db={category: (6.0, 6.0)})
    for seed in range(4):
        assert _snr(speech, fixed(speech, [3, seed])) == pytest.approx(6.0, abs=0.5)


def test_babble_adds_several_speakers_each_at_its_snr(sets, speech):
    # Five babble chunks, each 15 dB below the utterance: their sum is about
    # 15 - 10 log10(5) = 8 dB below it (speech chunks are nearly uncorrelated).
    augmenter = Augmenter(
        *sets, weights=ONLY["speech"], snr_db={"speech": (15.0, 15.0)}, sources={"speech": (5, 5)}
    )
    for seed in range(4):
        assert _snr(speech, augmenter(speech, [1, seed])) == pytest.approx(8.0, abs=1.5)
    default = Augmenter(*sets, weights=ONLY["speech"])  # 3-7 chunks at 13-20 dB each
    snrs = [_snr(speech, default(speech, [2, seed])) for seed in range(8)]
    assert all(13 - 10 * np.log10(7) - 1.5 < snr < 20 - 10 * np.log10(3) + 1.5 for snr in snrs)


def test_reverberation_is_a_normalised_convolution_of_the_same_length(sets, speech, tmp_path):
    rir = synthetic_rir(4000, 0.05, np.random.default_rng(5))
    room = tmp_path / "rirs" / "smallroom" / "Room001"
    room.mkdir(parents=True)
    sf.write(
        room / "Room001-00001.wav", np.round(rir * 32767).astype(np.int16), 16000, subtype="PCM_16"
    )
    augmenter = Augmenter(None, tmp_path / "rirs", weights=ONLY["reverb"])
    reverberant = augmenter(speech, [0, 0]).numpy()
    stored = sf.read(room / "Room001-00001.wav", dtype="float32")[0]
    expected = convolve(speech, stored / np.linalg.norm(stored), mode="full")[: speech.size]
    assert reverberant.shape == speech.shape
    np.testing.assert_allclose(reverberant, expected, atol=1e-4)
    mixed = Augmenter(*sets, weights=ONLY["reverb"])  # several rooms: a random one each
    outputs = [mixed(speech, [0, seed]).numpy() for seed in range(6)]
    assert all(out.shape == speech.shape for out in outputs)
    assert len({out.tobytes() for out in outputs}) > 1


def _clips(count: int, seed: int = 0) -> list[np.ndarray]:
    """Waveforms of different lengths (0.5 to 1.5 s)."""
    rng = np.random.default_rng(seed)
    return [
        (0.1 * rng.standard_normal(int(rng.integers(8000, 24000)))).astype(np.float32)
        for _ in range(count)
    ]


def _dataset(clips) -> tf.data.Dataset:
    return tf.data.Dataset.from_generator(
        lambda: iter(clips), output_signature=tf.TensorSpec([None], tf.float32)
    )


def test_tf_data_map_is_deterministic_and_seeded(sets):
    clips = _clips(40)
    augmenter = Augmenter(*sets, seed=11)
    first = [x.numpy() for x in augmenter.apply(_dataset(clips))]
    again = [x.numpy() for x in augmenter.apply(_dataset(clips), num_parallel_calls=1)]
    other = [x.numpy() for x in Augmenter(*sets, seed=12).apply(_dataset(clips))]
    assert all(np.array_equal(a, b) for a, b in zip(first, again))
    assert any(not np.array_equal(a, b) for a, b in zip(first, other))
    assert [x.shape for x in first] == [x.shape for x in clips]
    untouched = sum(np.array_equal(x, y) for x, y in zip(first, clips))
    assert 2 <= untouched <= 16  # 'none' is one kind in five


def test_batches_and_labels_pass_through_the_graph(sets):
    clips = np.stack([clip[:8000] for clip in _clips(8, seed=1)])
    labels = np.arange(8)
    dataset = tf.data.Dataset.from_tensor_slices((clips, labels)).batch(4)
    augmenter = Augmenter(*sets, seed=3)
    batches = list(augmenter.apply(dataset))
    assert [tuple(w.shape) for w, _ in batches] == [(4, 8000), (4, 8000)]
    assert np.array_equal(np.concatenate([y.numpy() for _, y in batches]), labels)
    eager = augmenter(clips[:4], tf.constant([3, 0], tf.int64)).numpy()
    np.testing.assert_array_equal(eager, batches[0][0].numpy())
    changed = [not np.array_equal(a, b) for a, b in zip(eager, clips[:4])]
    assert any(changed)  # examples of a batch get their own kinds


def test_unusable_sets_are_clear_errors(tmp_path, musan_raw):
    with pytest.raises(DataError, match="nothing to augment with"):
        Augmenter(tmp_path / "none", tmp_path / "none")
    room = tmp_path / "rirs" / "smallroom" / "Room001"
    room.mkdir(parents=True)
    sf.write(room / "r.wav", np.zeros(800, np.float32), 8000, subtype="FLOAT")
    with pytest.raises(DataError, match=r"r\.wav: 8000 Hz FLOAT audio; .*16-bit PCM"):
        Augmenter(None, tmp_path / "rirs")
