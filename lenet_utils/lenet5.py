"""LeNet-5 as published by LeCun, Bottou, Bengio and Haffner (1998), in Keras.

The model (:func:`build_lenet5`), its output units and loss (:class:`RBFOutput`,
:class:`RBFLoss`), the paper's training-set distortions
(:class:`RandomAffineDistortion`), its step schedule (:func:`paper_schedule`)
and its optimizer, stochastic diagonal Levenberg-Marquardt (:class:`SDLM`,
with :func:`diagonal_curvature` and :class:`CurvatureEstimate`).

Section numbers refer to the paper: II.B describes the layers, II.C and
Appendix A the initialisation and the loss, Appendix C the optimizer, III.C the
training schedule and the distortions.
"""

from __future__ import annotations

import functools

import keras
import numpy as np
import tensorflow as tf
from keras import layers, ops

from lenet_utils.errors import LenetError

# Table I of the paper: which S2 maps each C3 map reads.
C3_CONNECTIONS = (
    (0, 1, 2), (1, 2, 3), (2, 3, 4), (3, 4, 5), (4, 5, 0), (5, 0, 1),
    (0, 1, 2, 3), (1, 2, 3, 4), (2, 3, 4, 5), (3, 4, 5, 0), (4, 5, 0, 1),
    (5, 0, 1, 2),
    (0, 1, 3, 4), (1, 2, 4, 5), (0, 2, 3, 5),
    (0, 1, 2, 3, 4, 5),
)
# Section II.A: "the value of the background level (white) corresponds to a
# value of -0.1 and the foreground (black) corresponds to 1.175".
BACKGROUND = -0.1
INK = 1.175
# Section II.C / Appendix A: weights uniform in +-2.4 / fan-in. "sqrt_fan_in"
# reads the printed F_i as its square root (see init_limit).
INIT_RANGE = 2.4
INIT_SCALES = ("fan_in", "sqrt_fan_in")
# Eq. 9's constant j: the paper gives no value (see RBFLoss).
RBF_LOSS_J = 0.1
# Section III.C: global step eta per pass (2 passes at 0.0005, 3 at 0.0002,
# 3 at 0.0001, 4 at 0.00005, then 0.00001), and Appendix C's mu.
PAPER_STEPS = ((2, 5e-4), (3, 2e-4), (3, 1e-4), (4, 5e-5), (None, 1e-5))
SDLM_MU = 0.02
CURVATURE_SAMPLES = 500
OUTPUTS = ("rbf", "softmax")

# The fixed RBF codes: our stylised 7-wide, 12-tall bitmaps of the digits,
# "#" = +1 (ink), "." = -1 (background). The paper's own bitmaps (its Fig. 3)
# are printed, not published as data.
DIGIT_BITMAPS = (
    (".......", "..###..", ".#...#.", "#.....#", "#.....#", "#.....#",
     "#.....#", "#.....#", "#.....#", ".#...#.", "..###..", "......."),
    (".......", "...#...", "..##...", ".#.#...", "...#...", "...#...",
     "...#...", "...#...", "...#...", "...#...", ".#####.", "......."),
    (".......", "..###..", ".#...#.", "#.....#", "......#", ".....#.",
     "....#..", "...#...", "..#....", ".#.....", "#######", "......."),
    (".......", ".#####.", "#.....#", "......#", "......#", "..####.",
     "......#", "......#", "......#", "#.....#", ".#####.", "......."),
    (".......", ".....#.", "....##.", "...#.#.", "..#..#.", ".#...#.",
     "#....#.", "#######", ".....#.", ".....#.", ".....#.", "......."),
    (".......", "#######", "#......", "#......", "#......", "######.",
     "......#", "......#", "......#", "#.....#", ".#####.", "......."),
    (".......", "..####.", ".#.....", "#......", "#......", "######.",
     "#.....#", "#.....#", "#.....#", "#.....#", ".#####.", "......."),
    (".......", "#######", "......#", ".....#.", ".....#.", "....#..",
     "....#..", "...#...", "...#...", "..#....", "..#....", "......."),
    (".......", ".#####.", "#.....#", "#.....#", "#.....#", ".#####.",
     "#.....#", "#.....#", "#.....#", "#.....#", ".#####.", "......."),
    (".......", ".#####.", "#.....#", "#.....#", "#.....#", "#.....#",
     ".######", "......#", "......#", ".....#.", ".####..", "......."),
)


