"""`Record`: the base of civic311's small internal records (a call, a flow's pause, a decision).

attrs builds each class at import by generating and compiling its methods (0.3-1 ms a class,
issue 13), which is worth it for the public models, with their validators, converters and
`attrs.fields` for cattrs. Internal records need none of that: a frozen, slotted class compared
by value, whose methods are written once here. A subclass lists its fields in ``__slots__``
(named as its constructor's keywords; the repr shows them in that order), annotates them, and
sets them in ``__init__`` with `Record._set`.
"""

from __future__ import annotations

from typing import Any, ClassVar, TypeVar

__all__ = ["Record"]

R = TypeVar("R", bound="Record")


class Record:
    """Immutable, slotted, compared and hashed by its fields' values, shown by its fields."""

    __slots__ = ()

    #: Fields left out of equality and hashing (as attrs' ``eq=False``).
    _uncompared: ClassVar[frozenset[str]] = frozenset()
    #: Fields left out of the repr (as attrs' ``repr=False``): secrets and callables.
    _unshown: ClassVar[frozenset[str]] = frozenset()

    def _set(self, **values: Any) -> None:
        """Set fields from ``__init__`` (the class is otherwise immutable)."""
        for name, value in values.items():
            object.__setattr__(self, name, value)

    def _fields(self) -> tuple[str, ...]:
        return type(self).__slots__

    def _key(self) -> tuple[Any, ...]:
        return tuple(getattr(self, name) for name in self._fields() if name not in self._uncompared)

    def __eq__(self, other: object) -> bool:
        if other.__class__ is not self.__class__:
            return NotImplemented
        assert isinstance(other, Record)
        return self._key() == other._key()

    def __hash__(self) -> int:
        return hash((self.__class__, self._key()))

    def __repr__(self) -> str:
        shown = ", ".join(
            f"{name}={getattr(self, name)!r}"
            for name in self._fields()
            if name not in self._unshown
        )
        return f"{type(self).__name__}({shown})"

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable: cannot set {name!r}")

    def __delattr__(self, name: str) -> None:
        raise AttributeError(f"{type(self).__name__} is immutable: cannot delete {name!r}")

    def __reduce__(self) -> tuple[Any, ...]:
        # Rebuilt through __init__ (keyword arguments named as the fields), not setattr.
        return (_rebuild, (type(self), {name: getattr(self, name) for name in self._fields()}))

    def evolve(self: R, **changes: Any) -> R:
        """A copy with *changes* (as `attrs.evolve`)."""
        values = {name: getattr(self, name) for name in self._fields()}
        values.update(changes)
        cls: Any = type(self)
        return cls(**values)  # type: ignore[no-any-return]


def _rebuild(cls: Any, values: dict[str, Any]) -> Any:
    return cls(**values)
