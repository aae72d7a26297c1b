"""Search back ends agree; a VoxCeleb-sized gallery is searched in bounded memory."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest

from keras_spkid.search.index import FaissIndex, SklearnIndex, TFIndex, make_index
from keras_spkid.vectors import l2_normalize


def _gallery(n=3000, dim=64, seed=0):
    return l2_normalize(np.random.default_rng(seed).normal(size=(n, dim)))


@pytest.mark.parametrize("backend", ["sklearn", "tf", "faiss"])
def test_exact_backends_agree_with_numpy(backend):
    gallery = _gallery()
    queries = l2_normalize(np.random.default_rng(1).normal(size=(40, 64)))
    scores, idx = make_index(gallery, backend).search(queries, k=7)
    full = queries @ gallery.T
    expected = np.argsort(-full, axis=1, kind="stable")[:, :7]
    np.testing.assert_array_equal(idx, expected)
    np.testing.assert_allclose(scores, np.take_along_axis(full, expected, axis=1), atol=1e-5)


def test_tf_backend_merges_chunks():
    gallery = _gallery(n=1000)
    queries = gallery[[5, 500, 999]] + 0.01
    small = TFIndex(gallery, chunk=128)
    np.testing.assert_array_equal(
        small.search(queries, 5)[1], SklearnIndex(gallery).search(queries, 5)[1]
    )


def test_ivf_finds_noisy_copies():
    gallery = _gallery(n=5000)
    rng = np.random.default_rng(2)
    targets = rng.choice(len(gallery), 200, replace=False)
    queries = l2_normalize(gallery[targets] + 0.05 * rng.normal(size=(200, 64)))
    _, idx = FaissIndex(gallery, approximate=True).search(queries, 1)
    assert np.mean(idx[:, 0] == targets) >= 0.99


def test_auto_choice_and_k_larger_than_gallery():
    assert make_index(_gallery(n=10), "auto").name == "sklearn"
    scores, idx = make_index(_gallery(n=3), "sklearn").search(_gallery(n=1, seed=5), k=10)
    assert idx.shape == (1, 3) and np.all(np.diff(scores[0]) <= 0)
    with pytest.raises(ValueError, match="unknown search backend"):
        make_index(_gallery(n=3), "annoy")


@pytest.mark.slow
def test_voxceleb_sized_gallery_bounded_memory():
    """150,000 x 256 (VoxCeleb1's utterances): 1,000 queries never hold a 1,000 x 150,000 matrix."""
    rng = np.random.default_rng(0)
    gallery = l2_normalize(rng.normal(size=(150_000, 256)).astype(np.float32))
    picks = rng.choice(len(gallery), 1000, replace=False)
    queries = l2_normalize(gallery[picks] + 0.02 * rng.normal(size=(1000, 256)).astype(np.float32))
    index = SklearnIndex(gallery, working_memory_mb=64)
    tracemalloc.start()
    try:
        _, idx = index.search(queries, k=5)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    dense = 1000 * 150_000 * 8  # what one distance matrix would take (float64)
    assert peak < dense / 4, f"peak {peak / 2**20:.0f} MiB"
    assert np.mean(idx[:, 0] == picks) == 1.0
    _, approx = make_index(gallery, "auto").search(queries[:200], k=1)  # IVF above 20,000
    assert np.mean(approx[:, 0] == picks[:200]) >= 0.95
