"""The two recipes of the time-to-99% benchmark: the starting script's and the fast one.

Both are :class:`~lenet_utils.training.TrainingConfig` objects, so
:func:`~lenet_utils.training.train_or_load` and
:func:`~lenet_utils.benchmark.time_to_accuracy` take them as they are.
Appendix 10 shows how the fast recipe was chosen: a search on the validation
set, confirmed over seeds.
"""

from __future__ import annotations

from lenet_utils.training import TrainingConfig

STARTING_RECIPE = TrainingConfig(
    model="lenet", optimizer="sgd", learning_rate=0.01, batch_size=128, epochs=20,
    pipeline="numpy_float64", loss="categorical_crossentropy",
)
"""The starting script, exactly: float64 NumPy arrays, one-hot labels, SGD 0.01, batch 128."""

FAST_RECIPE = TrainingConfig(
    model="lenet", optimizer="adam", learning_rate=3e-3, schedule="one_cycle",
    batch_size=256, epochs=3, precision="auto",
)
"""Adam with a one-cycle schedule peaking at 0.003, batches of 256, 3 epochs, and
bfloat16 where the device computes it faster than float32."""
