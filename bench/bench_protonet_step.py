"""Seconds per protonet training step: eager vs ``tf.function`` vs XLA (and GPU when present).

What is measured: one optimisation step of
:class:`keras_spkid.training.protonet.ProtoNetTask` through the project's
:class:`~keras_spkid.training.trainer.Trainer` (the step every ``train_protonet.py`` run
takes): a batch of 4 episodes, 5-way 5-shot 15-query, the CS330 ``conv6`` encoder on
200-frame x 64-mel crops (400 crops per step), squared-Euclidean prototypes, Adam.

* eager: the same per-replica step function called without ``tf.function``;
* tf.function: the trainer's compiled step (the default);
* XLA: the trainer with ``jit_compile=True``;
* mixed precision + XLA: only on a GPU (mixed_float16 on a CPU is slow by design).

Baseline, in the same run and repetitions: a plain Keras ``tf.function`` step of the
same encoder on the same 400 crops (encoder forward, a mean-square loss, gradients,
Adam) without episodes, prototypes or the distribution machinery, so the ratio shows
what the project's loop costs on top of the network itself.

Inputs are random tensors of the right shapes, so data loading is not part of the step
(the episode pipeline is measured by ``bench_episodes.py``).

Run: ``.venv/bin/python bench/bench_protonet_step.py [--record]``
"""

from __future__ import annotations

import _common  # first: it quiets TensorFlow's start-up logging
import numpy as np

N_WAY, K_SHOT, Q_QUERY, TASKS, FRAMES, N_MELS = 5, 5, 15, 4, 200, 64


def _batch(tf):
    rng = np.random.default_rng(0)
    support = rng.normal(size=(TASKS, N_WAY * K_SHOT, FRAMES, N_MELS)).astype("float32")
    query = rng.normal(size=(TASKS, N_WAY * Q_QUERY, FRAMES, N_MELS)).astype("float32")
    labels = np.tile(np.repeat(np.arange(N_WAY), Q_QUERY), (TASKS, 1)).astype("int32")
    return {
        "support": tf.constant(support),
        "query": tf.constant(query),
        "query_labels": tf.constant(labels),
        "support_speakers": tf.zeros((TASKS, N_WAY * K_SHOT), tf.int32),
        "query_speakers": tf.zeros((TASKS, N_WAY * Q_QUERY), tf.int32),
    }


def _trainer(jit_compile, mixed_precision, log_dir):
    import keras

    from keras_spkid.models import build_encoder
    from keras_spkid.training.protonet import ProtoNetTask
    from keras_spkid.training.runtime import setup_runtime
    from keras_spkid.training.trainer import Trainer

    runtime = setup_runtime(0, mixed_precision=mixed_precision, deterministic=False)
    encoder = build_encoder("conv6", n_mels=N_MELS)
    task = ProtoNetTask(encoder, N_WAY, K_SHOT)
    return Trainer(
        task, keras.optimizers.Adam(1e-3), runtime, log_dir, jit_compile=jit_compile, verbose=False
    )


def _plain_step(tf, batch):
    """The network alone: encoder on all 400 crops, MSE loss, Adam; in a tf.function."""
    import keras

    from keras_spkid.models import build_encoder

    encoder = build_encoder("conv6", n_mels=N_MELS)
    optimizer = keras.optimizers.Adam(1e-3)
    optimizer.build(encoder.trainable_variables)
    crops = tf.concat(
        [
            tf.reshape(batch["support"], (-1, FRAMES, N_MELS)),
            tf.reshape(batch["query"], (-1, FRAMES, N_MELS)),
        ],
        0,
    )

    @tf.function
    def step():
        with tf.GradientTape() as tape:
            loss = tf.reduce_mean(tf.square(encoder(crops, training=True)))
        grads = tape.gradient(loss, encoder.trainable_variables)
        optimizer.apply(grads, encoder.trainable_variables)
        return loss

    return lambda: step().numpy()


def _eager_step(trainer, batch):
    """The trainer's per-replica step body, run op by op (no tf.function)."""
    import tensorflow as tf

    task, optimizer = trainer.task, trainer.optimizer

    def step():
        with tf.GradientTape() as tape:
            loss, _ = task.compute_loss_and_metrics(batch, training=True)
        grads = tape.gradient(loss, task.trainable_variables)
        optimizer.apply(grads, task.trainable_variables)
        return float(loss)

    return step


def main():
    parser = _common.base_parser(__doc__)
    parser.add_argument("--steps", type=int, default=2, help="steps timed per measurement")
    args = parser.parse_args()
    import tempfile

    import tensorflow as tf

    gpu = bool(tf.config.list_physical_devices("GPU"))
    batch = _batch(tf)
    with tempfile.TemporaryDirectory() as tmp:
        variants = {"plain Keras tf.function (baseline)": _plain_step(tf, batch)}
        compiled = _trainer(False, False, f"{tmp}/a")
        variants["eager"] = _eager_step(_trainer(False, False, f"{tmp}/b"), batch)
        variants["tf.function (default)"] = lambda: compiled._train_step(batch)["loss"].numpy()
        xla = _trainer(True, False, f"{tmp}/c")
        variants["XLA (jit_compile)"] = lambda: xla._train_step(batch)["loss"].numpy()
        if gpu:
            mp_xla = _trainer(True, True, f"{tmp}/d")
            variants["mixed precision + XLA"] = lambda: mp_xla._train_step(batch)["loss"].numpy()
        for fn in variants.values():  # warm-up: tracing, XLA compilation
            fn()

        def repeated(fn):
            return lambda: [fn() for _ in range(args.steps)]

        times = _common.repeat_paired({k: repeated(v) for k, v in variants.items()}, args.repeats)
    baseline = times["plain Keras tf.function (baseline)"]
    rows = []
    for name, seconds in times.items():
        per_step = [s / args.steps for s in seconds]
        ratio = (
            "1 (baseline)"
            if seconds is baseline
            else _common.fmt(_common.paired_ratio(seconds, baseline))
        )
        rows.append([name, _common.fmt(_common.median(per_step)), _common.spread(per_step), ratio])
    device = "GPU" if gpu else "CPU (no GPU on this machine: GPU rows not measured)"
    body = (
        f"Device: {device}. One step = {TASKS} episodes of {N_WAY}-way {K_SHOT}-shot "
        f"{Q_QUERY}-query, conv6 encoder, {FRAMES} frames x {N_MELS} mels "
        f"({TASKS * N_WAY * (K_SHOT + Q_QUERY)} crops), Adam. {args.steps} steps per "
        f"measurement, {args.repeats} repeats, tracing/compilation not timed.\n\n"
        + _common.table(
            [
                "variant",
                "median s/step",
                "s/step min-max",
                "time vs plain Keras step (x, lower is better)",
            ],
            rows,
        )
    )
    _common.finish(
        args,
        "protonet_step",
        "Protonet training step (`bench/bench_protonet_step.py`)",
        _common.environment(),
        body,
    )


if __name__ == "__main__":
    main()
