"""Measures of learned convolution filters: energy, mean response, orientation.

A first-layer filter of LeNet is a small image of weights. These functions
put numbers on what a picture of it suggests: how strong it is, how much it
moved from its random start, how much of it is a plain blob (its mean), and
how strongly it prefers one orientation, an edge or a bar.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from lenet_utils.errors import LenetError

SPECTRUM_SIZE = 32


def _checked_kernels(kernels: np.ndarray, argument: str = "kernels") -> np.ndarray:
    kernels = np.asarray(kernels, dtype=float)
    if kernels.ndim == 4 and kernels.shape[2] == 1:
        kernels = kernels[:, :, 0, :]
    if kernels.ndim != 3 or min(kernels.shape) < 1:
        raise LenetError(f"{argument} has shape {kernels.shape}; expected (height, width, "
                         "filters), e.g. conv1.kernel[:, :, 0, :] of shape (5, 5, 20).")
    return kernels


def mean_share(kernels: np.ndarray) -> np.ndarray:
    """The share of each filter's energy that lies in its mean weight.

    ``(mean of w)^2 / (mean of w^2)``: 1 for a filter of equal weights, a
    blob that responds to ink anywhere under it; 0 for a filter whose
    weights sum to zero, such as a pure edge detector.

    Parameters
    ----------
    kernels : ndarray of shape (height, width, filters) or (height, width, 1, filters)

    Returns
    -------
    ndarray of shape (filters,)

    Examples
    --------
    >>> mean_share(np.ones((5, 5, 1))).tolist()
    [1.0]
    """
    kernels = _checked_kernels(kernels)
    squares = (kernels**2).mean(axis=(0, 1))
    return kernels.mean(axis=(0, 1)) ** 2 / np.maximum(squares, np.finfo(float).tiny)


def orientation_selectivity(kernels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """How strongly each filter prefers one orientation, and which one.

    The filter's power spectrum (zero-padded to 32x32, its mean left out)
    is averaged over orientation on the doubled angle, so that opposite
    frequencies agree: ``|sum P(f) exp(2i theta_f)| / sum P(f)``. A filter
    with the same energy in every direction scores 0, one whose spectrum is
    a single line through the origin 1. A window of 5x5 weights spreads any
    spectrum, so real filters score less: 5x5 vertical bars 0.88, a single
    straight edge 0.56. Random filters score in between; compare with them,
    not with 0.

    Parameters
    ----------
    kernels : ndarray of shape (height, width, filters) or (height, width, 1, filters)

    Returns
    -------
    selectivity : ndarray of shape (filters,)
        In [0, 1].
    orientation : ndarray of shape (filters,)
        The preferred direction of the edges or bars, in degrees in [0, 180),
        anticlockwise from horizontal (perpendicular to the dominant
        frequency).

    Examples
    --------
    >>> bars = np.tile(np.array([1.0, -1.0, 1.0, -1.0, 1.0]), (5, 1))[:, :, None]
    >>> selectivity, orientation = orientation_selectivity(bars)
    >>> round(float(selectivity[0]), 2), round(float(orientation[0]))
    (0.88, 90)
    """
    kernels = _checked_kernels(kernels)
    centred = kernels - kernels.mean(axis=(0, 1))
    power = np.abs(np.fft.fft2(centred, s=(SPECTRUM_SIZE, SPECTRUM_SIZE), axes=(0, 1))) ** 2
    frequencies = np.fft.fftfreq(SPECTRUM_SIZE)
    # Rows of an image run downwards; flip so that angles are anticlockwise.
    theta = np.arctan2(-frequencies[:, None], frequencies[None, :])
    phase = np.exp(2j * theta)[:, :, None]
    total = power.sum(axis=(0, 1))
    resultant = (power * phase).sum(axis=(0, 1))
    selectivity = np.abs(resultant) / np.maximum(total, np.finfo(float).tiny)
    frequency_angle = np.degrees(np.angle(resultant) / 2)
    return selectivity, (frequency_angle + 90) % 180


def filter_table(kernels: np.ndarray, initial: np.ndarray | None = None) -> pd.DataFrame:
    """One row per filter: its size, its change from the start, mean share, orientation.

    Parameters
    ----------
    kernels : ndarray of shape (height, width, filters) or (height, width, 1, filters)
        The trained filters.
    initial : ndarray of the same shape, optional
        The same filters before training, for the ``moved`` column.

    Returns
    -------
    pandas.DataFrame
        ``norm`` (the L2 norm of the weights), ``moved`` (norm of the change
        from ``initial`` over the norm of ``initial``), ``mean share``,
        ``selectivity`` and ``orientation`` (see :func:`mean_share` and
        :func:`orientation_selectivity`), indexed by filter.

    Raises
    ------
    LenetError
        If the shapes are wrong or differ.

    Examples
    --------
    >>> filter_table(model.get_layer("conv1").kernel.numpy())  # doctest: +SKIP
    """
    kernels = _checked_kernels(kernels)
    selectivity, orientation = orientation_selectivity(kernels)
    table = pd.DataFrame({"norm": np.sqrt((kernels**2).sum(axis=(0, 1)))})
    if initial is not None:
        initial = _checked_kernels(initial, "initial")
        if initial.shape != kernels.shape:
            raise LenetError(f"initial has shape {initial.shape}, kernels {kernels.shape}; "
                             "pass the same layer's weights before training.")
        start = np.sqrt((initial**2).sum(axis=(0, 1)))
        table["moved"] = np.sqrt(((kernels - initial) ** 2).sum(axis=(0, 1))) / start
    table["mean share"] = mean_share(kernels)
    table["selectivity"] = selectivity
    table["orientation"] = orientation
    return table.rename_axis("filter")
