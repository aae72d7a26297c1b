"""Settings of every training run: :class:`RunConfig` and each method's config.

The configs import no TensorFlow, so a trainer's ``--help`` is fast. A config holds
every setting of a run, is saved as ``config.json`` next to the checkpoints, and generates
the command-line flags (``keras_spkid.cli.config_args``); ``--config config.json`` starts
from a saved one. The front end is part of it (:meth:`RunConfig.frontend`): the feature
cache is keyed on it and the exported ``best/model.keras`` carries it, so no saved run
depends on today's defaults.
:meth:`RunConfig.validate` reports every impossible setting at once, before any work.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import ClassVar

from keras_spkid.errors import SpkidError
from keras_spkid.training.runtime import STRATEGIES


@dataclasses.dataclass
class RunConfig:
    """Settings of any training run (each method's config adds its own)."""

    learning_rate: float = 1e-3
    num_train_iterations: int = 5000
    test_interval: int = 50
    print_interval: int = 10
    log_dir: str = "runs/run"
    encoder: str = "conv6"
    mixed_precision: bool = False
    jit_compile: bool = False
    strategy: str = "default"
    seed: int = 0
    train_corpora: tuple[str, ...] = ("wuw_corpus_ii",)
    train_split: str = "train"
    val_split: str = "dev"
    cache: str = "cache"
    # the front end (keras_spkid.audio.frontend): "logmel" (LogMel, spkid's front-end
    # flags) or "kaldi_fbank" (KaldiFbank, as CAM++ takes; window is then Povey's)
    features: str = "logmel"
    n_mels: int = 64
    n_fft: int = 512
    win_length: int = 400
    hop_length: int = 160
    fmin: float = 20.0
    fmax: float | None = 7600.0
    window: str = "hann"
    normalize: str = "mean"

    POSITIVE: ClassVar[tuple[str, ...]] = (
        "num_train_iterations",
        "test_interval",
        "print_interval",
        "n_mels",
        "n_fft",
        "win_length",
        "hop_length",
    )

    FEATURES: ClassVar[dict[str, str]] = {"logmel": "LogMel", "kaldi_fbank": "KaldiFbank"}
    """``features`` names and the front-end class each one makes."""

    def frontend(self):
        """The run's front end (``normalize="none"``: off): a
        :class:`~keras_spkid.audio.frontend.LogMel`, or with ``features="kaldi_fbank"`` a
        :class:`~keras_spkid.audio.frontend.KaldiFbank` (``fmax`` None or <= 0: Nyquist;
        ``window`` unused).

        Raises:
            ValueError: impossible front-end settings.
        """
        from keras_spkid.audio.frontend import KaldiFbank, LogMel

        if self.features == "kaldi_fbank":
            return KaldiFbank(
                n_mels=self.n_mels, n_fft=self.n_fft, win_length=self.win_length,
                hop_length=self.hop_length, fmin=self.fmin, fmax=self.fmax or 0.0,
                normalize=None if self.normalize == "none" else self.normalize,
            )  # fmt: skip
        return LogMel(
            n_mels=self.n_mels, n_fft=self.n_fft, win_length=self.win_length,
            hop_length=self.hop_length, fmin=self.fmin, fmax=self.fmax, window=self.window,
            normalize=None if self.normalize == "none" else self.normalize,
        )  # fmt: skip

    def problems(self) -> list[str]:
        """Every impossible setting, as flag-named messages (subclasses add theirs)."""
        found = [
            f"--{name} must be >= 1 (got {getattr(self, name)})"
            for name in self.POSITIVE
            if getattr(self, name) < 1
        ]
        if self.learning_rate <= 0:
            found.append(f"--learning_rate must be > 0 (got {self.learning_rate})")
        if self.strategy not in STRATEGIES:
            found.append(
                f"--strategy must be one of {', '.join(STRATEGIES)} (got {self.strategy!r})"
            )
        if self.features not in self.FEATURES:
            found.append(
                f"--features must be one of {', '.join(self.FEATURES)} (got {self.features!r})"
            )
        elif not any(getattr(self, name) < 1 for name in self.POSITIVE):
            try:
                self.frontend()
            except ValueError as error:
                found.append(f"front end: {error}")
        return found

    def validate(self) -> None:
        """Raise one :class:`SpkidError` listing every problem, before any work starts."""
        found = self.problems()
        if found:
            raise SpkidError("; ".join(found))


LOSS_DISTANCES = {
    "proto": "squared_euclidean",
    "proto_euclidean": "euclidean",
    "proto_cosine": "cosine",
}
"""``--loss`` names and the distance of :data:`keras_spkid.losses.prototypical.DISTANCES`
each one uses."""


@dataclasses.dataclass
class ProtonetConfig(RunConfig):
    """Every setting of a protonet run; saved as ``config.json`` next to checkpoints."""

    num_way: int = 5
    num_support: int = 5
    num_query: int = 5
    batch_size: int = 4
    test_tasks: int = 1000
    val_tasks: int = 200
    log_dir: str = "runs/protonet"
    embedding_dim: int | None = None
    loss: str = "proto"
    variable_query: bool = False
    support_frames: int = 200
    query_frames: int = 200
    min_query_frames: int = 100
    gc_weight: float = 0.0
    spec_augment: bool = False
    channel_augment: bool = False
    init_from: str | None = None
    freeze_batchnorm: bool = False
    val_corpora: tuple[str, ...] = ("wuw_corpus_ii",)
    test_corpora: tuple[str, ...] = ("wuw_corpus_ii",)
    test_split: str = "test"
    segment_frames: int | None = None

    POSITIVE: ClassVar[tuple[str, ...]] = RunConfig.POSITIVE + (
        "num_way",
        "num_support",
        "num_query",
        "batch_size",
        "test_tasks",
        "val_tasks",
        "support_frames",
        "query_frames",
    )

    def problems(self) -> list[str]:
        found = super().problems()
        if self.loss not in LOSS_DISTANCES:
            found.append(f"--loss must be one of {', '.join(LOSS_DISTANCES)} (got {self.loss!r})")
        if self.gc_weight < 0:
            found.append(f"--gc_weight must be >= 0 (got {self.gc_weight})")
        if self.variable_query and not 1 <= self.min_query_frames <= self.query_frames:
            found.append("--min_query_frames must be between 1 and --query_frames")
        if self.init_from and self.init_path() is None:
            from keras_spkid.inference.model_io import PRESETS

            found.append(
                f"--init_from {self.init_from}: no such file, and not a preset name "
                f"({', '.join(sorted(PRESETS))})"
            )
        return found

    def init_path(self) -> Path | None:
        """The ``.keras`` file ``init_from`` names (a path or a preset name), or None."""
        if not self.init_from:
            return None
        if Path(self.init_from).is_file():
            return Path(self.init_from)
        from keras_spkid.inference.model_io import PRESETS  # imports Keras: not at load

        return PRESETS.get(self.init_from)

    @property
    def spec(self):
        """The :class:`~keras_spkid.data.episodes.EpisodeSpec` of the training episodes."""
        from keras_spkid.data.episodes import EpisodeSpec

        query = (
            (self.min_query_frames, self.query_frames) if self.variable_query else self.query_frames
        )
        return EpisodeSpec(
            self.num_way, self.num_support, self.num_query, self.support_frames, query
        )


@dataclasses.dataclass
class MAEConfig(RunConfig):
    """Every setting of an MAE run; saved as ``config.json`` next to checkpoints."""

    mask: str = "strips"
    mask_ratio: float = 0.75
    learning_rate: float = 5e-3
    batch_size: int = 64
    test_interval: int = 250
    val_batches: int = 10
    log_dir: str = "runs/mae"
    crop_frames: int = 192

    POSITIVE: ClassVar[tuple[str, ...]] = RunConfig.POSITIVE + ("batch_size", "val_batches")

    def problems(self) -> list[str]:
        found = super().problems()
        if self.mask not in ("strips", "boxes"):
            found.append(f"--mask must be 'strips' or 'boxes' (got {self.mask!r})")
        if not 0.0 < self.mask_ratio < 1.0:
            found.append(f"--mask_ratio must be in (0, 1) (got {self.mask_ratio})")
        if self.encoder != "conv6":
            found.append(
                f"--encoder {self.encoder}: MAE pre-training supports conv6 "
                "(the CS330 encoder) only"
            )
        if self.crop_frames < 64 or self.crop_frames % 64:
            found.append(
                f"--crop_frames must be a multiple of 64 (got {self.crop_frames}): "
                "the six 2x2 pools and upsamplings must round-trip"
            )
        if self.n_mels % 64:
            found.append(f"--n_mels must be a multiple of 64 for conv6 MAE (got {self.n_mels})")
        return found


LOSSES = ("softmax", "amsoftmax", "aamsoftmax", "angleproto", "ge2e", "triplet")
CLASSIFYING_LOSSES = ("softmax", "amsoftmax", "aamsoftmax")


@dataclasses.dataclass
class ClassifierConfig(RunConfig):
    """Every setting of a classifier / metric-learning run (saved as ``config.json``)."""

    encoder: str = "sacnn"
    loss: str = "softmax"
    embedding_dim: int | None = None
    margin: float | None = None
    scale: float | None = None
    speakers_per_batch: int = 32
    clips_per_speaker: int = 1
    frames: int = 200
    num_train_iterations: int = 2000
    test_interval: int = 100
    val_way: int = 5
    val_shot: int = 5
    val_tasks: int = 200
    spec_augment: bool = False
    val_mode: str = "fewshot"
    log_dir: str = "runs/classifier"
    val_corpora: tuple[str, ...] = ("wuw_corpus_ii",)
    segment_frames: int | None = None

    POSITIVE: ClassVar[tuple[str, ...]] = RunConfig.POSITIVE + (
        "speakers_per_batch",
        "clips_per_speaker",
        "frames",
        "val_way",
        "val_shot",
        "val_tasks",
    )

    def problems(self) -> list[str]:
        found = super().problems()
        if self.loss not in LOSSES:
            found.append(f"--loss must be one of {', '.join(LOSSES)} (got {self.loss!r})")
        if self.loss in ("angleproto", "ge2e", "triplet") and self.clips_per_speaker < 2:
            found.append(f"--loss {self.loss} needs --clips_per_speaker >= 2")
        if self.loss == "triplet" and self.clips_per_speaker != 2:
            found.append("--loss triplet uses --clips_per_speaker 2 (anchor, positive)")
        if self.val_mode not in ("fewshot", "closed_set"):
            found.append(f"--val_mode must be fewshot or closed_set (got {self.val_mode!r})")
        if self.val_mode == "closed_set" and self.loss not in CLASSIFYING_LOSSES:
            found.append(
                f"--val_mode closed_set needs a classifying loss "
                f"({', '.join(CLASSIFYING_LOSSES)}), not {self.loss}"
            )
        return found
