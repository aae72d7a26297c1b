"""The custom training loop every keras-spkid method shares.

A method is a :class:`TrainingTask`: a Keras model that knows how to turn one batch
into a loss and metrics, and which model to export. :class:`Trainer` does the rest, the
same way for all methods:

* a ``GradientTape`` step run under the ``tf.distribute`` strategy (loss divided by the
  number of replicas, gradients all-reduced by the optimizer), optionally XLA-compiled,
  with loss scaling under mixed precision;
* a Keras ``Progbar`` and TensorBoard scalars every ``print_interval`` steps;
* validation every ``test_interval`` steps; the best model (``.keras``) is exported to
  ``<log_dir>/best/`` with the score that chose it;
* checkpoints with the optimizer state every ``test_interval`` steps and at the end;
  a run started again with the same ``log_dir`` resumes from the newest one, and the
  training data restarts at the same element (datasets are pure functions of
  ``(seed, index)``), so resuming reproduces the uninterrupted run.
"""

from __future__ import annotations

import json
import logging
import os
import time
from pathlib import Path
from typing import Callable

import keras
import tensorflow as tf

from keras_spkid.training.checkpoints import CheckpointManager
from keras_spkid.training.progress import progress_bar
from keras_spkid.training.runtime import Runtime

logger = logging.getLogger(__name__)


class TrainingTask(keras.Model):
    """Base class of the models that trainers optimise.

    Subclasses build every variable in ``__init__`` (so the optimizer can be built
    before the first step) and implement :meth:`compute_loss_and_metrics` and
    :meth:`export_model`.
    """

    def compute_loss_and_metrics(self, batch, training: bool):
        """``(scalar loss, {name: scalar metric})`` for one batch (per replica)."""
        raise NotImplementedError

    def export_model(self) -> keras.Model:
        """The model users keep (usually the encoder), saved as ``.keras``."""
        raise NotImplementedError


def save_json(path, obj) -> None:
    """Write JSON atomically (temp file, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(json.dumps(obj, indent=1, sort_keys=True))
    os.replace(tmp, path)


def save_model(model: keras.Model, path) -> None:
    """Save a ``.keras`` model atomically (temp file, then rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".tmp{os.getpid()}-{path.name}")
    model.save(tmp)
    os.replace(tmp, path)


