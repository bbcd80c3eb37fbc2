"""Parameter types of the operators (kernel level, and the graph-level ones that take numbers):
`Param.coerce` calls the type on a user's value and turns its ValueError into an
`OperatorError`, so a bad value fails when `mutation()` is called, not deep inside a build."""


class PositiveFloat(float):
    """A float above zero."""

    def __new__(cls, value):
        number = float.__new__(cls, value)
        if not number > 0:
            raise ValueError(f"{value!r} is not above zero")
        return number


class NonZeroFloat(float):
    """A float other than zero."""

    def __new__(cls, value):
        number = float.__new__(cls, value)
        if number == 0:
            raise ValueError("zero")
        return number


class PositiveInt(int):
    """An integer of at least 1."""

    def __new__(cls, value):
        number = int.__new__(cls, value)
        if number < 1:
            raise ValueError(f"{value!r} is below 1")
        return number


class NonZeroInt(int):
    """An integer other than zero."""

    def __new__(cls, value):
        number = int.__new__(cls, value)
        if number == 0:
            raise ValueError("zero")
        return number


class NonNegativeInt(int):
    """An integer of at least 0 (a seed)."""

    def __new__(cls, value):
        number = int.__new__(cls, value)
        if number < 0:
            raise ValueError(f"{value!r} is below 0")
        return number


class IndexOrRandom(int):
    """An index (at least 0), or -1 for a choice made by the operator's seeded generator."""

    def __new__(cls, value):
        number = int.__new__(cls, value)
        if number < -1:
            raise ValueError(f"{value!r} is neither -1 (random) nor an index")
        return number


class Fraction(float):
    """A float in (0, 1]."""

    def __new__(cls, value):
        number = float.__new__(cls, value)
        if not 0 < number <= 1:
            raise ValueError(f"{value!r} is not in (0, 1]")
        return number
