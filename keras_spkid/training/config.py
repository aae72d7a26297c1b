"""Settings shared by every training run, as a dataclass base for each method's config.

A config holds every setting of a run, is saved as ``config.json`` next to the
checkpoints, and generates the command-line flags (``keras_spkid.cli.config_args``);
``--config config.json`` starts from a saved one. The front end is part of it
(:meth:`RunConfig.frontend`): the feature cache is keyed on it and the exported
``best/model.keras`` carries it, so no saved run depends on today's defaults.
:meth:`RunConfig.validate` reports every impossible setting at once, before any work.
"""

from __future__ import annotations

import dataclasses
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
    # the log-mel front end (keras_spkid.audio.frontend.LogMel), as spkid's front-end flags
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

    def frontend(self):
        """The run's :class:`~keras_spkid.audio.frontend.LogMel` (``normalize="none"``: off).

        Raises:
            ValueError: impossible front-end settings.
        """
        from keras_spkid.audio.frontend import LogMel

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
        if not any(getattr(self, name) < 1 for name in self.POSITIVE):
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
