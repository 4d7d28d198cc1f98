"""Registries: the one place that lists the encoders, detectors, clustering methods and
output writers, and that the CLI reads its choices and help from.

A registry holds frozen specs keyed by their ``name``. Specs name their code by a lazy
reference, ``"package.module:attribute"`` (or the object itself), so that registering a
built-in imports nothing heavy and ``facecluster --help`` stays instant. Built-ins are
registered the same way a plugin or a test would: ``REGISTRY.register(Spec(...))``.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Generic, Protocol, TypeVar

from .errors import FaceclusterError

# A lazy reference to code: "package.module:attribute", or the object itself.
Ref = str | Callable[..., Any]


class UnknownName(FaceclusterError):
    """A name that no entry of a registry has (exit 2); the message lists the choices."""


class Named(Protocol):
    @property
    def name(self) -> str: ...


T = TypeVar("T", bound=Named)


class Registry(Generic[T]):
    """Specs of one kind (``kind`` names it in messages), in registration order."""

    def __init__(self, kind: str, error: type[FaceclusterError] = UnknownName) -> None:
        self.kind = kind
        self.error = error
        self._items: dict[str, T] = {}

    def register(self, item: T) -> T:
        """Add ``item`` under ``item.name``; a second item of the same name is refused."""
        if not item.name or item.name in self._items:
            raise ValueError(f"{self.kind} {item.name!r} is already registered or unnamed")
        self._items[item.name] = item
        return item

    def unregister(self, name: str) -> T:
        """Remove and return an entry (tests and plugins that registered one)."""
        return self._items.pop(name)

    def get(self, name: str) -> T:
        try:
            return self._items[name]
        except KeyError:
            raise self.error(
                f"unknown {self.kind} {name!r}; choose one of: {', '.join(self._items)}"
            ) from None

    def names(self) -> tuple[str, ...]:
        return tuple(self._items)

    def items(self) -> tuple[T, ...]:
        return tuple(self._items.values())

    def __contains__(self, name: object) -> bool:
        return name in self._items

    def __iter__(self) -> Iterator[T]:
        return iter(self.items())

    def __len__(self) -> int:
        return len(self._items)


def load_ref(ref: Ref) -> Any:
    """The object a lazy reference names (imports its module on first use)."""
    if not isinstance(ref, str):
        return ref
    module, _, attr = ref.partition(":")
    obj: Any = importlib.import_module(module)
    for part in attr.split(".") if attr else ():
        obj = getattr(obj, part)
    return obj


def or_list(names: Iterable[str]) -> str:
    """``a, b or c``: choices in a help text or a message."""
    names = list(names)
    if len(names) < 2:
        return "".join(names)
    return f"{', '.join(names[:-1])} or {names[-1]}"
