"""Speaker-classification and metric-learning training (voxceleb_trainer's losses; the
self-attention CNN of "Deep CNNs With Self-Attention for Speaker Identification").

Each step draws a speaker-grouped batch (``speakers_per_batch`` speakers x
``clips_per_speaker`` crops, no speaker twice), embeds it and applies a loss head:
``softmax``, ``amsoftmax``, ``aamsoftmax`` (classification over the training speakers)
or ``angleproto``, ``ge2e``, ``triplet`` (metric learning inside the batch). The
encoder is what is kept: validation measures few-shot accuracy of its embeddings on
speakers never seen in training (``--val_mode fewshot``), or closed-set top-1/top-5
identification of held-out clips of the training speakers (``--val_mode closed_set``,
e.g. the VoxCeleb1 identification split), and the best encoder is exported.
"""

from __future__ import annotations

import tensorflow as tf

from keras_spkid.audio.frontend import SpecAugment
from keras_spkid.data.episodes import EpisodeSpec, speaker_batch_dataset
from keras_spkid.evaluation.fewshot import FewShotEvaluator
from keras_spkid.losses import get_loss_head
from keras_spkid.models import build_encoder
from keras_spkid.training.config import ClassifierConfig
from keras_spkid.training.data import run_store
from keras_spkid.training.runtime import setup_runtime
from keras_spkid.training.trainer import Trainer, TrainingTask


class ClassifierTask(TrainingTask):
    """Encoder + loss head on speaker-grouped batches ``(features, labels)``."""

    def __init__(self, encoder, head, spec_augment=False, seed=0, **kwargs):
        super().__init__(**kwargs)
        self.encoder = encoder
        self.head = head
        self.head.build((None, encoder.output_shape[-1]))
        self.augment = SpecAugment(seed=seed) if spec_augment else None

    def compute_loss_and_metrics(self, batch, training):
        features, labels = batch
        if self.augment is not None:
            features = self.augment(features, training=training)
        embeddings = tf.cast(self.encoder(features, training=training), tf.float32)
        loss, accuracy = self.head(embeddings, labels, training=training)
        return loss, {"accuracy": accuracy}

    def export_model(self):
        return self.encoder


def train_classifier(config: ClassifierConfig, verbose: bool = True) -> dict:
    """Train (or resume) as ``config`` says; returns the run summary."""
    config.validate()
    runtime = setup_runtime(config.seed, config.mixed_precision, config.strategy)
    train = run_store(config, config.train_corpora, config.train_split, verbose)
    # Closed-set validation uses held-out clips of the training speakers' corpora.
    val_corpora = config.train_corpora if config.val_mode == "closed_set" else config.val_corpora
    val = run_store(config, val_corpora, config.val_split, verbose)

    def batches(start):
        return speaker_batch_dataset(
            train,
            config.speakers_per_batch,
            config.clips_per_speaker,
            config.frames,
            config.seed,
            start=start,
        )

    batches(0)  # impossible batch settings fail here, before any work
    val_spec = EpisodeSpec(config.val_way, config.val_shot, 5, config.frames, config.frames)
    head_options = {
        k: v for k, v in (("margin", config.margin), ("scale", config.scale)) if v is not None
    }

    def build_task():
        encoder = build_encoder(
            config.encoder, n_mels=config.n_mels, embedding_dim=config.embedding_dim
        )
        head = get_loss_head(
            config.loss, train.num_speakers, config.clips_per_speaker, **head_options
        )
        return ClassifierTask(encoder, head, config.spec_augment, config.seed)

    trainer = Trainer.for_run(config, runtime, build_task, verbose=verbose)
    task, encoder = trainer.task, trainer.task.encoder

    if config.val_mode == "closed_set":
        val_batches = list(closed_set_batches(val.relabel(train.speakers), config.frames))
    else:
        evaluator = FewShotEvaluator(val, val_spec, config.val_tasks, config.seed + 1, "cosine")

    def validate():
        if config.val_mode == "closed_set":
            return closed_set_accuracy(task, val_batches)
        result = evaluator(encoder)
        return {"val_accuracy": result.mean, "val_ci95": result.ci95}

    return trainer.fit(batches, config.num_train_iterations, validate)


def closed_set_batches(store, frames: int, batch_size: int = 64):
    """Every item of ``store`` once, its first ``frames`` frames (repeated if shorter),
    as ``(features [n, frames, n_mels], labels [n])`` batches: a fixed validation set."""
    import numpy as np

    for start in range(0, len(store), batch_size):
        items = range(start, min(start + batch_size, len(store)))
        crops = [np.resize(store.item(i), (frames, store.data.shape[1])) for i in items]
        yield (
            tf.constant(np.stack(crops), tf.float32),
            tf.constant(store.labels[start : start + len(crops)]),
        )


def closed_set_accuracy(task: ClassifierTask, batches) -> dict:
    """Top-1 and top-5 accuracy of the classifier head over fixed batches."""
    hits1 = hits5 = total = 0
    for features, labels in batches:
        logits = task.head.logits(task.encoder(features, training=False))
        top5 = tf.math.top_k(logits, k=min(5, logits.shape[-1])).indices
        labels = tf.cast(labels, top5.dtype)
        hits1 += int(tf.reduce_sum(tf.cast(tf.equal(top5[:, 0], labels), tf.int32)))
        hits5 += int(
            tf.reduce_sum(tf.cast(tf.reduce_any(tf.equal(top5, labels[:, None]), 1), tf.int32))
        )
        total += int(labels.shape[0])
    return {"val_accuracy": hits1 / total, "val_top5": hits5 / total}
