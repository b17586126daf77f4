"""Figures of chapters 7 and 8: image variants and paired gains."""

import numpy as np
import pandas as pd
import pytest

from lenet_utils import LenetError, plots
from lenet_utils.stats import compare_with_baseline


def test_image_variants_draw_each_original_and_its_variants():
    rng = np.random.default_rng(0)
    originals, variants = rng.random((3, 28, 28, 1)), rng.random((3, 5, 28, 28, 1))
    figure = plots.plot_image_variants(originals, variants, title="draws")
    assert len(figure.axes) == 3 * 6
    assert figure.get_suptitle() == "draws"
    np.testing.assert_array_equal(figure.axes[0].images[0].get_array(), originals[0, ..., 0])
    np.testing.assert_array_equal(figure.axes[6 + 2].images[0].get_array(),
                                  variants[1, 1, ..., 0])


def test_image_variants_need_one_row_per_original():
    with pytest.raises(LenetError, match="variants"):
        plots.plot_image_variants(np.zeros((3, 28, 28)), np.zeros((2, 4, 28, 28)))


def test_paired_gains_plot_every_seed_and_interval():
    differences = pd.DataFrame({"a": [0.01, 0.02, 0.03], "b": [0.0, -0.01, 0.01]})
    comparison = compare_with_baseline(differences)
    figure = plots.plot_paired_gains(differences, comparison)
    axes = figure.axes[0]
    assert [label.get_text() for label in axes.get_yticklabels()] == ["a", "b"]
    dots = axes.collections[0].get_offsets()
    np.testing.assert_allclose(dots[:, 0], differences["a"])
    interval = axes.lines[0].get_xdata()
    np.testing.assert_allclose(interval, comparison.loc["a", ["low", "high"]].to_numpy(float))
    assert axes.get_xlabel() and axes.get_legend() is not None


def test_filters_share_a_symmetric_scale_per_model():
    rng = np.random.default_rng(0)
    kernels = {"a": rng.normal(size=(5, 5, 20)), "b": rng.normal(size=(5, 5, 12))}
    figure = plots.plot_filters(kernels, columns=10)
    assert len(figure.axes) == 4 * 10
    image = figure.axes[0].images[0]
    limit = np.abs(kernels["a"]).max()
    assert image.get_clim() == (-limit, limit)
    np.testing.assert_array_equal(image.get_array(), kernels["a"][:, :, 0])
    assert figure.axes[20].get_ylabel() == "b"
    assert not figure.axes[-1].axison  # filter 12..19 of "b" do not exist


def test_tolerance_curves_one_panel_per_kind_one_line_per_model():
    table = pd.DataFrame([
        {"direction": d, "model": m, "pixels": p, "accuracy": 1 - abs(p) / 10}
        for d in ("horizontal", "vertical") for m in ("a", "b") for p in (-2, 0, 2)])
    figure = plots.plot_tolerance_curves(table, "direction", "model", "pixels",
                                         xlabels={"horizontal": "pixels right"})
    assert [axes.get_title() for axes in figure.axes] == ["horizontal", "vertical"]
    assert figure.axes[0].get_xlabel() == "pixels right"
    assert figure.axes[1].get_xlabel() == "pixels"
    assert len(figure.axes[0].lines) == 2
    np.testing.assert_allclose(figure.axes[0].lines[0].get_ydata(), [0.8, 1.0, 0.8])
    assert figure.axes[0].get_ylabel() == "accuracy"
    with pytest.raises(LenetError, match="pixels"):
        plots.plot_tolerance_curves(table.drop(columns="pixels"), "direction", "model",
                                    "pixels")
