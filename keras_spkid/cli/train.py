"""Training commands: ``train_protonet.py``, ``train_mae.py`` and the classifier trainer.

Each parses flags generated from its config dataclass (:mod:`keras_spkid.cli.config_args`),
checks that the data can form the asked episodes before any feature is computed, saves
the config next to the checkpoints and calls the package. Re-running the same command
with the same ``--log-dir`` resumes from the last checkpoint.

The reference systems' commands run as documented (:mod:`keras_spkid.cli.compat` maps
their flags): CS330's ``protonet.py``/``mae.py`` (``--train_url_directory``,
``--spectrogram_directory``, ``--num_iterations``, ...) and meta-SR's ``train.py``
(``--loss_type prototypical --use_GC True --n_shot 1 --n_query 2 --use_variable True
--nb_class_train 100``).
"""

from __future__ import annotations

from keras_spkid.cli import compat
from keras_spkid.cli.args import new_parser
from keras_spkid.cli.config_args import add_config_args, config_defaults, config_from_args
from keras_spkid.cli.reporting import run_command
from keras_spkid.errors import SpkidError

COMMON_HELP = {
    "learning_rate": "Adam learning rate",
    "num_train_iterations": "total training steps",
    "test_interval": "steps between validations and checkpoints",
    "print_interval": "steps between progress and TensorBoard updates",
    "log_dir": "checkpoints, TensorBoard logs, config.json, best/ and final/ models",
    "encoder": "conv6 (CS330), resnet34, sacnn (self-attention CNN), resnet18_sa, campplus (CAM++)",
    "mixed_precision": "mixed_float16 (GPU)",
    "jit_compile": "XLA-compile the training step (slower on CPU, faster on GPU)",
    "strategy": "default, mirrored (all local GPUs) or multiworker (TF_CONFIG)",
    "seed": "seeds the data streams, masks and initial weights",
    "train_corpora": "corpus names under SPKID_DATA, MANIFEST.tsv paths or audio folders "
    "(folder-per-speaker or VoxCeleb <root>/wav/...)",
    "train_split": "manifest split of --train-corpora to train on ('' = all)",
    "val_split": "manifest split of the validation corpora ('' = all)",
    "cache": "feature cache folder (one sub-folder per corpus and front end)",
    "features": "front end: logmel (LogMel) or kaldi_fbank (Kaldi filterbanks, as CAM++ takes)",
    "n_mels": "front end: mel bands (1-512)",
    "n_fft": "front end: FFT size",
    "win_length": "front end: window in samples (400 = 25 ms)",
    "hop_length": "front end: hop in samples (160 = 10 ms)",
    "fmin": "front end: lowest mel frequency (Hz)",
    "fmax": "front end: highest mel frequency (Hz; with kaldi_fbank 0 = Nyquist)",
    "window": "front end: hann or hamming",
    "normalize": "front end: per-utterance mean, mean_var or none",
    "segment_frames": "cut long clips into segments of this many frames",
}

PROTONET_HELP = {
    **COMMON_HELP,
    "num_way": "speakers per episode (N)",
    "num_support": "support clips per speaker (K)",
    "num_query": "query clips per speaker (Q); speakers with fewer than K+Q clips are left out",
    "batch_size": "episodes (tasks) per step",
    "test_tasks": "episodes of the --test evaluation",
    "val_tasks": "validation episodes",
    "embedding_dim": "embedding size (default: the encoder's own)",
    "loss": "proto (squared Euclidean), proto_euclidean (CS330), proto_cosine (meta-SR)",
    "variable_query": "query crops of --min-query-frames..--query-frames frames (meta-SR)",
    "support_frames": "support crop length (frames of 10 ms)",
    "query_frames": "query crop length (the longest, with --variable-query)",
    "min_query_frames": "shortest query crop with --variable-query",
    "gc_weight": "weight of meta-SR's global classification loss (0: off)",
    "spec_augment": "mask time and frequency bands of the training crops",
    "channel_augment": "telephone band, stationary noise and babble on the training crops",
    "init_from": "initialise the encoder from this .keras model (e.g. an MAE's "
    "best/model.keras) or a preset (campplus_zh_en: fine-tune CAM++)",
    "freeze_batchnorm": "keep batch norms at their loaded statistics (fine-tuning)",
    "val_corpora": "speakers for validation episodes (never the training ones)",
    "test_corpora": "speakers for --test episodes",
    "test_split": "manifest split of --test-corpora ('' = all)",
}

MAE_HELP = {
    **COMMON_HELP,
    "mask": "strips (100 ms time strips) or boxes (16 bins x 30 frames)",
    "mask_ratio": "fraction of strips/boxes hidden, in (0, 1)",
    "batch_size": "crops per step",
    "val_batches": "validation batches of reconstruction loss",
    "crop_frames": "crop length in frames (a multiple of 64)",
}

