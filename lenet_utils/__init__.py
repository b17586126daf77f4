"""Helpers for the book *LeNet on MNIST, in Keras*.

The notebooks hold the teaching code; this package holds the plumbing they
share: loading and splitting MNIST (:mod:`lenet_utils.data`), the two LeNet
models (:mod:`lenet_utils.models`), profiles, seeding and training
(:mod:`lenet_utils.profile`, :mod:`lenet_utils.training`,
:mod:`lenet_utils.schedules`), the device and its number formats
(:mod:`lenet_utils.device`), the benchmark's recipes and its timing
(:mod:`lenet_utils.fast`, :mod:`lenet_utils.benchmark`) and figures
(:mod:`lenet_utils.plots`).
"""

import os

# Keep TensorFlow's C++ start-up notices (oneDNN, CPU features) out of stored
# notebook outputs; a value the user set wins.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from lenet_utils.errors import LenetError  # noqa: E402

__version__ = "0.2.0"

__all__ = ["LenetError", "__version__"]
