"""Learning-rate schedules: how the step size changes over a run."""

from __future__ import annotations

import math
from typing import Any

import keras
import tensorflow as tf

from lenet_utils.errors import LenetError
from lenet_utils.lenet5 import PAPER_STEPS, paper_steps


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


def paper_step_of_pass(pass_number: int) -> float:
    """The paper's global step for one pass (III.C), counted from 1.

    Examples
    --------
    >>> paper_step_of_pass(3)
    0.0002
    """
    if pass_number < 1:
        raise LenetError(f"pass_number={pass_number} counts from 1.")
    last_pass = 0
    for count, step in PAPER_STEPS[:-1]:
        last_pass += count
        if pass_number <= last_pass:
            return step
    return PAPER_STEPS[-1][1]


def paper_steps_rescaled_from(
    learning_rate: float, steps_per_epoch: int, epochs: int, *, from_pass: int,
    later_scale: float,
) -> keras.optimizers.schedules.PiecewiseConstantDecay:
    """The paper's steps starting at ``learning_rate``, rescaled from one pass on.

    Pass ``p`` takes the paper's step for ``p`` times ``learning_rate / 0.0005``,
    and times ``later_scale`` as well from pass ``from_pass`` on: with
    ``later_scale=1`` it is ``"lenet5_paper"``. It tells apart where in the
    run a larger step acts, the early passes or the late ones.

    Parameters
    ----------
    learning_rate : float
        The first pass's step; 0.0005 is the paper's.
    steps_per_epoch, epochs : int
        Steps in one pass, and passes in the run.
    from_pass : int
        The first pass (counted from 1) that ``later_scale`` multiplies.
    later_scale : float

    Examples
    --------
    >>> schedule = paper_steps_rescaled_from(
    ...     5e-4, steps_per_epoch=10, epochs=20, from_pass=13, later_scale=4)
    >>> round(float(schedule(115)), 6), round(float(schedule(125)), 6)
    (5e-05, 4e-05)
    """
    if isinstance(from_pass, bool) or not isinstance(from_pass, int) or not (
            2 <= from_pass <= epochs):
        raise LenetError(f"from_pass={from_pass!r} must be a whole pass in 2..{epochs}, "
                         f"the run's passes after the first.")
    if not (math.isfinite(later_scale) and later_scale > 0) or steps_per_epoch < 1:
        raise LenetError(f"later_scale={later_scale!r} must be positive and finite, "
                         f"steps_per_epoch={steps_per_epoch} positive.")
    scale = learning_rate / PAPER_STEPS[0][1]
    steps = [scale * paper_step_of_pass(p) * (later_scale if p >= from_pass else 1.0)
             for p in range(1, epochs + 1)]
    return keras.optimizers.schedules.PiecewiseConstantDecay(
        [steps_per_epoch * p - 1 for p in range(1, epochs)], steps)


# name -> function(learning_rate, steps_per_epoch, epochs) returning a rate or a schedule;
# keyword-only parameters after those come from TrainingConfig.schedule_options.
SCHEDULES = {"constant": constant, "one_cycle": one_cycle, "lenet5_paper": paper_steps,
             "lenet5_paper_rescaled_from": paper_steps_rescaled_from}