CLASSIFIER_HELP = {
    **COMMON_HELP,
    "loss": "softmax, amsoftmax, aamsoftmax, angleproto, ge2e, triplet",
    "embedding_dim": "embedding size (default: the encoder's own)",
    "margin": "margin of amsoftmax/aamsoftmax/triplet (default: the loss's own)",
    "scale": "scale of amsoftmax/aamsoftmax (default: the loss's own)",
    "speakers_per_batch": "speakers per batch (no speaker twice)",
    "clips_per_speaker": "crops per speaker in a batch (2+ for angleproto, ge2e, triplet)",
    "frames": "crop length (frames of 10 ms)",
    "val_way": "speakers per validation episode",
    "val_shot": "support clips per speaker in validation episodes",
    "val_tasks": "validation episodes",
    "spec_augment": "mask time and frequency bands of the training crops",
    "val_mode": "fewshot (episodes of unseen --val-corpora speakers) or closed_set "
    "(top-1/top-5 on the --val-split clips of the training speakers)",
    "val_corpora": "speakers for validation episodes (never the training ones)",
}


def build_parser(kind: str, prog=None):
    """The parser of ``train-protonet``, ``train-mae`` or ``train-classifier`` (``kind``)."""
    from keras_spkid.training.config import ClassifierConfig, MAEConfig, ProtonetConfig

    config_cls, help_texts, description, aliases = {
        "protonet": (ProtonetConfig, PROTONET_HELP, "Train a prototypical network on few-shot "
                     "episodes.", compat.PROTONET_ALIASES),
        "mae": (MAEConfig, MAE_HELP, "Pre-train the conv encoder as a masked autoencoder.",
                compat.MAE_ALIASES),
        "classifier": (ClassifierConfig, CLASSIFIER_HELP, "Train an encoder with a "
                       "classification or metric-learning loss.", None),
    }[kind]  # fmt: skip
    parser = new_parser(prog, description)
    parser.add_argument(
        "--config",
        help="start from a run's config.json (its values replace the defaults; flags override)",
    )
    add_config_args(parser, config_cls, help_texts, aliases)
    if kind == "protonet":
        parser.add_argument(
            "--test",
            action="store_true",
            help="evaluate the best model of --log-dir on test episodes",
        )
        parser.add_argument("--model", help="with --test: evaluate this .keras encoder instead")
        compat.add_cs330_args(parser, mae=False)
        compat.add_metasr_args(parser)
    elif kind == "mae":
        compat.add_cs330_args(parser, mae=True)
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="debug logging and TensorFlow's messages"
    )
    return parser


def parse_args(kind: str, config_cls, argv=None, prog=None):
    """Parse a trainer's flags; with ``--config run.json`` its values are the defaults."""
    parser = build_parser(kind, prog)
    args = parser.parse_args(argv)
    if args.config:
        try:
            parser.set_defaults(**config_defaults(args.config, config_cls))
        except SpkidError as error:
            parser.exit(2, f"error: {error}\n")
        args = parser.parse_args(argv)
    return args


def _finish(summary) -> int:
    print(f"done: step {summary['step']}, best {summary['best']}")
    return 0


def protonet_main(argv=None, prog=None) -> int:
    from keras_spkid.training.config import ProtonetConfig

    args = parse_args("protonet", ProtonetConfig, argv, prog)

    def run():
        config = compat.protonet_config(args, config_from_args(args, ProtonetConfig))
        config.validate()
        compat.check_episodes(config, test=args.test)
        compat.check_encoder(config)
        from keras_spkid.evaluation.fewshot import AccuracyCI
        from keras_spkid.training.protonet import evaluate_protonet, train_protonet

        if args.test:
            for cell, accuracy in evaluate_protonet(config, args.model).items():
                print(f"{cell}: {AccuracyCI(**accuracy)}")
            return 0
        return _finish(train_protonet(config, verbose=not args.quiet))

    return run_command(run, verbose=args.verbose, training=True)


def mae_main(argv=None, prog=None) -> int:
    from keras_spkid.training.config import MAEConfig

    args = parse_args("mae", MAEConfig, argv, prog)

    def run():
        config = compat.mae_config(args, config_from_args(args, MAEConfig))
        config.validate()
        compat.check_corpora(config)
        compat.check_encoder(config)
        from keras_spkid.training.mae import train_mae

        return _finish(train_mae(config, verbose=not args.quiet))

    return run_command(run, verbose=args.verbose, training=True)


def classifier_main(argv=None, prog=None) -> int:
    from keras_spkid.training.config import ClassifierConfig

    args = parse_args("classifier", ClassifierConfig, argv, prog)

    def run():
        config = config_from_args(args, ClassifierConfig)
        config.validate()
        compat.check_classifier_data(config)
        compat.check_encoder(config)
        from keras_spkid.training.classifier import train_classifier

        return _finish(train_classifier(config, verbose=not args.quiet))

    return run_command(run, verbose=args.verbose, training=True)
