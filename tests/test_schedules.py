"""The learning-rate schedules of lenet_utils.schedules, and their options."""

import numpy as np
import pytest

from lenet_utils import LenetError, lenet5, schedules
from lenet_utils.training import TrainingConfig

STEPS_PER_PASS = 10


def rates_per_pass(schedule, passes=20):
    """The schedule's value at the last step of every pass."""
    return [float(schedule(STEPS_PER_PASS * p - 1)) for p in range(1, passes + 1)]


def test_paper_step_of_pass_follows_the_papers_table():
    steps = [schedules.paper_step_of_pass(p) for p in range(1, 21)]
    assert steps == [5e-4] * 2 + [2e-4] * 3 + [1e-4] * 3 + [5e-5] * 4 + [1e-5] * 8
    with pytest.raises(LenetError, match="counts from 1"):
        schedules.paper_step_of_pass(0)


def test_rescaled_by_one_is_the_papers_schedule_at_every_step():
    paper = lenet5.paper_steps(2e-3, STEPS_PER_PASS, 20)
    same = schedules.paper_steps_rescaled_from(2e-3, STEPS_PER_PASS, 20, from_pass=13,
                                               later_scale=1.0)
    for step in range(20 * STEPS_PER_PASS):
        assert float(same(step)) == float(paper(step))


@pytest.mark.parametrize(("learning_rate", "later_scale"), [(2e-3, 0.25), (5e-4, 4.0)])
def test_rescaled_changes_only_the_passes_from_from_pass(learning_rate, later_scale):
    paper = np.array(rates_per_pass(lenet5.paper_steps(learning_rate, STEPS_PER_PASS, 20)))
    rescaled = np.array(rates_per_pass(schedules.paper_steps_rescaled_from(
        learning_rate, STEPS_PER_PASS, 20, from_pass=13, later_scale=later_scale)))
    np.testing.assert_array_equal(rescaled[:12], paper[:12])
    np.testing.assert_allclose(rescaled[12:], later_scale * paper[12:], rtol=1e-6)
    first_of_pass_13 = schedules.paper_steps_rescaled_from(
        learning_rate, STEPS_PER_PASS, 20, from_pass=13, later_scale=later_scale)(120)
    assert float(first_of_pass_13) == pytest.approx(later_scale * learning_rate / 50)


@pytest.mark.parametrize(("options", "message"), [
    ({"from_pass": 1, "later_scale": 4.0}, r"from_pass=1 must be a whole pass in 2\.\.20"),
    ({"from_pass": 21, "later_scale": 4.0}, "from_pass=21 must"),
    ({"from_pass": 13.5, "later_scale": 4.0}, "from_pass=13.5 must"),
    ({"from_pass": True, "later_scale": 4.0}, "from_pass=True must"),
    ({"from_pass": 13, "later_scale": 0.0}, "later_scale=0.0 must be positive and finite"),
    ({"from_pass": 13, "later_scale": float("inf")}, "later_scale=inf must"),
])
def test_rescaled_rejects_a_pass_outside_the_run_or_a_scale_not_positive(options, message):
    with pytest.raises(LenetError, match=message):
        schedules.paper_steps_rescaled_from(5e-4, STEPS_PER_PASS, 20, **options)
    with pytest.raises(LenetError, match="steps_per_epoch=0 positive"):
        schedules.paper_steps_rescaled_from(5e-4, 0, 20, from_pass=13, later_scale=4.0)


@pytest.mark.parametrize(("schedule", "options", "message"), [
    ("lenet5_paper", {"from_pass": 13}, r"takes no schedule_options; got \['from_pass'\]"),
    ("lenet5_paper_rescaled_from", {"from_pass": 13},
     r"\['from_pass', 'later_scale'\] needed; got \['from_pass'\]"),
    ("lenet5_paper_rescaled_from", {"from_pass": 13, "later_scale": 4, "by": 2},
     r"got \['by', 'from_pass', 'later_scale'\]"),
])
def test_config_rejects_schedule_options_the_schedule_does_not_take(schedule, options,
                                                                    message):
    with pytest.raises(LenetError, match=message):
        TrainingConfig(schedule=schedule, schedule_options=options)


def test_schedule_options_reach_the_optimizer_and_the_cache_key():
    config = TrainingConfig(model="lenet5", loss="rbf", learning_rate=5e-4, epochs=20,
                            schedule="lenet5_paper_rescaled_from",
                            schedule_options={"from_pass": 13, "later_scale": 4.0})
    optimizer = config.build_model(steps_per_epoch=STEPS_PER_PASS).optimizer
    optimizer.iterations.assign(12 * STEPS_PER_PASS)
    assert float(optimizer.learning_rate) == pytest.approx(4e-5)
    assert config.fingerprint()["schedule_options"] == {"from_pass": 13, "later_scale": 4.0}
    assert "schedule_options" not in TrainingConfig().fingerprint()
