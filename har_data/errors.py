"""The one exception the data layer raises for bad input."""


class HarDataError(ValueError):
    """Bad or missing HAR input. The one-line message names the file and the problem."""