def digit_codes() -> np.ndarray:
    """The RBF units' fixed codes: one 7x12 bitmap of +-1 per digit.

    Returns
    -------
    ndarray of shape (10, 84), float32
        Row ``d`` is digit ``d``'s bitmap read row by row: +1 ink, -1
        background.

    Examples
    --------
    >>> digit_codes().shape
    (10, 84)
    """
    return np.array(
        [[1.0 if pixel == "#" else -1.0 for row in bitmap for pixel in row]
         for bitmap in DIGIT_BITMAPS], dtype=np.float32)


@keras.saving.register_keras_serializable(package="lenet_utils")
def scaled_tanh(x):
    """LeCun's squashing function ``1.7159 * tanh(2x / 3)``.

    Its gain makes f(1) = 1 and f(-1) = -1, so targets of +-1 sit in the
    function's most non-linear region, not at its asymptotes.

    Examples
    --------
    >>> round(float(scaled_tanh(1.0)), 3)
    1.0
    """
    return 1.7159 * ops.tanh(x * (2.0 / 3.0))


def init_limit(fan_in, scale: str = "fan_in"):
    """The bound of the paper's uniform initialisation for units of ``fan_in`` inputs.

    Parameters
    ----------
    fan_in : int or array of int
        Inputs of one unit (25 for C1, 4 for an S unit, 400 for C5, ...).
    scale : {"fan_in", "sqrt_fan_in"}
        ``"fan_in"`` is the paper as printed, ``2.4 / fan_in``;
        ``"sqrt_fan_in"`` is ``2.4 / sqrt(fan_in)``, the scale of LeCun's
        advice elsewhere (weights of standard deviation about ``fan_in**-0.5``,
        "Efficient BackProp", 1998), which keeps the weighted sums near unit
        size instead of shrinking them layer by layer.

    Returns
    -------
    float or ndarray

    Examples
    --------
    >>> init_limit(25), init_limit(25, "sqrt_fan_in")
    (0.096, 0.48)
    """
    if scale not in INIT_SCALES:
        raise LenetError(f"init_scale={scale!r} is not an option; choose one of "
                         f"{', '.join(INIT_SCALES)}.")
    fan_in = np.asarray(fan_in, dtype=float)
    if np.any(fan_in < 1):
        raise LenetError(f"fan_in={fan_in} must be a positive number of inputs.")
    limit = INIT_RANGE / (fan_in if scale == "fan_in" else np.sqrt(fan_in))
    return float(limit) if limit.ndim == 0 else limit


def paper_initializer(fan_in: int, scale: str = "fan_in") -> keras.initializers.Initializer:
    """Uniform in ``+-init_limit(fan_in, scale)``, the paper's initialisation (Appendix A).

    Parameters
    ----------
    fan_in : int
        Inputs of one unit (25 for C1, 4 for an S unit, 400 for C5, ...).
    scale : {"fan_in", "sqrt_fan_in"}
        See :func:`init_limit`; ``"fan_in"`` is the paper as printed.

    Returns
    -------
    keras.initializers.RandomUniform
        Seeded by Keras's global seed (:func:`keras.utils.set_random_seed`).

    Examples
    --------
    >>> paper_initializer(25).maxval
    0.096
    """
    limit = init_limit(fan_in, scale)
    return keras.initializers.RandomUniform(-limit, limit)


@keras.saving.register_keras_serializable(package="lenet_utils")
class PerUnitUniform(keras.initializers.Initializer):
    """Uniform in ``+-limits[i]`` for unit ``i``: C3's biases, whose maps differ in fan-in.

    Examples
    --------
    >>> tuple(PerUnitUniform([0.1, 0.2])((2,)).shape)
    (2,)
    """

    def __init__(self, limits):
        self.limits = [float(limit) for limit in np.ravel(limits)]
        self._uniform = keras.initializers.RandomUniform(-1.0, 1.0)

    def __call__(self, shape, dtype=None):
        return self._uniform(shape, dtype=dtype) * ops.convert_to_tensor(self.limits, dtype)

    def get_config(self):
        return {"limits": self.limits}


