"""Embeddings of an evaluation corpus: whole clips or fixed segments, made once and reused.

:func:`corpus_embeddings` is what every ``spkid eval`` command embeds a catalogue with:
it writes ``<out_dir>/embeddings-<corpus>-<tag>.npz`` and returns the file's contents
when a later command asks for the same model, clips and protocol.

Segments serve corpora with one clip per speaker (``librispeech_1utt``): each clip is
cut into non-overlapping segments of ``segment_seconds`` (the shorter remainder is
dropped unless it is the clip's only segment, as :class:`~keras_spkid.data.store.
UtteranceStore` does in training), and each segment is one "utterance" of the speaker,
named ``<clip path>#<index>``. Support and query segments of a speaker then come from
the same clip: same recording, different words, which is the corpus design.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from keras_spkid.audio.io import SAMPLE_RATE, load_audio
from keras_spkid.data.catalogue import content_key
from keras_spkid.data.store import segment_starts
from keras_spkid.errors import DataError, SpkidError
from keras_spkid.inference.embedding_set import EmbeddingSet
from keras_spkid.inference.encoder import SpeakerEncoder
from keras_spkid.inference.extract import extract_embeddings, parts_dir_for
from keras_spkid.inference.model_io import EmbeddingModel

logger = logging.getLogger(__name__)

SEGMENT_MARK = "#"
"""Separates a clip's path from a segment's index in segment ids (``a/b.flac#3``)."""


def segment_id(path: str, index: int) -> str:
    """Name of segment ``index`` of the clip at ``path``: ``<path>#<index>``."""
    return f"{path}{SEGMENT_MARK}{index}"


def segment_clip(segment: str) -> str:
    """The clip path a :func:`segment_id` came from."""
    return segment.rsplit(SEGMENT_MARK, 1)[0]


def extract_segment_embeddings(
    model: EmbeddingModel,
    paths: list[str],
    root,
    output,
    speakers: list[str] | None = None,
    segment_seconds: float = 2.0,
    crops: int = 0,
    crop_seconds: float = 3.0,
    progress: bool = True,
    info: dict | None = None,
) -> EmbeddingSet:
    """Embed every segment of every clip and save an :class:`EmbeddingSet` to ``output``.

    Each segment is embedded like a clip by :class:`~keras_spkid.inference.embedder.
    Embedder`: whole (``crops=0``) or as the mean over ``crops`` crops of
    ``crop_seconds`` inside it (e.g. a 1 s centre crop as a short query). Files that
    cannot be read are skipped with a warning. Meant for evaluation sets (minutes of
    audio): unlike :func:`~keras_spkid.inference.extract.extract_embeddings` it keeps
    everything in memory and does not resume.

    Args:
        info: more provenance to record in the set's ``info`` (e.g. a cache key).

    Returns:
        The set: ``paths`` are :func:`segment_id` names, ``speakers`` those of the clips,
        ``seconds`` each segment's length, ``info`` has ``segment_seconds``.

    Raises:
        DataError: no segment could be embedded.
    """
    segment_samples = round(segment_seconds * SAMPLE_RATE)
    embedder = SpeakerEncoder(model, crops=crops, crop_seconds=crop_seconds)
    pieces, names, owners = [], [], []
    for i, path in enumerate(tqdm(paths, unit="file", desc="reading", disable=not progress)):
        try:
            wave = load_audio(Path(root) / path)
            embedder.check(wave, Path(root) / path)
        except SpkidError as error:
            logger.warning("skipped %s", error)
            continue
        for k, start in enumerate(segment_starts(wave.size, segment_samples)):
            pieces.append(wave[start : start + segment_samples])
            names.append(segment_id(path, k))
            owners.append(i)
    if not pieces:
        raise DataError(f"{output}: none of the {len(paths)} files gave a segment to embed")
    info = {
        **(info or {}),
        "model": str(model.path),
        "model_sha256": model.sha256,
        "crops": crops,
        "crop_seconds": crop_seconds if crops else None,
        "dim": model.dim,
        "segment_seconds": segment_seconds,
    }
    result = EmbeddingSet(
        names,
        embedder(pieces, names),  # one call: equal lengths batch together
        None if speakers is None else np.asarray(speakers)[owners],
        [p.size / SAMPLE_RATE for p in pieces],
        info,
    )
    result.save(output)
    return result


def embedding_tag(
    crops: int = 0, crop_seconds: float = 3.0, segment_seconds: float | None = None
) -> str:
    """How clips were embedded, for file names.

    ``full``, ``crop1s``, ``10crops`` or ``seg2s-full``.
    """
    tag = "full" if not crops else f"crop{crop_seconds:g}s" if crops == 1 else f"{crops}crops"
    return f"seg{segment_seconds:g}s-{tag}" if segment_seconds else tag


SOURCE_KEY = "source_key"
"""``info`` key of the :func:`~keras_spkid.data.catalogue.content_key` of the clips embedded."""


def _cached(output: Path, model: EmbeddingModel, key: str, **settings) -> EmbeddingSet | None:
    """The set at ``output`` if it was made from the same clips (``key``), model and settings."""
    if not output.is_file() or parts_dir_for(output).exists():
        return None
    cached = EmbeddingSet.load(output)
    info = cached.info
    wanted = {SOURCE_KEY: key, "model_sha256": model.sha256, **settings}
    if len(cached) and all(info.get(name) == value for name, value in wanted.items()):
        logger.info("reusing %s", output)
        return cached
    return None


def corpus_embeddings(
    model: EmbeddingModel,
    catalogue,
    out_dir,
    crops: int = 0,
    crop_seconds: float = 3.0,
    segment_seconds: float | None = None,
    progress: bool = True,
) -> EmbeddingSet:
    """Embeddings of a catalogue's clips (or of their segments), extracted once and reused.

    The set is written to ``<out_dir>/embeddings-<catalogue name>-<tag>.npz`` (see
    :func:`embedding_tag`) and reused only when that file was made from this catalogue as
    it is now (:meth:`~keras_spkid.data.catalogue.Catalogue.content_key`: resolved root,
    clips, speakers, file sizes and times), by the same model (same file contents: a
    retrained model at the same path is embedded again, and the front end is inside the
    model) with the same crops and segments.

    Args:
        model: a loaded raw-audio model.
        catalogue: the clips (a :class:`~keras_spkid.data.catalogue.Catalogue`).
        out_dir: folder of the embedding files.
        crops, crop_seconds: whole clips/segments (0) or the mean over fixed crops.
        segment_seconds: cut clips into segments of this length (``None``: whole clips).
        progress: show a progress bar.
    """
    paths = [u.path for u in catalogue]
    tag = embedding_tag(crops, crop_seconds, segment_seconds)
    output = Path(out_dir) / f"embeddings-{catalogue.name or 'corpus'}-{tag}.npz"
    key = catalogue.content_key()
    speakers = [u.speaker for u in catalogue]
    if not segment_seconds:
        return _clip_embeddings(
            model, paths, catalogue.root, output, key, speakers, crops, crop_seconds, progress
        )
    settings = _crop_settings(crops, crop_seconds)
    cached = _cached(output, model, key, **settings, segment_seconds=segment_seconds)
    if cached is not None:
        return cached
    result = extract_segment_embeddings(
        model,
        paths,
        catalogue.root,
        output,
        speakers,
        segment_seconds,
        crops,
        crop_seconds,
        progress,
        info={SOURCE_KEY: key},
    )
    logger.info(
        "embedded %d segments of %g s from %d files", len(result), segment_seconds, len(paths)
    )
    return result


def list_embeddings(
    model: EmbeddingModel,
    paths: list[str],
    root,
    output,
    crops: int = 0,
    crop_seconds: float = 3.0,
    progress: bool = True,
) -> EmbeddingSet:
    """Embeddings of the files of a list (a trial list's), extracted once and reused.

    Like :func:`corpus_embeddings`: ``output`` is reused only when made from these paths
    under this ``root`` as they are now, with the same model and crops.
    """
    output = Path(output)
    key = content_key(root, paths)
    return _clip_embeddings(model, paths, root, output, key, None, crops, crop_seconds, progress)


def _crop_settings(crops: int, crop_seconds: float) -> dict:
    """The ``info`` settings that decide whole-clip or crop embeddings."""
    return {"crops": crops, "crop_seconds": crop_seconds if crops else None}


def _clip_embeddings(
    model, paths, root, output: Path, key: str, speakers, crops, crop_seconds, progress
) -> EmbeddingSet:
    """Embeddings of whole clips (or their crops) at ``output``: reused when made from the
    same clips (``key``), model and crops, else extracted there (resumably)."""
    cached = _cached(output, model, key, **_crop_settings(crops, crop_seconds))
    if cached is not None:
        return cached
    summary = extract_embeddings(
        model,
        paths,
        root,
        output,
        speakers=speakers,
        crops=crops,
        crop_seconds=crop_seconds,
        progress=progress,
        info={SOURCE_KEY: key},
    )
    logger.info("%s", summary)
    return EmbeddingSet.load(output)
