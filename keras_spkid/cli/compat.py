"""The reference systems' training flags, mapped onto ours, and the data checks before work.

CS330 (``protonet.py``, ``mae.py``)
    ``--train_url_directory DIR`` / ``--test_url_directory DIR``: unzipped VoxCeleb
    URL + timestamp folders (``DIR/txt/<speaker>/...``); their speakers are the training
    and the test/validation speakers. ``--spectrogram_directory S``: the feature cache,
    as made by ``spkid download youtube --url-directory DIR --audio-directory A
    --output-directory S`` (CS330's ``voxcelebdownloader.py`` flags), which keeps the
    features of split ``dev`` in ``S/dev``; the audio (``A/dev/wav``) is found through
    the cache's index. ``mae.py`` validates on held-out crops of the training speakers
    (CS330: the test speakers). ``--num_iterations`` (mae) is ``--num-train-iterations``;
    ``--pretrained_weights`` is ``--init-from`` (a ``.keras`` model: CS330's PyTorch
    ``state*.pt`` cannot be read). ``--mask``/``--mask_ratio`` of ``protonet.py`` only
    named CS330's log folder, and ``--checkpoint_step``/``--checkpoint_iteration``/
    ``--test_iterations`` are accepted and have no effect (resuming is automatic, and
    ``--test`` evaluates the best model).
meta-SR (``train.py``)
    ``--nb_class_train`` is ``--num-way``, ``--n_shot`` ``--num-support``, ``--n_query``
    ``--num-query``, ``--use_variable`` ``--variable-query``; ``--loss_type
    prototypical`` is ``--loss proto_cosine``; ``--use_GC True`` is ``--gc-weight 1``.
    ``--use_cuda``, ``--gpu``, ``--n_folder``, ``--data_type``, ``--use_checkpoint`` and
    ``--cp_num`` are accepted and have no effect (TensorFlow uses a visible GPU; runs
    resume from ``--log-dir``; the data are ``--train-corpora``).
"""

from __future__ import annotations

import dataclasses
import json
import zipfile
from collections import Counter
from pathlib import Path

from keras_spkid.cli.args import boolean
from keras_spkid.errors import SpkidError

PROTONET_ALIASES = {
    "num_way": ["--nb-class-train"],
    "num_support": ["--n-shot"],
    "num_query": ["--n-query"],
    "variable_query": ["--use-variable"],
    "init_from": ["--pretrained-weights"],
}
MAE_ALIASES = {"num_train_iterations": ["--num-iterations"]}

_NO_EFFECT = "accepted for compatibility; no effect here"


def add_cs330_args(parser, mae: bool) -> None:
    """CS330's data flags, and those of its flags that have no meaning here."""
    group = parser.add_argument_group("CS330 data flags (see README, 'Coming from CS330')")
    group.add_argument(
        "--train-url-directory",
        help="unzipped VoxCeleb URL+timestamp folder (holding txt/): the training speakers",
    )
    group.add_argument(
        "--test-url-directory",
        help="the same for the validation and test speakers",
    )
    group.add_argument(
        "--spectrogram-directory",
        help="feature cache folder, as written by 'spkid download youtube "
        "--output-directory' (replaces --cache)",
    )
    no_effect = ["--checkpoint-iteration", "--test-iterations"] if mae else ["--checkpoint-step"]
    if not mae:
        no_effect += ["--mask", "--mask-ratio"]
    for flag in no_effect:
        group.add_argument(flag, default=None, help=_NO_EFFECT)


def add_metasr_args(parser) -> None:
    group = parser.add_argument_group("meta-SR flags (see README, 'Coming from meta-SR')")
    group.add_argument(
        "--loss-type",
        choices=("prototypical", "softmax"),
        help="prototypical: --loss proto_cosine; softmax: use train_classifier.py",
    )
    group.add_argument(
        "--use-gc",
        nargs="?",
        const=True,
        type=boolean,
        metavar="BOOL",
        help="True: --gc-weight 1 (global classification); False: --gc-weight 0",
    )
    for flag in ("--use-cuda", "--use-checkpoint"):
        group.add_argument(
            flag, nargs="?", const=True, type=boolean, metavar="BOOL", help=_NO_EFFECT
        )
    for flag in ("--gpu", "--n-folder", "--data-type", "--cp-num"):
        group.add_argument(flag, default=None, help=_NO_EFFECT)