@keras.saving.register_keras_serializable(package="lenet_utils")
class TrainableSubsampling(layers.Layer):
    """LeNet-5's S layers: 2x2 sums times a trainable coefficient plus a bias.

    Two parameters per feature map, both drawn like every weight of the paper
    (uniform in +-2.4 / 4, the fan-in being the four summed inputs), then the
    squashing function. ``init_scale`` is :func:`init_limit`'s ``scale``.
    """

    def __init__(self, activation=scaled_tanh, init_scale: str = "fan_in", **kwargs):
        super().__init__(**kwargs)
        self.activation = keras.activations.get(activation)
        self.init_scale = init_scale
        init_limit(4, init_scale)  # an unknown scale fails here, not at build

    def build(self, input_shape):
        channels = input_shape[-1]
        self.coefficient = self.add_weight(shape=(channels,), name="coefficient",
                                           initializer=paper_initializer(4, self.init_scale))
        self.bias = self.add_weight(shape=(channels,), name="bias",
                                    initializer=paper_initializer(4, self.init_scale))

    def pre_activation(self, inputs, weights):
        """The weighted sums before squashing, with ``weights`` = [coefficient, bias]."""
        coefficient, bias = weights
        sums = 4.0 * ops.average_pool(inputs, pool_size=2, strides=2, padding="valid")
        return sums * coefficient + bias

    def call(self, inputs):
        return self.activation(self.pre_activation(inputs, [self.coefficient, self.bias]))

    def compute_output_shape(self, input_shape):
        batch, height, width, channels = input_shape
        return (batch, height // 2, width // 2, channels)

    def get_config(self):
        config = super().get_config()
        config.update(activation=keras.activations.serialize(self.activation),
                      init_scale=self.init_scale)
        return config


@keras.saving.register_keras_serializable(package="lenet_utils")
class PartialConv2D(layers.Layer):
    """A convolution in which each output map reads only some input maps.

    The layer stores one kernel per output map, shaped for its own inputs, so
    it holds exactly the weights of the connection table (C3: 1,516), not a
    masked full kernel. To run fast it scatters them, with zeros for the
    missing connections, into one full kernel and makes a single convolution:
    the zeros are rebuilt at every call and never trained. Each map's weights
    are drawn uniformly in +-2.4 / fan-in, its fan-in being 25 times the maps
    it reads (``init_scale`` is :func:`init_limit`'s ``scale``).
    """

    def __init__(self, connections, kernel_size=5, activation=scaled_tanh,
                 init_scale: str = "fan_in", **kwargs):
        super().__init__(**kwargs)
        self.connections = tuple(tuple(int(i) for i in maps) for maps in connections)
        self.kernel_size = int(kernel_size)
        self.activation = keras.activations.get(activation)
        self.init_scale = init_scale
        init_limit(1, init_scale)  # an unknown scale fails here, not at build

    def build(self, input_shape):
        size, in_maps = self.kernel_size, int(input_shape[-1])
        if max(max(maps) for maps in self.connections) >= in_maps:
            raise LenetError(f"connections name input map {in_maps} or above, but the "
                             f"input has {in_maps} maps; fix the connection table.")
        self.kernels = [
            self.add_weight(shape=(size, size, len(maps), 1), name=f"kernel_{index}",
                            initializer=paper_initializer(size * size * len(maps),
                                                          self.init_scale))
            for index, maps in enumerate(self.connections)
        ]
        fan_ins = [size * size * len(maps) for maps in self.connections]
        self.bias = self.add_weight(shape=(len(self.connections),), name="bias",
                                    initializer=PerUnitUniform(init_limit(fan_ins,
                                                                          self.init_scale)))
        self._scatter = _scatter_indices(self.connections, size, in_maps)

    def full_kernel(self, kernels):
        """The ``(size, size, inputs, outputs)`` kernel, zeros where unconnected."""
        flat = ops.concatenate([ops.reshape(kernel, (-1,)) for kernel in kernels]
                               + [ops.zeros((1,), kernels[0].dtype)], axis=0)
        return ops.take(flat, self._scatter, axis=0)

    def pre_activation(self, inputs, weights):
        """The convolution plus bias, with ``weights`` = kernels then bias."""
        *kernels, bias = weights
        return ops.conv(inputs, self.full_kernel(kernels), padding="valid") + bias

    def call(self, inputs):
        return self.activation(self.pre_activation(inputs, [*self.kernels, self.bias]))

    def compute_output_shape(self, input_shape):
        batch, height, width, _ = input_shape
        shrink = self.kernel_size - 1
        return (batch, height - shrink, width - shrink, len(self.connections))

    def get_config(self):
        config = super().get_config()
        config.update(connections=[list(maps) for maps in self.connections],
                      kernel_size=self.kernel_size,
                      activation=keras.activations.serialize(self.activation),
                      init_scale=self.init_scale)
        return config


def _scatter_indices(connections, size: int, in_maps: int) -> np.ndarray:
    """For each entry of the full kernel, its index in the stored weights.

    The stored weights are the per-map kernels flattened and concatenated;
    an unconnected entry points one past the end, where a zero is appended.
    """
    stored = sum(size * size * len(maps) for maps in connections)
    index = np.full((size, size, in_maps, len(connections)), stored, dtype=np.int32)
    offset = 0
    for out_map, maps in enumerate(connections):
        count = size * size * len(maps)
        block = np.arange(offset, offset + count).reshape(size, size, len(maps))
        index[:, :, list(maps), out_map] = block
        offset += count
    return index


@keras.saving.register_keras_serializable(package="lenet_utils")
class RBFOutput(layers.Layer):
    """The paper's output: one Euclidean RBF unit per digit over fixed codes.

    Unit ``i`` computes the penalty ``y_i = sum_j (x_j - c_ij)^2``, the
    squared distance between F6's 84 outputs and digit ``i``'s 7x12 bitmap
    (:func:`digit_codes`); the codes are constants, never trained, and not
    stored as weights. The layer returns the *negated* penalties, so that the
    largest output is the predicted digit, as with softmax, and Keras's
    accuracy metric works unchanged.
    """

    def build(self, input_shape):
        if input_shape[-1] != 84:
            raise LenetError(f"RBFOutput needs 84 inputs (a 7x12 bitmap), got "
                             f"{input_shape[-1]}; put it after an 84-unit F6.")
        self.codes = ops.convert_to_tensor(digit_codes())

    def call(self, inputs):
        squared = ops.sum(ops.square(inputs), axis=-1, keepdims=True)
        cross = ops.matmul(inputs, ops.transpose(self.codes))
        penalties = squared - 2.0 * cross + ops.sum(ops.square(self.codes), axis=-1)
        return -penalties

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], 10)


