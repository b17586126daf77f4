"""Learning-rate schedules: how the step size changes over a run."""

from __future__ import annotations

import math
from typing import Any

import keras
import tensorflow as tf

from lenet_utils.errors import LenetError
from lenet_utils.lenet5 import paper_steps


@keras.saving.register_keras_serializable(package="lenet_utils")
class OneCycle(keras.optimizers.schedules.LearningRateSchedule):
    """Warm up linearly to a peak learning rate, then anneal to zero on a cosine.

    Starts at ``peak / 25``, reaches ``peak`` after ``warmup_fraction`` of the
    steps, and ends at zero on the last step: large steps once the weights
    have left their random start, small ones to settle at the end.

    Parameters
    ----------
    peak : float
    total_steps : int
    warmup_fraction : float

    Examples
    --------
    >>> schedule = OneCycle(peak=3e-3, total_steps=100)
    >>> round(float(schedule(25)), 6)
    0.003
    """

    def __init__(self, peak: float, total_steps: int, warmup_fraction: float = 0.25) -> None:
        if total_steps < 2 or not 0 < warmup_fraction < 1:
            raise LenetError(f"OneCycle needs total_steps >= 2 (got {total_steps}) and "
                             f"warmup_fraction in (0, 1) (got {warmup_fraction}).")
        self.peak = peak
        self.total_steps = total_steps
        self.warmup_fraction = warmup_fraction

    def __call__(self, step: Any) -> tf.Tensor:
        step = tf.cast(step, tf.float32)
        warmup = max(1.0, round(self.total_steps * self.warmup_fraction))
        rising = self.peak / 25 + (self.peak - self.peak / 25) * step / warmup
        progress = tf.minimum((step - warmup) / (self.total_steps - 1 - warmup), 1.0)
        falling = self.peak * 0.5 * (1 + tf.cos(math.pi * progress))
        return tf.where(step < warmup, rising, falling)

    def get_config(self) -> dict[str, Any]:
        return {"peak": self.peak, "total_steps": self.total_steps,
                "warmup_fraction": self.warmup_fraction}


def one_cycle(learning_rate: float, steps_per_epoch: int, epochs: int) -> OneCycle:
    """A :class:`OneCycle` schedule peaking at ``learning_rate`` over the whole run.

    Examples
    --------
    >>> one_cycle(3e-3, steps_per_epoch=10, epochs=3).total_steps
    30
    """
    return OneCycle(learning_rate, steps_per_epoch * epochs)


def constant(learning_rate: float, steps_per_epoch: int, epochs: int) -> float:
    """The same learning rate at every step.

    Examples
    --------
    >>> constant(0.01, steps_per_epoch=10, epochs=3)
    0.01
    """
    return learning_rate


# name -> function(learning_rate, steps_per_epoch, epochs) returning a rate or a schedule.
SCHEDULES = {"constant": constant, "one_cycle": one_cycle, "lenet5_paper": paper_steps}