class Trainer:
    """Runs a :class:`TrainingTask` for a number of steps, resumably.

    Args:
        task: the model to train (built under ``runtime.strategy.scope()``).
        optimizer: a Keras optimizer (wrapped in a LossScaleOptimizer under mixed
            precision).
        runtime: from :func:`~keras_spkid.training.runtime.setup_runtime`.
        log_dir: checkpoints, TensorBoard logs, best and final models go here.
        jit_compile: XLA-compile the per-replica step.
        print_interval: steps between progress/TensorBoard updates.
        test_interval: steps between validations and checkpoints.
        best_metric: validation metric to maximise when choosing the best model.
        verbose: show the progress bar.
    """

    def __init__(
        self,
        task: TrainingTask,
        optimizer: keras.optimizers.Optimizer,
        runtime: Runtime,
        log_dir,
        jit_compile: bool = False,
        print_interval: int = 10,
        test_interval: int = 50,
        best_metric: str = "val_accuracy",
        verbose: bool = True,
    ):
        self.task = task
        self.runtime = runtime
        # Multi-worker: every worker saves (symmetric work), only the chief into log_dir.
        self.log_dir = (
            Path(log_dir) if runtime.is_chief else Path(log_dir) / (f".worker-{runtime.worker}")
        )
        self.jit_compile = jit_compile
        self.print_interval = max(1, print_interval)
        self.test_interval = max(1, test_interval)
        self.best_metric = best_metric
        self.verbose = verbose
        with runtime.strategy.scope():
            if runtime.mixed_precision and not isinstance(
                optimizer, keras.optimizers.LossScaleOptimizer
            ):
                optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
            optimizer.build(task.trainable_variables)
        self.optimizer = optimizer
        self.checkpoints = CheckpointManager(self.log_dir / "checkpoints")
        self._train_step = self._make_train_step()

    def _make_train_step(self):
        task, optimizer, strategy = self.task, self.optimizer, self.runtime.strategy
        replicas = self.runtime.replicas
        scaled = isinstance(optimizer, keras.optimizers.LossScaleOptimizer)

        def replica_step(batch):
            with tf.GradientTape() as tape:
                loss, metrics = task.compute_loss_and_metrics(batch, training=True)
                objective = loss / replicas
                if scaled:
                    objective = optimizer.scale_loss(objective)
            variables = task.trainable_variables
            gradients = tape.gradient(objective, variables)
            optimizer.apply(gradients, variables)
            return {"loss": loss, **metrics}

        # reduce_retracing: variable-length queries must not retrace the step per length.
        replica_fn = tf.function(replica_step, jit_compile=self.jit_compile, reduce_retracing=True)

        @tf.function(reduce_retracing=True)
        def train_step(batch):
            outputs = strategy.run(replica_fn, args=(batch,))
            return {
                name: strategy.reduce(tf.distribute.ReduceOp.MEAN, value, axis=None)
                for name, value in outputs.items()
            }

        return train_step

    def fit(
        self,
        make_dataset: Callable[[int], tf.data.Dataset],
        num_steps: int,
        validate: Callable[[], dict] | None = None,
    ) -> dict:
        """Train until ``num_steps`` steps in total have run; returns the final summary.

        Args:
            make_dataset: ``start -> dataset`` whose first element is training step
                ``start`` (so a resumed run sees the same data).
            num_steps: total steps, counting those of earlier runs in ``log_dir``.
            The summary's ``history`` holds the mean metrics of every
            ``print_interval`` steps of this run.
            validate: returns ``{"val_accuracy": ..., ...}``; called every
                ``test_interval`` steps and at the end.
        """
        logger.info(
            "training on %d replica(s)%s%s",
            self.runtime.replicas,
            ", mixed precision" if self.runtime.mixed_precision else "",
            ", XLA" if self.jit_compile else "",
        )
        state = self.checkpoints.restore_latest(self.task, self.optimizer) or {}
        step = int(state.get("step", 0))
        best = state.get("best", {"score": None, "step": None})
        if step:
            logger.info("resuming from step %d of %d (%s)", step, num_steps, self.log_dir)
        if step >= num_steps:
            logger.info("already trained for %d steps", step)
            return {"step": step, "best": best}
        dataset = self.runtime.strategy.experimental_distribute_dataset(make_dataset(step))
        writers = {
            kind: tf.summary.create_file_writer(str(self.log_dir / "tensorboard" / kind))
            for kind in ("train", "val")
        }
        progbar = progress_bar(num_steps, self.verbose)
        totals, count, start_time, history = {}, 0, time.perf_counter(), []
        iterator = iter(dataset)
        metrics = {}
        while step < num_steps:
            metrics = self._train_step(next(iterator))
            step += 1
            for name, value in metrics.items():
                totals[name] = totals.get(name, 0.0) + float(value)
            count += 1
            if step % self.print_interval == 0 or step == num_steps:
                means = {name: total / count for name, total in totals.items()}
                with writers["train"].as_default(step=step):
                    for name, value in means.items():
                        tf.summary.scalar(name, value)
                progbar.update(step, list(means.items()))
                history.append({"step": step, **means})
                totals, count = {}, 0
            if step % self.test_interval == 0 or step == num_steps:
                if validate is not None:
                    results = validate()
                    with writers["val"].as_default(step=step):
                        for name, value in results.items():
                            tf.summary.scalar(name, value)
                    score = results.get(self.best_metric)
                    if score is not None and (best["score"] is None or score > best["score"]):
                        best = {"score": float(score), "step": step, "results": results}
                        save_model(self.task.export_model(), self.log_dir / "best" / "model.keras")
                        save_json(self.log_dir / "best" / "best.json", best)
                    if self.verbose:
                        print(
                            f"\nstep {step}: "
                            + ", ".join(f"{k} {v:.4f}" for k, v in results.items()),
                            flush=True,
                        )
                self.checkpoints.save(step, self.task, self.optimizer, {"best": best})
        for writer in writers.values():
            writer.flush()
        save_model(self.task.export_model(), self.log_dir / "final" / "model.keras")
        elapsed = time.perf_counter() - start_time
        summary = {
            "step": step,
            "best": best,
            "last": {k: float(v) for k, v in metrics.items()},
            "history": history,
            "seconds": elapsed,
        }
        save_json(self.log_dir / "summary.json", summary)
        return summary