@keras.saving.register_keras_serializable(package="lenet_utils")
class RBFLoss(keras.losses.Loss):
    """The paper's loss for RBF outputs, its eq. 9, per image.

    ``E = y_D + log(exp(-j) + sum_i exp(-y_i))``: the correct digit's
    penalty ``y_D`` is pulled down, and the penalties of the other digits are
    pushed up while they are small, with the constant ``j`` keeping already
    large penalties from being pushed further. With scores ``s = -y`` (what
    :class:`RBFOutput` returns) this is the cross-entropy of a softmax over
    the ten scores plus an eleventh, "rubbish" class of fixed score ``-j``.
    The paper gives no value for ``j``; we use 0.1 (:data:`RBF_LOSS_J`):
    the wrong digits' penalties are tens (their codes differ from the right
    one in many of the 84 places), so any small ``j`` acts alike.

    Parameters
    ----------
    j : float
        The positive constant of eq. 9.

    Examples
    --------
    >>> loss = RBFLoss()
    >>> round(float(loss([0], [[0.0] + [-100.0] * 9])), 3)  # log(1 + e^-0.1)
    0.644
    """

    def __init__(self, j: float = RBF_LOSS_J, name: str = "rbf_loss", **kwargs):
        super().__init__(name=name, **kwargs)
        if j <= 0:
            raise LenetError(f"j={j} must be positive (the paper's eq. 9).")
        self.j = float(j)

    def call(self, y_true, y_pred):
        scores = ops.convert_to_tensor(y_pred)
        labels = ops.cast(ops.reshape(y_true, (-1,)), "int32")
        rubbish = ops.full((ops.shape(scores)[0], 1), -self.j, dtype=scores.dtype)
        normaliser = ops.logsumexp(ops.concatenate([scores, rubbish], axis=-1), axis=-1)
        correct = ops.take_along_axis(scores, labels[:, None], axis=-1)[:, 0]
        return normaliser - correct

    def get_config(self):
        return {**super().get_config(), "j": self.j}


