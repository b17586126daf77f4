"""Profiles: how much data and how many epochs a run of the book uses.

``full`` is what readers see: all the data, the epochs the text states.
``quick`` shrinks both so that every notebook executes in CI in seconds. The
profile is read from one environment variable; notebooks ask the profile for
sizes and epochs and never test for CI themselves.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, TypeVar

from lenet_utils.errors import LenetError

PROFILE_VARIABLE = "LENET_PROFILE"
T = TypeVar("T")


@dataclass(frozen=True)
class Profile:
    """Sizes and epoch caps of one profile.

    Attributes
    ----------
    name : str
        ``"full"`` or ``"quick"``.
    max_epochs : int or None
        Cap on every training run; None for no cap.
    train_per_class, validation_per_class, test_per_class : int or None
        Examples kept per class in each split; None keeps them all.
    """

    name: str
    max_epochs: int | None = None
    train_per_class: int | None = None
    validation_per_class: int | None = None
    test_per_class: int | None = None

    def epochs(self, epochs: int) -> int:
        """The epochs to train for: ``epochs``, capped in the quick profile.

        Examples
        --------
        >>> PROFILES["quick"].epochs(20)
        2
        """
        return epochs if self.max_epochs is None else min(epochs, self.max_epochs)

    def choose(self, *, full: T, quick: T) -> T:
        """Pick the value for this profile (sizes of a sweep, say).

        Examples
        --------
        >>> PROFILES["full"].choose(full=[500, 2000], quick=[100])
        [500, 2000]
        """
        return full if self.name == "full" else quick

    @property
    def data_limits(self) -> dict[str, Any]:
        """Keyword arguments for :func:`lenet_utils.data.load_splits`."""
        return {
            "train_per_class": self.train_per_class,
            "validation_per_class": self.validation_per_class,
            "test_per_class": self.test_per_class,
        }


PROFILES = {
    "full": Profile("full"),
    "quick": Profile(
        "quick", max_epochs=2, train_per_class=100, validation_per_class=30,
        test_per_class=50,
    ),
}


def get_profile(name: str | None = None) -> Profile:
    """Return the profile named by ``name`` or by ``LENET_PROFILE`` (default full).

    Raises
    ------
    LenetError
        If the name is not a known profile.

    Examples
    --------
    >>> get_profile("quick").name
    'quick'
    """
    if name is None:
        name = os.environ.get(PROFILE_VARIABLE, "").strip() or "full"
    if name not in PROFILES:
        raise LenetError(
            f"Unknown profile {name!r} (from argument or {PROFILE_VARIABLE}); "
            f"choose one of {', '.join(PROFILES)}."
        )
    return PROFILES[name]
