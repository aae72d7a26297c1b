"""In-memory utterance store: every clip's frames in one array, indexed by speaker.

Samplers (:mod:`keras_spkid.data.episodes`) crop and gather from this store entirely
inside the TensorFlow graph, so serving an episode involves no Python. The store holds
cached log-mel features (``[total_frames, n_mels]``, from a
:class:`~keras_spkid.data.feature_cache.FeatureCache`).

Long single recordings (``librispeech_1utt`` has one 5-35 s clip per speaker) can be
cut into fixed-length segments so that each segment serves as one support or query item;
segments keep their recording id, so evaluation can keep them apart.
"""

from __future__ import annotations

import dataclasses
import logging

import numpy as np

from keras_spkid.data.catalogue import Catalogue
from keras_spkid.errors import DataError

logger = logging.getLogger(__name__)


def segment_starts(num_samples: int, segment_samples: int) -> np.ndarray:
    """Start offsets of a clip's (or features') non-overlapping segments.

    ``num_samples // segment_samples`` segments, the remainder dropped; a clip shorter
    than one segment is its own (shorter) single segment.
    """
    if segment_samples < 1:
        raise ValueError(f"segment_samples must be >= 1, got {segment_samples}")
    return np.arange(max(1, num_samples // segment_samples)) * segment_samples


@dataclasses.dataclass
class UtteranceStore:
    """Concatenated clips with their offsets, lengths and speaker labels.

    Attributes:
        data: ``[total_frames, n_mels]`` features.
        offsets: ``[n_items]`` int64 start of each item in ``data``.
        lengths: ``[n_items]`` int64 length of each item in frames.
        labels: ``[n_items]`` int32 speaker label (index into ``speakers``).
        speakers: sorted speaker ids.
        paths: ``[n_items]`` source file of each item (relative to the catalogue root).
        recordings: ``[n_items]`` recording id of each item.
    """

    data: np.ndarray
    offsets: np.ndarray
    lengths: np.ndarray
    labels: np.ndarray
    speakers: list[str]
    paths: list[str]
    recordings: list[str]

    def __len__(self) -> int:
        return len(self.offsets)

    @property
    def num_speakers(self) -> int:
        return len(self.speakers)

    def items_per_speaker(self) -> np.ndarray:
        """``[num_speakers]`` number of items of each speaker."""
        return np.bincount(self.labels, minlength=self.num_speakers)

    def item(self, index: int) -> np.ndarray:
        """The frames of item ``index``."""
        start = self.offsets[index]
        return self.data[start : start + self.lengths[index]]

    @classmethod
    def from_arrays(
        cls,
        catalogue: Catalogue,
        arrays: dict[str, np.ndarray],
        segment_frames: int | None = None,
    ) -> "UtteranceStore":
        """Build from ``{relative path: array}`` for the utterances of ``catalogue``.

        Utterances missing from ``arrays`` (they failed to decode) are skipped. With
        ``segment_frames``, each clip is cut into non-overlapping segments of that many
        frames (a final shorter remainder is dropped unless it is the only segment).
        """
        speakers = catalogue.speakers
        label_of = {s: i for i, s in enumerate(speakers)}
        chunks, lengths, labels, paths, recordings = [], [], [], [], []
        for utt in catalogue:
            array = arrays.get(utt.path)
            if array is None:
                continue
            pieces = [array]
            if segment_frames:
                starts = segment_starts(len(array), segment_frames)
                pieces = [array[s : s + segment_frames] for s in starts]
            for piece in pieces:
                chunks.append(piece)
                lengths.append(len(piece))
                labels.append(label_of[utt.speaker])
                paths.append(utt.path)
                recordings.append(utt.recording)
        if not chunks:
            raise DataError(f"{catalogue.root}: no usable utterances to build a store from")
        lengths = np.asarray(lengths, np.int64)
        offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
        present = sorted(set(labels))
        if len(present) != len(speakers):
            # Relabel so that labels stay contiguous over the speakers actually present.
            remap = {old: new for new, old in enumerate(present)}
            labels = [remap[label] for label in labels]
            speakers = [speakers[old] for old in present]
        return cls(
            data=np.concatenate(chunks, axis=0),
            offsets=offsets,
            lengths=lengths,
            labels=np.asarray(labels, np.int32),
            speakers=speakers,
            paths=paths,
            recordings=recordings,
        )

    @classmethod
    def from_cache(cls, cache, catalogue: Catalogue, segment_frames: int | None = None):
        """Store of cached features (see :class:`FeatureCache`) for ``catalogue``."""
        return cls.from_arrays(catalogue, cache.load(), segment_frames)

    @classmethod
    def concatenate(cls, stores: list["UtteranceStore"], names: list[str]) -> "UtteranceStore":
        """One store from several (e.g. several corpora), speakers kept apart.

        Speaker ids become ``<name>/<speaker>`` and paths ``<name>/<path>``, so two
        corpora that reuse an id never merge speakers.
        """
        if not stores or len(stores) != len(names):
            raise DataError("concatenate needs one name per store")
        if len({s.data.shape[1:] for s in stores}) != 1:
            raise DataError("cannot concatenate stores of different feature sizes")
        offsets, labels, start, first_label = [], [], 0, 0
        for store in stores:
            offsets.append(store.offsets + start)
            labels.append(store.labels + first_label)
            start += len(store.data)
            first_label += store.num_speakers
        return cls(
            data=np.concatenate([s.data for s in stores], axis=0),
            offsets=np.concatenate(offsets),
            lengths=np.concatenate([s.lengths for s in stores]),
            labels=np.concatenate(labels).astype(np.int32),
            speakers=[f"{n}/{spk}" for s, n in zip(stores, names) for spk in s.speakers],
            paths=[f"{n}/{p}" for s, n in zip(stores, names) for p in s.paths],
            recordings=[f"{n}/{r}" for s, n in zip(stores, names) for r in s.recordings],
        )

    def relabel(self, speakers: list[str]) -> "UtteranceStore":
        """The items of the given speakers, labelled by their index in ``speakers``.

        For closed-set evaluation, where validation clips must carry the labels the
        classifier was trained with; items of other speakers are dropped.
        """
        index = {s: i for i, s in enumerate(speakers)}
        keep = np.asarray([self.speakers[label] in index for label in self.labels])
        if not keep.any():
            raise DataError("none of the store's speakers is among the given ones")
        return dataclasses.replace(
            self,
            offsets=self.offsets[keep],
            lengths=self.lengths[keep],
            labels=np.asarray(
                [index[self.speakers[label]] for label in self.labels[keep]], np.int32
            ),
            speakers=list(speakers),
            paths=[p for p, k in zip(self.paths, keep) if k],
            recordings=[r for r, k in zip(self.recordings, keep) if k],
        )