@keras.saving.register_keras_serializable(package="lenet_utils")
class RandomAffineDistortion(layers.Layer):
    """The paper's training distortions: random planar affine maps (III.C).

    Each training image gets its own horizontal and vertical translation,
    scaling, squeezing (horizontal compression with vertical elongation, or
    the reverse) and horizontal shearing, drawn uniformly within the given
    ranges; ``keep`` of the images pass unchanged (the paper's set was 60,000
    originals among 600,000 patterns, so 10%). The paper does not give the
    ranges; the defaults are ours. At inference the layer does nothing.

    Parameters
    ----------
    translation : float
        Largest shift, in pixels, each way.
    scaling : float
        Largest relative change of size (0.1: 90% to 110%).
    squeezing : float
        Largest relative squeeze: width times ``1 + q``, height over it.
    shearing : float
        Largest horizontal shear (x shifts by ``shear * y``).
    keep : float
        Fraction of images left undistorted.
    fill_value : float
        Value of pixels moved in from outside the image.
    seed : int, optional
    """

    def __init__(self, translation=2.0, scaling=0.1, squeezing=0.1, shearing=0.15,
                 keep=0.1, fill_value=0.0, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.ranges = {"translation": float(translation), "scaling": float(scaling),
                       "squeezing": float(squeezing), "shearing": float(shearing)}
        if min(self.ranges.values()) < 0 or not 0.0 <= keep <= 1.0:
            raise LenetError(f"distortion ranges {self.ranges} must be >= 0 and "
                             f"keep={keep} in [0, 1].")
        self.keep, self.fill_value, self.seed = float(keep), float(fill_value), seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def transforms(self, batch, height, width):
        """Per-image output-to-input maps in Keras's 8-number affine format.

        The forward map scales by ``s``, squeezes by ``q``, shears by ``h``
        about the centre ``c``, then shifts by ``t``; image warping needs its
        inverse, ``x_in = c + (x_out - c - t_x) / (s q) - h (y_out - c - t_y) / s``
        and ``y_in = c + q (y_out - c - t_y) / s``.
        """
        def draw(name):
            limit = self.ranges[name]
            values = keras.random.uniform((batch,), -limit, limit, seed=self.seed_generator)
            return ops.where(kept, 0.0, values)

        kept = keras.random.uniform((batch,), seed=self.seed_generator) < self.keep
        scale, squeeze = 1.0 + draw("scaling"), 1.0 + draw("squeezing")
        shear, shift_x, shift_y = draw("shearing"), draw("translation"), draw("translation")
        a, b, d = 1.0 / (scale * squeeze), -shear / scale, squeeze / scale
        centre_x, centre_y = (width - 1) / 2.0, (height - 1) / 2.0
        from_x, from_y = centre_x + shift_x, centre_y + shift_y
        zeros = ops.zeros_like(a)
        return ops.stack([a, b, centre_x - a * from_x - b * from_y,
                          zeros, d, centre_y - d * from_y, zeros, zeros], axis=-1)

    def call(self, inputs, training=False):
        if not training:
            return inputs
        transform = self.transforms(ops.shape(inputs)[0], inputs.shape[1], inputs.shape[2])
        return ops.image.affine_transform(inputs, transform, interpolation="bilinear",
                                          fill_mode="constant", fill_value=self.fill_value)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), **self.ranges, "keep": self.keep,
                "fill_value": self.fill_value, "seed": self.seed}


