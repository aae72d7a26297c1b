"""Prototypical network training (Snell et al.; CS330; meta-SR with global classification).

Each step embeds a batch of N-way K-shot Q-query episodes, averages each speaker's
support embeddings into a prototype and classifies the queries by their distance to
the prototypes (squared Euclidean as in Snell et al., Euclidean as in CS330, or scaled
cosine). With ``gc_weight > 0`` a global classifier over all training speakers
(meta-SR) adds ``gc_weight * CE(emb · normalize(W)ᵀ, speaker)`` on every support and
query embedding. Queries may be shorter than supports and vary in length from batch to
batch (meta-SR: 2 s supports, 1-2 s queries).
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import keras
import tensorflow as tf

from keras_spkid.audio.frontend import LogMel, SpecAugment
from keras_spkid.augment.channel import ChannelAugment
from keras_spkid.data.episodes import EpisodeSpec, episode_dataset
from keras_spkid.data.feature_cache import frontend_config
from keras_spkid.errors import SpkidError
from keras_spkid.evaluation.fewshot import FewShotEvaluator
from keras_spkid.losses.prototypical import (
    GlobalClassifier,
    prototypical_gc_loss,
    prototypical_loss,
)
from keras_spkid.models import build_encoder, feature_encoder
from keras_spkid.training.config import LOSS_DISTANCES, ProtonetConfig
from keras_spkid.training.data import run_store
from keras_spkid.training.runtime import setup_runtime
from keras_spkid.training.trainer import Trainer, TrainingTask

logger = logging.getLogger(__name__)


class ProtoNetTask(TrainingTask):
    """Encoder + (optional) global classifier trained on batches of episodes.

    Args:
        encoder: ``[B, T, n_mels] -> [B, D]`` model.
        n_way, k_shot: episode shape.
        distance: ``"squared_euclidean"``, ``"euclidean"`` or ``"cosine"`` (with a
            learnable scale, initialised to 10).
        num_speakers: training speakers, for the global classifier.
        gc_weight: weight of the global classification loss (0: off).
        spec_augment: mask time/frequency bands of the training crops.
        channel_augment: telephone band, stationary noise and babble on the training
            crops (:class:`~keras_spkid.augment.channel.ChannelAugment`), before masking.
    """

    def __init__(
        self,
        encoder,
        n_way,
        k_shot,
        distance="squared_euclidean",
        num_speakers=0,
        gc_weight=0.0,
        spec_augment=False,
        seed=0,
        channel_augment=False,
        n_mels=64,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.encoder = encoder
        self.n_way, self.k_shot = n_way, k_shot
        self.distance = distance
        self.gc_weight = gc_weight
        dim = encoder.output_shape[-1]
        self.scale = (
            self.add_weight(
                shape=(), initializer=keras.initializers.Constant(10.0), name="cosine_scale"
            )
            if distance == "cosine"
            else None
        )
        self.classifier = None
        if gc_weight > 0:
            self.classifier = GlobalClassifier(num_speakers)
            self.classifier.build((None, dim))
        self.augment = SpecAugment(seed=seed) if spec_augment else None
        self.channel = ChannelAugment(n_mels=n_mels, seed=seed) if channel_augment else None

    def _embed(self, features, training):
        if self.channel is not None:
            features = self.channel(features, training=training)
        if self.augment is not None:
            features = self.augment(features, training=training)
        return tf.cast(self.encoder(features, training=training), tf.float32)

    def compute_loss_and_metrics(self, batch, training):
        support, query = batch["support"], batch["query"]  # [T, N*K, L, F], [T, N*Q, L', F]

        def embed(x):  # [T, n, L, F] -> [T, n, D], one encoder call for all tasks
            flat = tf.reshape(x, tf.concat([[-1], tf.shape(x)[2:]], 0))
            return tf.reshape(
                self._embed(flat, training),
                [tf.shape(x)[0], tf.shape(x)[1], self.encoder.output_shape[-1]],
            )

        support_emb, query_emb = embed(support), embed(query)
        scale = 1.0 if self.scale is None else self.scale
        if self.classifier is None:
            loss, accuracy = prototypical_loss(
                support_emb,
                query_emb,
                batch["query_labels"],
                self.n_way,
                self.k_shot,
                self.distance,
                scale,
            )
            return loss, {"episode_loss": loss, "accuracy": accuracy}
        terms = prototypical_gc_loss(
            support_emb,
            query_emb,
            batch["query_labels"],
            batch["support_speakers"],
            batch["query_speakers"],
            self.classifier,
            self.n_way,
            self.k_shot,
            self.distance,
            scale,
            self.gc_weight,
        )
        return terms["loss"], {
            "episode_loss": terms["loss_e"],
            "accuracy": terms["accuracy_e"],
            "global_loss": terms["loss_g"],
        }

    def export_model(self):
        return self.encoder


def load_init_model(path, frontend=None) -> keras.Model:
    """The saved ``.keras`` model to initialise an encoder from (an MAE's, a run's, a
    preset's). When it takes raw audio and ``frontend`` is given, the two front ends must
    be the same: its weights were learned on those features.

    Raises:
        SpkidError: an unreadable model, or another front end (naming the flags to give).
    """
    try:
        model = keras.saving.load_model(path, compile=False)
        feature_encoder(model)
    except Exception as error:  # any damage inside a .keras archive: one line, not a traceback
        raise SpkidError(
            f"--init-from {path}: cannot load the model ({type(error).__name__}: "
            f"{str(error).splitlines()[0] if str(error) else ''}); give a best/model.keras "
            "of a train_mae.py or train_protonet.py run, or a preset name"
        ) from None
    saved = [layer for layer in model.layers if isinstance(layer, LogMel)]
    if frontend is not None and saved:
        _check_same_frontend(frontend_config(frontend), frontend_config(saved[0]), path)
    return model


def _check_same_frontend(mine: dict, theirs: dict, path) -> None:
    """One line naming the flags to give when front-end configs ``mine`` and ``theirs``
    differ (settings only one of the two classes has are implied by ``--features``)."""
    features = {cls: name for name, cls in ProtonetConfig.FEATURES.items()}
    flags, others = [], []
    for key in sorted(set(mine) & set(theirs)):
        if mine[key] == theirs[key]:
            continue
        if key == "class":
            flags.insert(0, f"--features {features.get(theirs[key], theirs[key])}")
        elif key in ProtonetConfig.__dataclass_fields__:
            flags.append(f"--{key.replace('_', '-')} {theirs[key]}")
        else:
            others.append(f"{key}={theirs[key]}")
    if flags or others:
        raise SpkidError(
            f"--init_from {path}: that model was trained on other features; "
            + (f"give {' '.join(flags)}" if flags else "")
            + (f"{'; ' if flags else ''}no flag sets its {', '.join(others)}" if others else "")
        )


def load_encoder_weights(encoder, source: keras.Model, path) -> None:
    """Copy the weights of ``source`` (from :func:`load_init_model`) into ``encoder``.

    Layers are matched by name; shapes must agree.

    Raises:
        SpkidError: other shapes, or no layer of ``source`` matches.
    """
    by_name = {layer.name: layer for layer in feature_encoder(source).layers}
    copied = 0
    for layer in encoder.layers:
        other = by_name.get(layer.name)
        if other is None or not layer.weights:
            continue
        if [w.shape for w in layer.weights] != [w.shape for w in other.weights]:
            raise SpkidError(
                f"--init_from {path}: layer {layer.name} has other shapes; "
                "use an encoder of the same architecture and n_mels"
            )
        layer.set_weights(other.get_weights())
        copied += 1
    if not copied:
        raise SpkidError(f"--init_from {path}: no layer of that model matches this encoder")
    logger.info("initialised %d layers from %s", copied, path)


def train_protonet(config: ProtonetConfig, verbose: bool = True) -> dict:
    """Train (or resume) a protonet as ``config`` says; returns the run summary."""
    config.validate()
    runtime = setup_runtime(config.seed, config.mixed_precision, config.strategy)
    init_path = config.init_path()
    source = load_init_model(init_path, config.frontend()) if init_path else None
    train = run_store(config, config.train_corpora, config.train_split, verbose)
    val = run_store(config, config.val_corpora, config.val_split, verbose)
    spec = config.spec
    # Fail now, not after the first step, if the data cannot make these episodes.

    def train_episodes(start):
        return episode_dataset(train, spec, config.batch_size, config.seed, start=start)

    train_episodes(0)
    val_spec = dataclasses.replace(spec, query_frames=config.query_frames)
    distance = LOSS_DISTANCES[config.loss]
    evaluator = FewShotEvaluator(val, val_spec, config.val_tasks, config.seed + 1, distance)

    def build_task():
        encoder = build_encoder(
            config.encoder, n_mels=config.n_mels, embedding_dim=config.embedding_dim
        )
        if source is not None:
            load_encoder_weights(encoder, source, init_path)
        if config.freeze_batchnorm:
            for layer in encoder._flatten_layers(include_self=False):
                if isinstance(layer, keras.layers.BatchNormalization):
                    layer.trainable = False  # Keras 3: also uses the moving statistics
        return ProtoNetTask(
            encoder,
            config.num_way,
            config.num_support,
            distance,
            train.num_speakers,
            config.gc_weight,
            config.spec_augment,
            config.seed,
            config.channel_augment,
            config.n_mels,
        )

    trainer = Trainer.for_run(config, runtime, build_task, verbose=verbose)
    encoder = trainer.task.encoder

    def validate():
        result = evaluator(encoder)
        return {"val_accuracy": result.mean, "val_ci95": result.ci95}

    return trainer.fit(train_episodes, config.num_train_iterations, validate)


def evaluate_protonet(config: ProtonetConfig, model_path=None, ways=None, shots=None) -> dict:
    """Accuracy of the best (or given) encoder on test episodes, for each way x shot."""
    path = Path(model_path or Path(config.log_dir) / "best" / "model.keras")
    if not path.is_file():
        raise SpkidError(f"{path}: no trained model; train first or give --model")
    encoder = feature_encoder(keras.saving.load_model(path, compile=False))
    test = run_store(config, config.test_corpora, config.test_split, progress=False)
    distance = LOSS_DISTANCES[config.loss]
    results = {}
    for way in ways or [config.num_way]:
        for shot in shots or [config.num_support]:
            spec = EpisodeSpec(
                way, shot, config.num_query, config.support_frames, config.query_frames
            )
            result = FewShotEvaluator(test, spec, config.test_tasks, config.seed + 2, distance)(
                encoder
            )
            results[f"{way}-way {shot}-shot"] = dataclasses.asdict(result)
            logger.debug("%d-way %d-shot: %s", way, shot, result)
    return results
