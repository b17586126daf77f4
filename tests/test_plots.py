import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from lenet_utils import plots


@pytest.fixture
def history():
    epochs = pd.RangeIndex(1, 4, name="epoch")
    return pd.DataFrame({"loss": [1.0, 0.5, 0.3], "accuracy": [0.7, 0.85, 0.9],
                         "val_loss": [1.1, 0.6, 0.5], "val_accuracy": [0.65, 0.8, 0.84]},
                        index=epochs)


def all_figures(history):
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, 200)
    return [
        plots.plot_learning_curves(history),
        plots.plot_histories({"a": history, "b": history * 0.9}),
        plots.plot_errors_per_pass({"a": history, "b": history * 0.9}),
        plots.plot_digit_grid(rng.random((12, 28, 28)), labels[:12], labels[:12],
                              rng.random(12), columns=6),
        plots.plot_confusion_matrix(labels, rng.integers(0, 10, 200)),
    ]


def test_figures_are_titled_and_labelled(history):
    for figure in all_figures(history):
        assert isinstance(figure, Figure)
        assert figure.get_suptitle() or figure.axes[0].get_title()
        plotted = [ax for ax in figure.axes if ax.get_xlabel()]
        assert plotted or all(not ax.axison for ax in figure.axes)
        for axes in plotted:
            assert axes.get_ylabel()


def test_curves_have_legends(history):
    figure = plots.plot_learning_curves(history)
    assert [ax.get_legend() is not None for ax in figure.axes] == [True, True]
    np.testing.assert_array_equal(figure.axes[0].lines[1].get_ydata(), history["val_loss"])


def test_no_global_state_changes(history):
    plt.close("all")
    before = dict(matplotlib.rcParams)
    all_figures(history)
    assert plt.get_fignums() == []
    assert dict(matplotlib.rcParams) == before


def test_confusion_matrix_counts():
    figure = plots.plot_confusion_matrix([0, 0, 1, 1], [0, 1, 1, 1])
    texts = [text.get_text() for text in figure.axes[0].texts]
    assert texts == ["1", "0"]  # off-diagonal only: one 0 read as 1, no 1 read as 0


def test_layer_diagram_shows_every_weighted_and_pooling_layer():
    from lenet_utils.models import build_lenet

    figure = plots.plot_layer_diagram(build_lenet(), title="LeNet")
    assert box_names(figure) == ["conv1", "pool1", "conv2", "pool2", "dense1", "output"]
    assert figure.axes[0].get_title() == "LeNet"


def test_layer_diagram_shows_lenet5s_weightless_rbf_output():
    from lenet_utils.lenet5 import build_lenet5

    figure = plots.plot_layer_diagram(build_lenet5(), title="LeNet-5")
    assert box_names(figure) == ["C1", "S2", "C3", "S4", "C5", "F6", "output"]


def box_names(figure) -> list[str]:
    """The first line of each box's label in a layer diagram: the layer names."""
    return [text.get_text().split("\n")[0] for text in figure.axes[0].texts
            if text.get_text()]


def test_errors_per_pass_are_percent_errors_on_a_log_scale(history):
    styles = {"b": {"color": "black", "ls": "--"}}
    figure = plots.plot_errors_per_pass({"a": history, "b": history * 0.9}, styles=styles)
    axes = figure.axes[0]
    assert axes.get_yscale() == "log"
    a_line, b_line = axes.lines
    np.testing.assert_allclose(a_line.get_ydata(), [30, 15, 10])
    np.testing.assert_allclose(b_line.get_ydata(), 100 * (1 - 0.9 * history["accuracy"]))
    assert (b_line.get_color(), b_line.get_linestyle()) == ("black", "--")
    assert [text.get_text() for text in axes.get_legend().get_texts()] == ["a", "b"]


def test_errors_per_pass_label_minor_ticks_at_two_three_and_five_only(history):
    figure = plots.plot_errors_per_pass({"a": history})
    label = figure.axes[0].yaxis.get_minor_formatter()
    assert [label(value) for value in (0.2, 0.3, 0.4, 5, 8, 30, 90)] == [
        "0.2", "0.3", "", "5", "", "30", ""]