def build_lenet5(
    num_classes: int = 10,
    *,
    output: str = "rbf",
    distortions: bool = False,
    init_scale: str = "fan_in",
    name: str = "lenet5",
) -> keras.Sequential:
    """LeNet-5 as published by LeCun, Bottou, Bengio and Haffner (1998).

    The 28x28 digits (in [0, 1]) are padded with background to 32x32, then
    scaled to the paper's input range, so that background, padding included,
    is -0.1 and ink 1.175. C1 6@5x5, S2 trainable subsampling, C3 16@5x5 with
    the paper's connection table, S4, C5 120@5x5, F6 84, all with
    :func:`scaled_tanh`: 60,000 trainable parameters, every one drawn
    uniformly in +-2.4 / fan-in. The output is the paper's ten RBF units over
    fixed 7x12 codes (:class:`RBFOutput`, trained with :class:`RBFLoss`) or,
    as most modern versions have it, a softmax layer of 850 more weights.

    Parameters
    ----------
    num_classes : int
        Output units; the RBF output needs 10 (one bitmap per digit).
    output : {"rbf", "softmax"}
        The paper's RBF units, or a dense softmax layer (use cross-entropy).
    distortions : bool
        Add :class:`RandomAffineDistortion` after the padding: the paper's
        random affine distortions of every training image (training only).
    init_scale : {"fan_in", "sqrt_fan_in"}
        Every weight uniform in +-2.4 / fan-in (the paper as printed) or in
        +-2.4 / sqrt(fan-in) (:func:`init_limit`).
    name : str
        The model's name.

    Returns
    -------
    keras.Sequential
        An uncompiled model taking ``(28, 28, 1)`` images in [0, 1].

    Raises
    ------
    LenetError
        On an unknown ``output`` or ``init_scale``, or an RBF output with
        ``num_classes != 10``.

    Examples
    --------
    >>> build_lenet5().count_params()
    60000
    """
    if output not in OUTPUTS:
        raise LenetError(f"output={output!r} is not an option; choose 'rbf' (the paper's) "
                         "or 'softmax'.")
    if output == "rbf" and num_classes != 10:
        raise LenetError(f"num_classes={num_classes} needs output='softmax': the RBF codes "
                         "are bitmaps of the ten digits.")
    init_limit(1, init_scale)  # an unknown scale fails before anything is built
    paper_layer = functools.partial(_paper_layer, init_scale=init_scale)
    stack = [keras.Input((28, 28, 1), name="image"),
             layers.ZeroPadding2D(2, name="pad_to_32")]
    stack += [RandomAffineDistortion(name="distortion")] if distortions else []
    stack += [
        layers.Rescaling(INK - BACKGROUND, offset=BACKGROUND, name="input_range"),
        paper_layer(layers.Conv2D, 6, 5, fan_in=25, name="C1"),
        TrainableSubsampling(init_scale=init_scale, name="S2"),
        PartialConv2D(C3_CONNECTIONS, 5, init_scale=init_scale, name="C3"),
        TrainableSubsampling(init_scale=init_scale, name="S4"),
        paper_layer(layers.Conv2D, 120, 5, fan_in=400, name="C5"),
        layers.Flatten(name="flatten"),
        paper_layer(layers.Dense, 84, fan_in=120, name="F6"),
    ]
    if output == "rbf":
        stack.append(RBFOutput(name="output"))
    else:
        stack.append(paper_layer(layers.Dense, num_classes, fan_in=84, activation="softmax",
                                 name="output"))
    return keras.Sequential(stack, name=name)


def _paper_layer(layer_class, *args, fan_in: int, init_scale: str, activation=scaled_tanh,
                 **kwargs):
    return layer_class(*args, activation=activation,
                       kernel_initializer=paper_initializer(fan_in, init_scale),
                       bias_initializer=paper_initializer(fan_in, init_scale), **kwargs)


def paper_schedule(
    steps_per_epoch: int, scale: float = 1.0
) -> keras.optimizers.schedules.PiecewiseConstantDecay:
    """The paper's global step per pass (III.C), as a Keras schedule.

    0.0005 for passes 1-2, 0.0002 for 3-5, 0.0001 for 6-8, 0.00005 for 9-12,
    then 0.00001.

    Parameters
    ----------
    steps_per_epoch : int
        Optimizer steps in one pass over the training set.
    scale : float
        Multiplies every value (1 for the paper's eta).

    Returns
    -------
    keras.optimizers.schedules.PiecewiseConstantDecay

    Examples
    --------
    >>> float(paper_schedule(100)(250))
    0.0002
    """
    if steps_per_epoch < 1 or scale <= 0:
        raise LenetError(f"steps_per_epoch={steps_per_epoch} and scale={scale} must be "
                         "positive.")
    passes = np.cumsum([count for count, _ in PAPER_STEPS[:-1]])
    return keras.optimizers.schedules.PiecewiseConstantDecay(
        [int(steps_per_epoch * end) - 1 for end in passes],
        [scale * step for _, step in PAPER_STEPS])


