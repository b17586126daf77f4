"""The package's one exception class."""


class LenetError(Exception):
    """A problem the caller can fix: bad data, a bad argument, a bad setting.

    Every message names the file or argument, says what is wrong, and says how
    to fix it.
    """