def _note_ignored(args, flags) -> None:
    given = [f for f in flags if getattr(args, f.lstrip("-").replace("-", "_"), None) is not None]
    if given:
        print(f"note: {', '.join(given)}: {_NO_EFFECT}")


# --------------------------------------------------------------------- config mapping
def protonet_config(args, config):
    """``config`` with the CS330 and meta-SR flags of ``args`` applied."""
    _note_ignored(
        args,
        ["--checkpoint-step", "--mask", "--mask-ratio", "--use-cuda", "--use-checkpoint"]
        + ["--gpu", "--n-folder", "--data-type", "--cp-num"],
    )
    if args.loss_type == "softmax":
        raise SpkidError(
            "--loss_type softmax: meta-SR's softmax baseline is "
            "'train_classifier.py --loss softmax' here"
        )
    if args.loss_type == "prototypical":
        config = dataclasses.replace(config, loss="proto_cosine")
    if args.use_gc is not None:
        config = dataclasses.replace(
            config, gc_weight=(config.gc_weight or 1.0) if args.use_gc else 0.0
        )
    config = _cs330_data(args, config, protonet=True)
    if config.init_path():  # else config.validate() names it and the presets
        _check_model_file("--init-from", config.init_path())
    return config


def mae_config(args, config):
    _note_ignored(args, ["--checkpoint-iteration", "--test-iterations"])
    return _cs330_data(args, config, protonet=False)


_KERAS_WEIGHTS = {"model.weights.h5", "model.weights.npz"}
"""What a ``.keras`` archive holds its weights in (Keras 3 saving format)."""


def _check_model_file(flag: str, path) -> None:
    """A ``.keras`` file (a zip holding a JSON config.json and the weights), or one line
    naming ``flag``."""
    if not path:
        return
    if not Path(path).is_file():
        raise SpkidError(f"{flag} {path}: file not found")
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            ok = "config.json" in names and bool(names & _KERAS_WEIGHTS)
            ok = ok and isinstance(json.loads(archive.read("config.json")), dict)
    except (zipfile.BadZipFile, OSError, ValueError):
        ok = False
    if not ok:
        raise SpkidError(
            f"{flag} {path}: not a Keras model (.keras); give a best/model.keras of a "
            "train_mae.py or train_protonet.py run (PyTorch .pt files cannot be read)"
        )


def _speakers(url_directory: str, flag: str) -> set[str]:
    txt = Path(url_directory) / "txt"
    if not txt.is_dir():
        raise SpkidError(
            f"{flag} {url_directory}: no txt/ folder (give the unzipped vox1_dev_txt.zip "
            "folder, holding txt/<speaker>/<youtube id>/<NNNNN>.txt)"
        )
    speakers = {p.name for p in txt.iterdir() if p.is_dir()}
    if not speakers:
        raise SpkidError(f"{flag} {url_directory}: no speaker folders under txt/")
    return speakers


def _audio_folder(cache: Path, url_directory: str, flag: str) -> str:
    """The VoxCeleb folder (holding ``wav/``) whose features ``cache/<split>`` holds."""
    from keras_spkid.download.rescrape import infer_split_name

    wanted = _speakers(url_directory, flag)
    split = infer_split_name(url_directory)
    make = (
        f"make them with 'spkid download youtube --url-directory {url_directory} "
        f"--audio-directory AUDIO --output-directory {cache}'"
    )
    for index in sorted((cache / split).glob("logmel-*/index.json")):
        try:
            root = Path(json.loads(index.read_text())["root"])
        except (OSError, ValueError, KeyError):
            continue
        if root.is_dir() and {p.name for p in root.iterdir() if p.is_dir()} & wanted:
            return str(root.parent)
    raise SpkidError(
        f"--spectrogram_directory {cache}: no features of the speakers of {flag} "
        f"{url_directory} (expected {cache / split}/logmel-*/); {make}"
    )