@keras.saving.register_keras_serializable(package="lenet_utils")
class SDLM(keras.optimizers.Optimizer):
    """Stochastic diagonal Levenberg-Marquardt, the paper's optimizer (Appendix C).

    Each weight ``w_k`` moves by ``-eta / (mu + h_kk)`` times its gradient,
    where ``h_kk`` estimates the diagonal of the Gauss-Newton curvature of the
    per-image loss: weights the loss is sensitive to take small steps, flat
    ones large steps, capped by ``mu``. ``h_kk`` is set from outside, by
    :class:`CurvatureEstimate` before every pass; until then it is 0.

    The paper updates after every image. Keras averages the loss over a
    batch, so with batches of ``samples_per_step`` images we step by the sum
    of their gradients (the mean times ``samples_per_step``): to first order
    the same move as that many single-image steps.

    Parameters
    ----------
    learning_rate : float or keras.optimizers.schedules.LearningRateSchedule
        The global step ``eta`` (:func:`paper_schedule`).
    mu : float
        Keeps the step finite where the curvature is small (the paper: 0.02).
    samples_per_step : int
        Images per batch, to turn the batch mean into a sum.

    Examples
    --------
    >>> optimizer = SDLM(paper_schedule(469), samples_per_step=128)
    """

    def __init__(self, learning_rate=5e-4, mu: float = SDLM_MU, samples_per_step: int = 1,
                 name: str = "sdlm", **kwargs):
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        if mu <= 0 or samples_per_step < 1:
            raise LenetError(f"mu={mu} must be positive and samples_per_step="
                             f"{samples_per_step} a positive number of images.")
        self.mu, self.samples_per_step = float(mu), int(samples_per_step)

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        self.curvatures = [self.add_variable_from_reference(variable, "curvature")
                           for variable in variables]

    def set_curvature(self, variables, curvatures) -> None:
        """Store ``h_kk`` for each of ``variables`` (a model's trainable variables)."""
        if not self.built:
            self.build(variables)
        for variable, curvature in zip(variables, curvatures, strict=True):
            self.curvatures[self._get_variable_index(variable)].assign(curvature)

    def update_step(self, gradient, variable, learning_rate):
        curvature = self.curvatures[self._get_variable_index(variable)]
        step = ops.cast(learning_rate, variable.dtype) * float(self.samples_per_step)
        self.assign_sub(variable, step * gradient / (self.mu + curvature))

    def get_config(self):
        return {**super().get_config(), "mu": self.mu,
                "samples_per_step": self.samples_per_step}


def diagonal_curvature(model: keras.Model, images) -> list[np.ndarray]:
    """The paper's estimate of ``h_kk`` for every trainable weight (Appendix C).

    Second derivatives are propagated backward with the Gauss-Newton
    approximation, layer by layer: for a unit with weighted sum ``a_i`` and
    output ``f(a_i)``, ``d2E/da_i2 = f'(a_i)^2 * sum_k w_ki^2 d2E/da_k2``,
    and a weight shared by the connections ``(i, j)`` gets
    ``h = sum d2E/da_i2 * x_j^2``, averaged over ``images``. The recursion
    starts at F6 with 2 per output, the curvature of the correct RBF unit's
    squared distance, or, for a softmax output, at its weighted sums with
    ``p (1 - p)``, the diagonal of the cross-entropy's Hessian.

    Parameters
    ----------
    model : keras.Model
        A LeNet-5 of :func:`build_lenet5` (Sequential; weightless layers
        between weighted ones must be reshapes).
    images : array
        The images to average over (the paper: 500).

    Returns
    -------
    list of ndarray
        One array per ``model.trainable_variables``, same shapes, >= 0.

    Examples
    --------
    >>> curvatures = diagonal_curvature(build_lenet5(), images[:500])  # doctest: +SKIP
    """
    trace = _forward_trace(model, ops.convert_to_tensor(images))
    by_path, h = {}, None
    for layer, inputs, sums in reversed(trace):
        if isinstance(layer, RBFOutput):
            h = ops.full(ops.shape(inputs), 2.0)
        elif sums is None:
            h = ops.reshape(h, ops.shape(inputs))
        else:
            h_sums = _softmax_curvature(sums) if h is None else _slope(layer, sums) ** 2 * h
            by_path.update(_weight_curvature(layer, inputs, h_sums))
            h = _input_curvature(layer, inputs, h_sums)
    count = float(ops.shape(trace[0][1])[0])
    return [np.asarray(by_path[variable.path]) / count
            for variable in model.trainable_variables]


