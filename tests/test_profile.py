import pytest

from lenet_utils import LenetError
from lenet_utils.profile import PROFILE_VARIABLE, PROFILES, get_profile


def test_full_is_the_default(monkeypatch):
    monkeypatch.delenv(PROFILE_VARIABLE, raising=False)
    profile = get_profile()
    assert profile.name == "full" and profile.epochs(20) == 20
    assert profile.data_limits == {"train_per_class": None, "validation_per_class": None,
                                   "test_per_class": None}


def test_quick_from_the_environment(monkeypatch):
    monkeypatch.setenv(PROFILE_VARIABLE, "quick")
    profile = get_profile()
    assert profile.name == "quick"
    assert profile.epochs(20) == 2 and profile.epochs(1) == 1
    assert profile.choose(full=[500, 2000], quick=[100]) == [100]
    assert profile.data_limits["train_per_class"] == PROFILES["quick"].train_per_class


def test_unknown_profile_is_an_error(monkeypatch):
    monkeypatch.setenv(PROFILE_VARIABLE, "fast")
    with pytest.raises(LenetError, match="Unknown profile 'fast'.*full, quick"):
        get_profile()
