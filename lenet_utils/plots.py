"""Figures for the book.

Every function builds a new :class:`matplotlib.figure.Figure` without pyplot,
so it changes no global state and shows once when a notebook cell returns it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib import ticker
from matplotlib.figure import Figure
from matplotlib.patches import Rectangle
from sklearn.metrics import confusion_matrix

from lenet_utils.errors import LenetError

METRIC_LABELS = {"loss": "cross-entropy loss", "accuracy": "accuracy"}


def plot_learning_curves(history: pd.DataFrame, title: str = "Learning curves") -> Figure:
    """Training and validation loss and accuracy against the epoch.

    Parameters
    ----------
    history : pandas.DataFrame
        As returned by :func:`lenet_utils.training.fit`.
    title : str

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> plot_learning_curves(history)  # doctest: +SKIP
    """
    figure = Figure(figsize=(10, 3.8), layout="constrained")
    for axes, metric in zip(figure.subplots(1, 2), METRIC_LABELS, strict=True):
        axes.plot(history.index, history[metric], marker=".", label="training")
        axes.plot(history.index, history[f"val_{metric}"], marker=".", label="validation")
        axes.set(xlabel="epoch", ylabel=METRIC_LABELS[metric], title=METRIC_LABELS[metric])
        axes.legend()
        axes.grid(alpha=0.3)
    figure.suptitle(title)
    return figure


def plot_histories(
    histories: Mapping[str, pd.DataFrame],
    metrics: Sequence[str] = ("val_loss", "val_accuracy"),
    title: str = "Runs compared",
) -> Figure:
    """Several runs' curves on one figure, one panel per metric.

    Parameters
    ----------
    histories : mapping of str to pandas.DataFrame
        Run name to history.
    metrics : sequence of str
        History columns to plot.
    title : str

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> plot_histories({"baseline": h1, "dropout": h2})  # doctest: +SKIP
    """
    figure = Figure(figsize=(5 * len(metrics), 3.8), layout="constrained")
    panels = np.atleast_1d(figure.subplots(1, len(metrics)))
    for axes, metric in zip(panels, metrics, strict=True):
        for name, history in histories.items():
            axes.plot(history.index, history[metric], marker=".", label=name)
        kind = "validation " if metric.startswith("val_") else "training "
        label = kind + METRIC_LABELS.get(metric.removeprefix("val_"), metric)
        axes.set(xlabel="epoch", ylabel=label, title=label)
        axes.legend()
        axes.grid(alpha=0.3)
    figure.suptitle(title)
    return figure


def plot_errors_per_pass(
    histories: Mapping[str, pd.DataFrame],
    title: str = "Training error per pass",
    styles: Mapping[str, Mapping] | None = None,
) -> Figure:
    """Each run's training error over every pass, in %, on a logarithmic axis.

    The error is ``1 - accuracy`` of a :func:`lenet_utils.training.fit`
    history: the running accuracy Keras records over each pass while the
    weights still change.

    Parameters
    ----------
    histories : mapping of str to pandas.DataFrame
        Run name to history, one row per pass (epoch).
    title : str
    styles : mapping of str to mapping, optional
        Run name to keyword arguments of ``Axes.plot`` (colour, line style).

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> plot_errors_per_pass({"h kept": kept, "mu = 2": history})  # doctest: +SKIP
    """
    styles = styles or {}
    figure = Figure(figsize=(8, 3.6), layout="constrained")
    axes = figure.subplots()
    for name, history in histories.items():
        error = 100 * (1 - history["accuracy"])
        axes.plot(history.index, error, marker=".", label=name, **styles.get(name, {}))
    passes = max(len(history) for history in histories.values())
    axes.set(xlabel="pass", ylabel="training error (%), mean over the pass",
             xticks=range(0, passes + 1, 2), title=title, yscale="log")
    axes.yaxis.set_major_formatter("{x:g}")
    axes.yaxis.set_minor_formatter(ticker.FuncFormatter(_two_three_five))
    axes.legend(fontsize="small")
    axes.grid(alpha=0.3, which="both")
    return figure


def _two_three_five(value: float, position: int | None = None) -> str:
    """Label a minor tick of a log axis only at 2, 3 and 5 times a power of 10."""
    leading = value / 10 ** np.floor(np.log10(value)) if value > 0 else 0
    return f"{value:g}" if any(np.isclose(leading, (2, 3, 5))) else ""


def plot_accuracy_against_time(
    histories: Mapping[str, pd.DataFrame], target: float, title: str = "Time to accuracy",
) -> Figure:
    """Validation accuracy against wall-clock seconds, one line per run.

    Parameters
    ----------
    histories : mapping of str to pandas.DataFrame
        Run name to a history with ``seconds`` and ``val_accuracy`` columns
        (:attr:`lenet_utils.benchmark.TimedRun.history`).
    target : float
        Drawn as a horizontal line.
    title : str

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> plot_accuracy_against_time({"fast": run.history}, 0.99)  # doctest: +SKIP
    """
    figure = Figure(figsize=(9, 4.2), layout="constrained")
    axes = figure.subplots()
    for name, history in histories.items():
        axes.plot(history["seconds"], history["val_accuracy"], marker="o", label=name)
    axes.axhline(target, color="black", linestyle="--", linewidth=1, label=f"{target:.1%}")
    axes.set(xscale="log", xlabel="wall-clock seconds since the start (log scale)",
             ylabel="validation accuracy", title=title)
    # Plain seconds at 1, 2 and 5 of every decade, not 2x10^1 on minor ticks.
    axes.xaxis.set_major_locator(ticker.LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axes.xaxis.set_major_formatter(ticker.FuncFormatter(lambda seconds, _: f"{seconds:g}"))
    axes.xaxis.set_minor_formatter(ticker.NullFormatter())
    lowest = min(history["val_accuracy"].min() for history in histories.values())
    axes.set_ylim(lowest - 0.005, 1.0)
    axes.legend(fontsize="small", loc="lower right")
    axes.grid(alpha=0.3, which="both")
    return figure


def plot_digit_grid(
    images: np.ndarray,
    labels: Sequence[int],
    predictions: Sequence[int] | None = None,
    confidences: Sequence[float] | None = None,
    columns: int = 10,
    title: str = "Digits",
) -> Figure:
    """A grid of digits, each titled with its label (and the model's guess).

    Parameters
    ----------
    images : ndarray of shape (n, 28, 28) or (n, 28, 28, 1)
    labels : sequence of int
        True labels.
    predictions, confidences : sequence, optional
        The predicted class and its probability, shown under the label.
    columns : int
    title : str

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> plot_digit_grid(x_test[:20], y_test[:20])  # doctest: +SKIP
    """
    rows = -(-len(images) // columns)
    # Wide grids are shrunk to the page: captions at 12 pt stay readable at 10 columns.
    figure = Figure(figsize=(1.2 * columns, 1.6 * rows + 0.6), layout="constrained")
    for index, axes in enumerate(np.ravel(figure.subplots(rows, columns, squeeze=False))):
        axes.axis("off")
        if index >= len(images):
            continue
        axes.imshow(np.squeeze(images[index]), cmap="gray_r", vmin=0)
        caption = f"label {labels[index]}"
        if predictions is not None:
            caption += f"\npred {predictions[index]}"
        if confidences is not None:
            caption += f" ({confidences[index]:.0%})"
        axes.set_title(caption, fontsize=12)
    figure.suptitle(title, fontsize=16)
    return figure


def plot_confusion_matrix(
    true_labels: Sequence[int], predicted_labels: Sequence[int],
    title: str = "Confusion matrix",
) -> Figure:
    """A seaborn heatmap of counts: true class down, predicted class across.

    The diagonal, nearly all of MNIST, is left blank so the errors stand out.

    Examples
    --------
    >>> plot_confusion_matrix(y_test, predicted)  # doctest: +SKIP
    """
    counts = confusion_matrix(true_labels, predicted_labels)
    off_diagonal = ~np.eye(len(counts), dtype=bool)
    figure = Figure(figsize=(6.5, 5.5), layout="constrained")
    axes = figure.subplots()
    sns.heatmap(counts, mask=~off_diagonal, annot=True, fmt="d", cmap="Reds",
                cbar_kws={"label": "test digits"}, ax=axes)
    axes.set(xlabel="predicted digit", ylabel="true digit",
             title=f"{title} (diagonal left blank)")
    return figure


def plot_layer_diagram(model, title: str = "Architecture") -> Figure:
    """A left-to-right block diagram: one box per layer with its output shape.

    Box heights grow with the layer's spatial size, so the 28 -> 14 -> 7
    shrinking is visible; layers without weights or pooling are skipped,
    except the output layer (LeNet-5's RBF units hold fixed codes, no weights).

    Examples
    --------
    >>> plot_layer_diagram(build_lenet())  # doctest: +SKIP
    """
    shown = [layer for layer in model.layers
             if layer.weights or "Pool" in type(layer).__name__
             or "Subsampling" in type(layer).__name__ or layer is model.layers[-1]]
    figure = Figure(figsize=(1.35 * len(shown) + 1, 3.2), layout="constrained")
    axes = figure.subplots()
    largest = max(_spatial_size(layer) for layer in shown)
    for position, layer in enumerate(shown):
        height = 0.25 + 0.75 * _spatial_size(layer) / largest
        colour = "tab:blue" if layer.weights else "tab:gray"
        axes.add_patch(Rectangle((position - 0.35, -height / 2), 0.7, height,
                                 color=colour, alpha=0.35))
        shape = "x".join(str(size) for size in layer.output.shape[1:])
        axes.text(position, 0, f"{layer.name}\n{shape}", ha="center", va="center",
                  fontsize=11)
        if position:
            axes.annotate("", (position - 0.37, 0), (position - 0.63, 0),
                          arrowprops={"arrowstyle": "->"})
    axes.set(xlim=(-0.6, len(shown) - 0.4), ylim=(-0.65, 0.65), title=title)
    axes.axis("off")
    return figure


def _spatial_size(layer) -> int:
    shape = layer.output.shape[1:]
    return shape[0] if len(shape) == 3 else 1


def plot_image_variants(
    originals: np.ndarray, variants: np.ndarray, title: str = "Variants of each digit",
) -> Figure:
    """Each original digit, then several variants of it, one row per digit.

    Parameters
    ----------
    originals : ndarray of shape (n, 28, 28) or (n, 28, 28, 1)
    variants : ndarray of shape (n, k, 28, 28) or (n, k, 28, 28, 1)
        ``k`` variants of every original (random augmentations, say).
    title : str

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    LenetError
        If ``variants`` does not hold one row of variants per original.

    Examples
    --------
    >>> draws = np.stack([augment(x[:4]) for _ in range(6)], axis=1)  # doctest: +SKIP
    >>> plot_image_variants(x[:4], draws)  # doctest: +SKIP
    """
    if len(variants) != len(originals) or np.ndim(variants) < 4:
        raise LenetError(f"variants has shape {np.shape(variants)}; expected "
                         f"({len(originals)}, k, 28, 28): k variants of each original.")
    rows, count = len(originals), variants.shape[1]
    figure = Figure(figsize=(1.1 * (count + 1), 1.15 * rows + 0.5), layout="constrained")
    grid = figure.subplots(rows, count + 1, squeeze=False)
    for row in range(rows):
        images = [originals[row], *variants[row]]
        for column, (axes, image) in enumerate(zip(grid[row], images, strict=True)):
            axes.imshow(np.squeeze(image), cmap="gray_r", vmin=0, vmax=1)
            axes.set_xticks([])
            axes.set_yticks([])
            if row == 0:
                axes.set_title("original" if column == 0 else f"draw {column}", fontsize=8)
    figure.suptitle(title)
    return figure


def plot_paired_gains(
    differences: pd.DataFrame, comparison: pd.DataFrame,
    title: str = "Gain over the baseline", xlabel: str = "gain in accuracy",
) -> Figure:
    """Each treatment's per-seed gains as dots, with its mean and interval.

    Parameters
    ----------
    differences : pandas.DataFrame
        One row per seed, one column per treatment
        (:func:`lenet_utils.stats.paired_differences`).
    comparison : pandas.DataFrame
        ``mean gain``, ``low`` and ``high`` per treatment
        (:func:`lenet_utils.stats.compare_with_baseline`); its order is the
        order of the rows, top to bottom.
    title, xlabel : str

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> plot_paired_gains(differences, compare_with_baseline(differences))  # doctest: +SKIP
    """
    names = list(comparison.index)
    figure = Figure(figsize=(8, 0.6 * len(names) + 1.4), layout="constrained")
    axes = figure.subplots()
    for row, name in enumerate(names):
        axes.scatter(differences[name], np.full(len(differences), row), color="tab:blue",
                     alpha=0.6, s=18, label="one seed" if row == 0 else None)
        low, high = comparison.loc[name, ["low", "high"]]
        axes.plot([low, high], [row, row], color="black", linewidth=2,
                  label="interval" if row == 0 else None)
        axes.scatter(comparison.loc[name, "mean gain"], row, color="black", marker="D",
                     s=30, zorder=3, label="mean" if row == 0 else None)
    axes.axvline(0, color="tab:red", linestyle="--", linewidth=1)
    axes.set_yticks(range(len(names)), names)
    axes.invert_yaxis()
    axes.set(xlabel=xlabel, ylabel="", title=title)
    axes.legend(fontsize="small", loc="best")
    axes.grid(alpha=0.3, axis="x")
    return figure


def plot_filters(
    kernels: Mapping[str, np.ndarray], columns: int = 10, title: str = "First-layer filters",
) -> Figure:
    """Convolution filters as small images, red positive and blue negative.

    Each model's filters share one colour scale, symmetric about zero, so a
    faint filter looks faint beside a strong one.

    Parameters
    ----------
    kernels : mapping of str to ndarray of shape (height, width, filters)
        A label (a model's name) to its filters, e.g.
        ``conv1.kernel[:, :, 0, :]``; each gets its own rows.
    columns : int
    title : str

    Returns
    -------
    matplotlib.figure.Figure

    Examples
    --------
    >>> plot_filters({"starting": kernels})  # doctest: +SKIP
    """
    rows_each = {name: -(-np.shape(k)[-1] // columns) for name, k in kernels.items()}
    total_rows = sum(rows_each.values())
    figure = Figure(figsize=(1.1 * columns, 1.25 * total_rows + 0.6), layout="constrained")
    grid = figure.subplots(total_rows, columns, squeeze=False)
    row = 0
    for name, weights in kernels.items():
        weights = np.asarray(weights)
        limit = np.abs(weights).max()
        for index in range(rows_each[name] * columns):
            axes = grid[row + index // columns, index % columns]
            axes.set_xticks([])
            axes.set_yticks([])
            if index >= weights.shape[-1]:
                axes.axis("off")
                continue
            axes.imshow(weights[:, :, index], cmap="RdBu_r", vmin=-limit, vmax=limit)
            axes.set_title(f"{index}", fontsize=11)
        grid[row, 0].set_ylabel(name, fontsize=12)
        row += rows_each[name]
    figure.suptitle(title)
    return figure


def plot_tolerance_curves(
    accuracy: pd.DataFrame, panel: str, line: str, x: str,
    xlabels: Mapping[str, str] | None = None, title: str = "Tolerance",
) -> Figure:
    """Accuracy against the size of a perturbation, one panel per kind.

    Parameters
    ----------
    accuracy : pandas.DataFrame
        Long format: one row per measurement, with an ``accuracy`` column and
        the columns named by ``panel``, ``line`` and ``x``.
    panel, line, x : str
        Columns that pick the panel (the direction of a shift, say), the line
        within it (the model) and the horizontal position (pixels).
    xlabels : mapping of str to str, optional
        The horizontal axis label of each panel; ``x`` by default.
    title : str

    Returns
    -------
    matplotlib.figure.Figure

    Raises
    ------
    LenetError
        If a column is missing.

    Examples
    --------
    >>> plot_tolerance_curves(table, "direction", "model", "pixels")  # doctest: +SKIP
    """
    missing = [name for name in ("accuracy", panel, line, x) if name not in accuracy]
    if missing:
        raise LenetError(f"accuracy has no column {', '.join(missing)}; pass a long table "
                         "with one row per measurement.")
    panels = list(pd.unique(accuracy[panel]))
    # Shrunk to the page, so the text is set larger than matplotlib's default.
    figure = Figure(figsize=(4 * len(panels), 3.6), layout="constrained")
    for axes, name in zip(np.atleast_1d(figure.subplots(1, len(panels), sharey=True)), panels,
                          strict=True):
        for label, rows in accuracy[accuracy[panel] == name].groupby(line, sort=False):
            rows = rows.sort_values(x)
            axes.plot(rows[x], rows["accuracy"], marker="o", markersize=3, label=label)
        axes.set_title(str(name), fontsize=14)
        axes.set_xlabel((xlabels or {}).get(name, x), fontsize=13)
        axes.set_ylim(0, 1.02)
        axes.tick_params(labelsize=12)
        axes.grid(alpha=0.3)
    figure.axes[0].set_ylabel("accuracy", fontsize=13)
    figure.axes[0].legend(fontsize=12)
    figure.suptitle(title, fontsize=15)
    return figure