def _forward_trace(model, inputs):
    """Each layer from the first weighted one on, its input and weighted sums."""
    trace, outputs = [], inputs
    for layer in model.layers:
        if layer.trainable_weights:
            sums = _pre_activation(layer, outputs, layer.trainable_weights)
            trace.append((layer, outputs, sums))
            outputs = layer.activation(sums)
            continue
        if trace and not isinstance(layer, (RBFOutput, layers.Flatten, layers.Reshape)):
            raise LenetError(f"diagonal_curvature cannot pass layer {layer.name!r} "
                             f"({type(layer).__name__}); use a model of build_lenet5.")
        if trace:
            trace.append((layer, outputs, None))
        outputs = layer(outputs, training=False)
    return trace


def _pre_activation(layer, inputs, weights):
    if isinstance(layer, (TrainableSubsampling, PartialConv2D)):
        return layer.pre_activation(inputs, weights)
    kernel, bias = weights
    if isinstance(layer, layers.Conv2D):
        return ops.conv(inputs, kernel, strides=layer.strides, padding=layer.padding) + bias
    if isinstance(layer, layers.Dense):
        return ops.matmul(inputs, kernel) + bias
    raise LenetError(f"diagonal_curvature does not know layer {layer.name!r} "
                     f"({type(layer).__name__}); use a model of build_lenet5.")


def _slope(layer, sums):
    with tf.GradientTape() as tape:
        tape.watch(sums)
        outputs = layer.activation(sums)
    return tape.gradient(outputs, sums)


def _softmax_curvature(sums):
    probabilities = ops.softmax(sums, axis=-1)
    return probabilities * (1.0 - probabilities)


def _weight_curvature(layer, inputs, h_sums):
    # The sums are linear in the weights: the gradient of sum(h * sums(x^2))
    # is sum over connections of h * x^2.
    weights = layer.trainable_weights
    with tf.GradientTape() as tape:
        total = ops.sum(h_sums * _pre_activation(layer, ops.square(inputs), weights))
    gradients = tape.gradient(total, weights)
    return {weight.path: gradient for weight, gradient in zip(weights, gradients, strict=True)}


def _input_curvature(layer, inputs, h_sums):
    # The same linear map's transpose, with squared weights: sum_k w_ki^2 h_k.
    squared = [ops.square(weight) for weight in layer.trainable_weights]
    with tf.GradientTape() as tape:
        tape.watch(inputs)
        total = ops.sum(h_sums * _pre_activation(layer, inputs, squared))
    return tape.gradient(total, inputs)


class CurvatureEstimate(keras.callbacks.Callback):
    """Before every pass, re-estimate SDLM's ``h_kk`` on a few training images.

    Parameters
    ----------
    images : array
        The training images to draw from.
    samples : int
        Images per estimate (the paper: 500).
    seed : int
        Seeds which images are drawn each pass.
    every_pass : bool
        Re-estimate before every pass, as the paper does, or only before the
        first and keep that estimate for the whole run.

    Examples
    --------
    >>> model.fit(..., callbacks=[CurvatureEstimate(x_train)])  # doctest: +SKIP
    """

    def __init__(self, images, samples: int = CURVATURE_SAMPLES, seed: int = 0,
                 every_pass: bool = True):
        super().__init__()
        self.images, self.samples, self.seed = images, int(samples), int(seed)
        self.every_pass = bool(every_pass)

    def on_epoch_begin(self, epoch, logs=None):
        optimizer = self.model.optimizer
        if not isinstance(optimizer, SDLM):
            raise LenetError("CurvatureEstimate needs a model compiled with the SDLM "
                             f"optimizer, not {type(optimizer).__name__}.")
        if epoch > 0 and not self.every_pass:
            return
        rng = np.random.default_rng([self.seed, epoch])
        chosen = rng.choice(len(self.images), min(self.samples, len(self.images)),
                            replace=False)
        curvatures = diagonal_curvature(self.model, self.images[np.sort(chosen)])
        optimizer.set_curvature(self.model.trainable_variables, curvatures)


def paper_steps(
    learning_rate: float, steps_per_epoch: int, epochs: int
) -> keras.optimizers.schedules.PiecewiseConstantDecay:
    """:func:`paper_schedule` starting at ``learning_rate``, for ``TrainingConfig``.

    The paper's shape (2, 3, 3, 4 passes, then the rest) scaled so that its
    first value is ``learning_rate``; 0.0005 gives the paper's values.

    Examples
    --------
    >>> float(paper_steps(5e-4, steps_per_epoch=10, epochs=20)(0))
    0.0005
    """
    return paper_schedule(steps_per_epoch, scale=learning_rate / PAPER_STEPS[0][1])
