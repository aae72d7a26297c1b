"""Training commands: ``train_protonet.py``, ``train_mae.py`` and the classifier trainer.

Each parses flags generated from its config dataclass, saves the config next to the
checkpoints and calls the package. Re-running the same command with the same
``--log_dir`` resumes from the last checkpoint.
"""

from __future__ import annotations

import argparse
import os

from keras_spkid.cli.config_args import add_config_args, config_from_args
from keras_spkid.cli.reporting import run_command

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

HELP = {
    "num_way": "speakers per episode (N)",
    "num_support": "support clips per speaker (K)",
    "num_query": "query clips per speaker (Q)",
    "batch_size": "episodes (tasks) per step",
    "num_train_iterations": "total training steps",
    "test_interval": "steps between validations and checkpoints",
    "print_interval": "steps between progress and TensorBoard updates",
    "log_dir": "checkpoints, TensorBoard logs, config.json, best/ and final/ models",
    "encoder": "conv6 (CS330), resnet34, sacnn (self-attention CNN), resnet18_sa, campplus (CAM++)",
    "loss": "protonet: proto (squared Euclidean), proto_euclidean, proto_cosine; "
    "classifier: softmax, amsoftmax, aamsoftmax, angleproto, ge2e, triplet",
    "variable_query": "query crops of min_query_frames..query_frames frames (meta-SR)",
    "gc_weight": "weight of meta-SR's global classification loss (0: off)",
    "init_from": "initialise the encoder from this .keras model (e.g. an MAE's best/model.keras)",
    "mixed_precision": "mixed_float16 (GPU)",
    "jit_compile": "XLA-compile the training step (slower on CPU, faster on GPU)",
    "strategy": "default, mirrored (all local GPUs) or multiworker (TF_CONFIG)",
    "train_corpora": "corpus names under SPKID_DATA, or MANIFEST.tsv paths",
    "segment_frames": "cut long clips into segments of this many frames",
    "val_mode": "fewshot (episodes of unseen --val_corpora speakers) or closed_set "
    "(top-1/top-5 on the --val_split clips of the training speakers)",
    "mask": "strips (100 ms time strips) or boxes (16 bins x 30 frames)",
    "mask_ratio": "fraction of strips/boxes hidden, in (0, 1)",
}


def _run(argv, config_cls, train_fn, description, extra=None, prog=None):
    parser = argparse.ArgumentParser(prog=prog, description=description)
    add_config_args(parser, config_cls, HELP)
    if extra:
        extra(parser)
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    args = parser.parse_args(argv)
    return run_command(lambda: train_fn(config_from_args(args, config_cls), args))


def protonet_main(argv=None, prog=None) -> int:
    from keras_spkid.training.protonet import ProtonetConfig

    def extra(parser):
        parser.add_argument(
            "--test",
            action="store_true",
            help="evaluate the best model of --log_dir on test episodes",
        )
        parser.add_argument("--model", help="with --test: evaluate this .keras encoder instead")

    def run(config, args):
        from keras_spkid.training.protonet import evaluate_protonet, train_protonet

        if args.test:
            evaluate_protonet(config, args.model)
        else:
            summary = train_protonet(config, verbose=not args.quiet)
            print(f"done: step {summary['step']}, best {summary['best']}")
        return 0

    return _run(
        argv, ProtonetConfig, run, "Train a prototypical network on few-shot episodes.", extra, prog
    )


def mae_main(argv=None, prog=None) -> int:
    from keras_spkid.training.mae import MAEConfig

    def run(config, args):
        from keras_spkid.training.mae import train_mae

        summary = train_mae(config, verbose=not args.quiet)
        print(f"done: step {summary['step']}, best {summary['best']}")
        return 0

    return _run(
        argv, MAEConfig, run, "Pre-train the conv encoder as a masked autoencoder.", prog=prog
    )


def classifier_main(argv=None, prog=None) -> int:
    from keras_spkid.training.classifier import ClassifierConfig

    def run(config, args):
        from keras_spkid.training.classifier import train_classifier

        summary = train_classifier(config, verbose=not args.quiet)
        print(f"done: step {summary['step']}, best {summary['best']}")
        return 0

    return _run(
        argv,
        ClassifierConfig,
        run,
        "Train an encoder with a classification or metric-learning loss.",
        prog=prog,
    )
