"""Where and how training runs: seeds, determinism, precision and distribution.

One call, :func:`setup_runtime`, before any model is built, so every trainer gets the
same behaviour from the same flags:

* ``seed``: Python, numpy and TensorFlow/Keras seeds; with ``deterministic=True`` TF's
  op determinism too, so a resumed run reproduces an uninterrupted one.
* ``mixed_precision``: the ``mixed_float16`` Keras policy (GPU); models keep float32
  variables and outputs, trainers wrap the optimizer in a ``LossScaleOptimizer``.
* ``strategy``: ``"default"`` (one device), ``"mirrored"`` (all local GPUs, or the
  logical CPUs made by ``cpu_devices``), ``"multiworker"`` (one process per machine,
  configured by ``TF_CONFIG``).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import random

import numpy as np

from keras_spkid.errors import SpkidError

logger = logging.getLogger(__name__)

STRATEGIES = ("default", "mirrored", "multiworker")


@dataclasses.dataclass(frozen=True)
class Runtime:
    """What :func:`setup_runtime` decided.

    Attributes:
        strategy: the ``tf.distribute`` strategy to build models and run steps under.
        mixed_precision: True when the ``mixed_float16`` policy is active.
        replicas: ``strategy.num_replicas_in_sync``.
        worker: index of this process among the workers (0 unless multi-worker); only
            worker 0, the chief, writes checkpoints and models to ``--log_dir``.
    """

    strategy: object
    mixed_precision: bool
    replicas: int
    worker: int = 0

    @property
    def is_chief(self) -> bool:
        return self.worker == 0


def split_cpu(num_devices: int) -> None:
    """Split the physical CPU into ``num_devices`` logical devices.

    Lets ``MirroredStrategy`` run (and be tested) on a machine without GPUs. Must be
    called before TensorFlow initialises its devices.
    """
    import tensorflow as tf

    cpus = tf.config.list_physical_devices("CPU")
    current = tf.config.get_logical_device_configuration(cpus[0])
    if current is not None and len(current) == num_devices:
        return
    try:
        tf.config.set_logical_device_configuration(
            cpus[0], [tf.config.LogicalDeviceConfiguration()] * num_devices
        )
    except RuntimeError as error:
        raise SpkidError(
            f"cannot split the CPU into {num_devices} devices after TensorFlow started "
            f"({error}); set SPKID_CPU_DEVICES={num_devices} before starting"
        ) from None


def setup_runtime(
    seed: int = 0,
    mixed_precision: bool = False,
    strategy: str = "default",
    deterministic: bool = True,
) -> Runtime:
    """Seed everything, choose precision and build the distribution strategy."""
    import keras
    import tensorflow as tf

    if strategy not in STRATEGIES:
        raise SpkidError(f"--strategy must be one of {', '.join(STRATEGIES)}, got {strategy!r}")
    if os.environ.get("SPKID_CPU_DEVICES"):
        split_cpu(int(os.environ["SPKID_CPU_DEVICES"]))
    random.seed(seed)
    np.random.seed(seed)
    keras.utils.set_random_seed(seed)
    if deterministic:
        tf.config.experimental.enable_op_determinism()
    keras.mixed_precision.set_global_policy("mixed_float16" if mixed_precision else "float32")
    if mixed_precision and not tf.config.list_physical_devices("GPU"):
        logger.warning("mixed precision without a GPU is slow on CPU; use it on GPUs")
    if strategy == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        devices = [d.name for d in gpus] or [d.name for d in tf.config.list_logical_devices("CPU")]
        dist = tf.distribute.MirroredStrategy(
            devices=devices,
            cross_device_ops=None if gpus else tf.distribute.ReductionToOneDevice(),
        )
    elif strategy == "multiworker":
        if "TF_CONFIG" not in os.environ:
            raise SpkidError("--strategy multiworker needs TF_CONFIG describing the cluster")
        dist = tf.distribute.MultiWorkerMirroredStrategy()
        return Runtime(
            dist,
            mixed_precision,
            dist.num_replicas_in_sync,
            _worker_index(json.loads(os.environ["TF_CONFIG"])),
        )
    else:
        dist = tf.distribute.get_strategy()
    return Runtime(dist, mixed_precision, dist.num_replicas_in_sync)


def _worker_index(tf_config: dict) -> int:
    """0 for the chief (an explicit "chief" task, else worker 0), 1.. for the others."""
    task = tf_config.get("task", {})
    if task.get("type") == "chief":
        return 0
    has_chief = bool(tf_config.get("cluster", {}).get("chief"))
    return int(task.get("index", 0)) + (1 if has_chief else 0)
