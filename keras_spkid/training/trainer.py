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

import dataclasses
import json
import logging
import time
from pathlib import Path
from typing import Callable

import keras
import tensorflow as tf

from keras_spkid.atomic import atomic_path, remove, write_text_atomic
from keras_spkid.models.registry import with_frontend
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
    """Write JSON atomically (:func:`~keras_spkid.atomic.write_text_atomic`)."""
    write_text_atomic(path, json.dumps(obj, indent=1, sort_keys=True))


def save_model(model: keras.Model, path) -> None:
    """Save a ``.keras`` model atomically (:func:`~keras_spkid.atomic.atomic_path`)."""
    with atomic_path(path, ".keras") as tmp:
        model.save(tmp)


LEFTOVERS = (".tmp*-*.keras", "*.keras.part.keras", ".*.json.tmp*", "*.json.part")
"""Temporary names of models and JSON files a killed run may leave in ``best/``, ``final/``
(the first is the name older versions used)."""


def remove_leftovers(log_dir) -> None:
    """Delete the temporary files a killed run left in ``log_dir``'s model folders."""
    for folder in (Path(log_dir), Path(log_dir) / "best", Path(log_dir) / "final"):
        for pattern in LEFTOVERS:
            for leftover in folder.glob(pattern) if folder.is_dir() else ():
                remove(leftover)


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
        frontend: the run's front end; the exported ``best/`` and ``final/model.keras``
            then take raw audio with it inside (``None``: the bare exported model).
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
        frontend: keras.layers.Layer | None = None,
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
            exported = task.export_model()
            self.exported = exported if frontend is None else with_frontend(exported, frontend)
        self.optimizer = optimizer
        self.checkpoints = CheckpointManager(self.log_dir / "checkpoints")
        self._train_step = self._make_train_step()

    @classmethod
    def for_run(
        cls,
        config,
        runtime: Runtime,
        build_task: Callable[[], TrainingTask],
        best_metric: str = "val_accuracy",
        verbose: bool = True,
    ) -> Trainer:
        """The set-up every trainer shares, from a :class:`~keras_spkid.training.config.
        RunConfig`: ``config.json`` saved in ``log_dir``, the task (``build_task()``) and
        its Adam optimizer made under the strategy, models exported with the run's front end.
        """
        log_dir = Path(config.log_dir)
        save_json(log_dir / "config.json", dataclasses.asdict(config))
        with runtime.strategy.scope():
            task = build_task()
            optimizer = keras.optimizers.Adam(config.learning_rate)
        return cls(
            task,
            optimizer,
            runtime,
            log_dir,
            config.jit_compile,
            config.print_interval,
            config.test_interval,
            best_metric=best_metric,
            verbose=verbose,
            frontend=config.frontend(),
        )

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
        remove_leftovers(self.log_dir)
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
                        save_model(self.exported, self.log_dir / "best" / "model.keras")
                        save_json(self.log_dir / "best" / "best.json", best)
                    if self.verbose:
                        logger.info(
                            "step %d: %s",
                            step,
                            ", ".join(f"{k} {v:.4f}" for k, v in results.items()),
                        )
                self.checkpoints.save(step, self.task, self.optimizer, {"best": best})
        for writer in writers.values():
            writer.flush()
        save_model(self.exported, self.log_dir / "final" / "model.keras")
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
