import numpy as np
import pytest

from lenet_utils import LenetError, filters


def edge(direction: str) -> np.ndarray:
    kernel = np.zeros((5, 5))
    kernel[:2], kernel[3:] = 1.0, -1.0  # ink above, background below: a horizontal edge
    return {"horizontal": kernel, "vertical": kernel.T,
            "falling": np.eye(5) * 2 - 0.4, "rising": np.fliplr(np.eye(5)) * 2 - 0.4}[direction]


@pytest.mark.parametrize("direction, degrees", [("horizontal", 0), ("vertical", 90),
                                                ("rising", 45), ("falling", 135)])
def test_orientation_of_edges_and_bars(direction, degrees):
    _, orientation = filters.orientation_selectivity(edge(direction)[:, :, None])
    assert orientation[0] == pytest.approx(degrees, abs=0.5)


def test_oriented_filters_are_more_selective_than_random_ones():
    rng = np.random.default_rng(0)
    random_selectivity, _ = filters.orientation_selectivity(rng.uniform(-1, 1, (5, 5, 500)))
    edges = np.stack([edge(d) for d in ("horizontal", "vertical", "rising")], axis=-1)
    edge_selectivity, _ = filters.orientation_selectivity(edges)
    assert (edge_selectivity > np.percentile(random_selectivity, 95)).all()
    assert random_selectivity.min() >= 0 and random_selectivity.max() <= 1


def test_selectivity_ignores_scale_and_sign():
    kernel = edge("vertical")[:, :, None]
    base, _ = filters.orientation_selectivity(kernel)
    scaled, _ = filters.orientation_selectivity(-3 * kernel)
    np.testing.assert_allclose(base, scaled)


def test_round_blobs_have_no_orientation_and_flat_ones_all_their_energy_in_the_mean():
    offsets = np.arange(5) - 2
    round_blob = np.exp(-(offsets[:, None] ** 2 + offsets[None, :] ** 2) / 2)[:, :, None]
    selectivity, _ = filters.orientation_selectivity(round_blob)
    assert selectivity[0] == pytest.approx(0.0, abs=1e-3)
    assert filters.mean_share(np.ones((5, 5, 1)))[0] == pytest.approx(1.0)
    assert filters.mean_share(edge("horizontal")[:, :, None])[0] == pytest.approx(0.0)


def test_filter_table_measures_the_move_from_the_start():
    rng = np.random.default_rng(1)
    initial = rng.normal(size=(5, 5, 1, 4))
    trained = initial.copy()
    trained[..., 0] *= 2  # filter 0 doubled: moved by exactly its own norm
    table = filters.filter_table(trained, initial)
    assert list(table.columns) == ["norm", "moved", "mean share", "selectivity",
                                   "orientation"]
    np.testing.assert_allclose(table["moved"], [1.0, 0.0, 0.0, 0.0])
    np.testing.assert_allclose(table.loc[0, "norm"],
                               2 * np.sqrt((initial[..., 0, 0] ** 2).sum()))
    assert "moved" not in filters.filter_table(trained)


@pytest.mark.parametrize("kernels, initial", [(np.zeros((5, 5)), None),
                                              (np.zeros((5, 5, 3)), np.zeros((5, 5, 2)))])
def test_filter_table_refuses_bad_shapes(kernels, initial):
    with pytest.raises(LenetError, match="shape"):
        filters.filter_table(kernels, initial)
