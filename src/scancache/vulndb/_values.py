"""The __eq__, __hash__ and __repr__ @dataclass writes, for the audit's value types, uncompiled.

@dataclass writes each method it generates as source text and compiles it while the class is being
defined: ~0.2-0.4 ms a class, ten classes on every `scancache audit` start-up (a warm audit takes
~0.1 s). Those types are declared `@dataclass(init=False, repr=False, eq=False)` (slots kept; frozen
through value_methods: dataclasses.fields, replace and asdict work as before), write their __init__
by hand, and get from `value_methods` the methods dataclass would have generated, with the same
results: equality and hash over the fields' tuple, the repr `Name(field=value, ...)`, and for a
frozen type the __setattr__/__delattr__ that raise FrozenInstanceError.
tests/test_audit_warm.py compares every such type with the dataclass declared the usual way.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import FrozenInstanceError, fields
from operator import attrgetter
from reprlib import recursive_repr
from typing import Any, TypeVar

__all__ = ["value_methods", "FACTORY"]

T = TypeVar("T", bound=type)


class _Factory:
    """The default of a field with a default_factory, as dataclass's __init__ spells it."""

    __slots__ = ()

    def __repr__(self) -> str:
        return "<factory>"


#: A hand-written __init__'s default for a field(default_factory=...): the factory runs when the
#: argument is this (an explicit None is stored as None, as dataclass's __init__ does).
FACTORY: Any = _Factory()


def value_methods(cls: T | None = None, *, frozen: bool = False) -> Any:
    """Give the dataclass cls the __eq__ (fields with compare), the __repr__ (fields with repr;
    unless cls writes its own) and __hash__ (None unless frozen) that @dataclass generates. Apply
    it on top of @dataclass(init=False, repr=False, eq=False); `@value_methods(frozen=True)` on top
    of a dataclass declared without frozen also makes it frozen as @dataclass(frozen=True) does:
    the __setattr__/__delattr__ that raise FrozenInstanceError, __hash__ over the fields, and
    __dataclass_params__.frozen (so subclasses follow dataclass's frozen rules). Its __init__ must
    then store the fields with object.__setattr__ (or into __dict__), as dataclass's does."""
    if cls is None:
        return lambda declared: _add_methods(declared, frozen)
    return _add_methods(cls, frozen)


def _add_methods(cls: T, frozen: bool) -> T:
    declared = fields(cls)
    compared = _values([f.name for f in declared if f.compare])
    shown = [f.name for f in declared if f.repr]
    params = cls.__dataclass_params__  # type: ignore[attr-defined]

    def __eq__(self: Any, other: object) -> bool:
        if other.__class__ is self.__class__:
            return bool(compared(self) == compared(other))
        return NotImplemented

    cls.__eq__ = __eq__  # type: ignore[assignment,method-assign]
    if frozen and not params.frozen:
        _freeze(cls, tuple(f.name for f in declared))
        params.frozen = True
    if params.frozen:
        def __hash__(self: Any) -> int:
            return hash(compared(self))

        cls.__hash__ = __hash__  # type: ignore[assignment,method-assign]
    else:
        cls.__hash__ = None  # type: ignore[assignment]  # as eq=True makes a mutable dataclass
    if "__repr__" not in cls.__dict__:
        @recursive_repr()
        def __repr__(self: Any) -> str:
            return (f"{self.__class__.__qualname__}("
                    + ", ".join([f"{name}={getattr(self, name)!r}" for name in shown]) + ")")

        cls.__repr__ = __repr__  # type: ignore[assignment,method-assign]
    return cls


def _freeze(cls: type, names: tuple[str, ...]) -> None:
    """The __setattr__ and __delattr__ @dataclass(frozen=True) writes (dataclasses'
    _frozen_get_del_attr), as closures."""
    def __setattr__(self: Any, name: str, value: Any) -> None:
        if type(self) is cls or name in names:
            raise FrozenInstanceError(f"cannot assign to field {name!r}")
        super(cls, self).__setattr__(name, value)  # type: ignore[arg-type]  # cls is a class

    def __delattr__(self: Any, name: str) -> None:
        if type(self) is cls or name in names:
            raise FrozenInstanceError(f"cannot delete field {name!r}")
        super(cls, self).__delattr__(name)  # type: ignore[arg-type]  # cls is a class

    cls.__setattr__ = __setattr__  # type: ignore[method-assign,assignment]
    cls.__delattr__ = __delattr__  # type: ignore[method-assign,assignment]
    if "__slots__" in cls.__dict__:
        # What @dataclass(frozen=True, slots=True) adds (dataclasses' _add_slots): without them,
        # pickle and copy restore the slots with setattr, which the frozen __setattr__ refuses.
        def __getstate__(self: Any) -> list[Any]:
            return [getattr(self, name) for name in names]

        def __setstate__(self: Any, state: list[Any]) -> None:
            for name, value in zip(names, state, strict=False):
                object.__setattr__(self, name, value)

        cls.__getstate__ = __getstate__  # type: ignore[method-assign,assignment]
        cls.__setstate__ = __setstate__  # type: ignore[attr-defined]


def _values(names: list[str]) -> Callable[[Any], tuple[Any, ...]]:
    """The tuple of an object's attributes names (a one-tuple for one name, as dataclass's)."""
    if len(names) == 1:
        name = names[0]
        return lambda obj: (getattr(obj, name),)
    if not names:
        return lambda obj: ()
    return attrgetter(*names)
