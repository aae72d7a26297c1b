"""A set of utterance embeddings on disk: the ``.npz`` that ``extract_embeds.py`` writes.

Fields (the interface other tools rely on):

* ``paths``: ``[n]`` str, the list's paths as given;
* ``embeddings``: ``[n, d]`` float32, rows L2-normalised;
* ``speakers``: ``[n]`` str, only when the list names them;
* ``seconds``: ``[n]`` float32 duration of each clip (used for real-time factors);
* ``info``: a JSON string (model, crops, ...) describing how they were made.
"""

from __future__ import annotations

import dataclasses
import json
import zipfile
from pathlib import Path

import numpy as np

from keras_spkid.atomic import atomic_path
from keras_spkid.data.catalogue import infer_recording
from keras_spkid.errors import DataError


@dataclasses.dataclass
class EmbeddingSet:
    paths: np.ndarray
    embeddings: np.ndarray
    speakers: np.ndarray | None = None
    seconds: np.ndarray | None = None
    info: dict = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        self.paths = np.asarray(self.paths, dtype=str)
        self.embeddings = np.asarray(self.embeddings, dtype=np.float32).reshape(len(self.paths), -1)
        if self.speakers is not None:
            self.speakers = np.asarray(self.speakers, dtype=str)
            if len(self.speakers) != len(self.paths):
                raise ValueError(f"{len(self.speakers)} speakers for {len(self.paths)} paths")
        if self.seconds is not None:
            self.seconds = np.asarray(self.seconds, dtype=np.float32)

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def dim(self) -> int:
        return int(self.embeddings.shape[1])

    def require_speakers(self, source="embeddings") -> np.ndarray:
        if self.speakers is None:
            raise DataError(
                f"{source}: no speaker labels (extract from a list with a "
                "'speaker' column, or from a folder-per-speaker tree)"
            )
        return self.speakers

    def recordings(self) -> np.ndarray:
        """Recording id of each clip (YouTube id, phone session, ...), from its path."""
        speakers = self.require_speakers()
        return np.asarray([infer_recording(s, p) for s, p in zip(speakers, self.paths)])

    def select(self, index) -> EmbeddingSet:
        index = np.asarray(index)
        return EmbeddingSet(
            self.paths[index],
            self.embeddings[index],
            None if self.speakers is None else self.speakers[index],
            None if self.seconds is None else self.seconds[index],
            dict(self.info),
        )

    def lookup(self, paths, source="trials") -> np.ndarray:
        """Rows of ``paths`` (raises naming the first path that has no embedding)."""
        row = {p: i for i, p in enumerate(self.paths)}
        missing = [p for p in paths if p not in row]
        if missing:
            raise DataError(
                f"{source}: {len(missing)} paths have no embedding, e.g. "
                f"{missing[0]!r} (extract embeddings for every file of the list)"
            )
        return np.asarray([row[p] for p in paths], dtype=np.int64)

    def save(self, path) -> None:
        """Write atomically (temp file, then rename)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fields = {
            "paths": self.paths,
            "embeddings": self.embeddings,
            "info": np.asarray(json.dumps(self.info, sort_keys=True)),
        }
        if self.speakers is not None:
            fields["speakers"] = self.speakers
        if self.seconds is not None:
            fields["seconds"] = self.seconds
        with atomic_path(path, ".npz") as tmp:
            np.savez(tmp, **fields)

    @classmethod
    def load(cls, path) -> EmbeddingSet:
        path = Path(path)
        if not path.is_file():
            raise DataError(f"{path}: embeddings file not found (make it with extract_embeds.py)")
        try:
            with np.load(path, allow_pickle=False) as data:
                if "paths" not in data or "embeddings" not in data:
                    raise DataError(
                        f"{path}: not an embeddings file (needs 'paths' and "
                        "'embeddings'; make it with extract_embeds.py)"
                    )
                info = json.loads(str(data["info"])) if "info" in data else {}
                return cls(
                    data["paths"],
                    data["embeddings"],
                    data["speakers"] if "speakers" in data else None,
                    data["seconds"] if "seconds" in data else None,
                    info,
                )
        except (OSError, ValueError, zipfile.BadZipFile) as error:
            raise DataError(f"{path}: cannot read embeddings ({error})") from None

    @classmethod
    def concatenate(cls, sets: list[EmbeddingSet], info=None) -> EmbeddingSet:
        if not sets:
            raise ValueError("nothing to concatenate")
        speakers = (
            None
            if any(s.speakers is None for s in sets)
            else np.concatenate([s.speakers for s in sets])
        )
        seconds = (
            None
            if any(s.seconds is None for s in sets)
            else np.concatenate([s.seconds for s in sets])
        )
        return cls(
            np.concatenate([s.paths for s in sets]),
            np.concatenate([s.embeddings for s in sets]),
            speakers,
            seconds,
            dict(info if info is not None else sets[0].info),
        )