def _cs330_data(args, config, protonet: bool):
    """Map ``--train/test_url_directory`` and ``--spectrogram_directory`` onto corpora.

    The training corpus is the audio folder of the ``--train_url_directory`` split
    (``AUDIO/dev``, found through the feature cache ``S/dev``), validation and test use
    the ``--test_url_directory`` one (``AUDIO/test``); the features made by the download
    are reused when the front end is the same.
    """
    urls = {"train": args.train_url_directory, "test": args.test_url_directory}
    if not any(urls.values()) and not args.spectrogram_directory:
        return config
    if not args.spectrogram_directory or not urls["train"]:
        raise SpkidError(
            "--train_url_directory and --spectrogram_directory go together (CS330): "
            "give both, or use --train-corpora and --cache"
        )
    if protonet and not urls["test"]:
        raise SpkidError("--test_url_directory is needed with --train_url_directory (CS330)")
    cache = Path(args.spectrogram_directory)
    train = _audio_folder(cache, urls["train"], "--train_url_directory")
    changes = dict(cache=str(cache), train_corpora=(train,), train_split="", val_split="")
    if protonet:
        test = _audio_folder(cache, urls["test"], "--test_url_directory")
        changes.update(val_corpora=(test,), test_corpora=(test,), test_split="")
    return dataclasses.replace(config, **changes)


# ------------------------------------------------------------------- checks before work
def check_encoder(config) -> None:
    """``--encoder`` names a registered encoder (imports Keras: call after parsing)."""
    from keras_spkid.models import available_encoders

    names = available_encoders()
    if config.encoder.lower() not in names:
        raise SpkidError(f"--encoder {config.encoder}: not one of {', '.join(names)}")


def _speaker_counts(corpus: str, split: str) -> tuple[str, Counter]:
    from keras_spkid.training.data import open_corpus

    catalogue = open_corpus(corpus)
    part = catalogue.filter(split=split) if split else catalogue
    if not len(part):
        splits = sorted({u.split for u in catalogue if u.split})
        hint = f"its splits: {', '.join(splits)}" if splits else "it has no splits: pass ''"
        raise SpkidError(f"{corpus}: no utterances in split {split!r} ({hint})")
    label = f"{catalogue.name or corpus} ({split})" if split else (catalogue.name or corpus)
    return label, Counter(u.speaker for u in part)


def _check_ways(
    corpora, split, way: int, per_speaker: int, flags: str, purpose: str, suggest=None
) -> None:
    """One line naming ``flags`` unless ``way`` speakers have ``per_speaker`` clips."""
    total_eligible, total, labels = 0, 0, []
    for corpus in corpora:
        label, counts = _speaker_counts(corpus, split)
        total_eligible += sum(c >= per_speaker for c in counts.values())
        total += len(counts)
        labels.append(label)
    where = " + ".join(labels)
    if total_eligible < way:
        hint = f"; {suggest(total_eligible)}" if suggest else ""
        raise SpkidError(
            f"{flags}: {purpose} need {way} speakers with at least {per_speaker} clips, but "
            f"only {total_eligible} of the {total} speakers of {where} have that many{hint}"
        )
    if total - total_eligible > total // 4:
        print(
            f"note: {total - total_eligible} of {total} speakers of {where} have fewer than "
            f"{per_speaker} clips and are left out of {purpose} ({flags})"
        )


def check_episodes(config, test: bool = False) -> None:
    """Fail before any feature is computed when the corpora cannot form the episodes."""
    if config.segment_frames:
        return  # segment counts depend on clip lengths: the episode sampler checks
    k, q, n = config.num_support, config.num_query, config.num_way
    flags = f"--num-way {n} --num-support {k} --num-query {q}"

    def suggest(found):
        return f"lower --num-query (K+Q <= clips per speaker) or --num-way (<= {found})"

    if test:
        _check_ways(config.test_corpora, config.test_split, n, k + q, flags, "test episodes",
                    suggest)  # fmt: skip
        return
    _check_ways(config.train_corpora, config.train_split, n, k + q, flags, "training episodes",
                suggest)  # fmt: skip
    _check_ways(config.val_corpora, config.val_split, n, k + q, flags, "validation episodes",
                suggest)  # fmt: skip


def check_corpora(config) -> None:
    """Every training corpus opens and has the asked splits."""
    for corpus in config.train_corpora:
        for split in {config.train_split, config.val_split}:
            _speaker_counts(corpus, split)


def check_classifier_data(config) -> None:
    if config.segment_frames:
        return
    _check_ways(
        config.train_corpora, config.train_split, config.speakers_per_batch,
        1, f"--speakers-per-batch {config.speakers_per_batch}", "training batches",
    )  # fmt: skip
    if config.val_mode == "fewshot":
        _check_ways(
            config.val_corpora, config.val_split, config.val_way, config.val_shot + 5,
            f"--val-way {config.val_way} --val-shot {config.val_shot}",
            "validation episodes (5 queries each)",
        )  # fmt: skip
