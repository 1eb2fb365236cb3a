"""A table of named entries: what the method and model registries share.

Each registry (svp_jax.methods, svp_jax.model_registry) keeps its entries,
in registration order, in one `Table`, and adds its own ways of listing
them. Imports nothing: the method registry is read by processes that never
start JAX.
"""

from collections.abc import Iterator
from typing import Generic, TypeVar

T = TypeVar('T')


class Table(Generic[T]):
  """Entries by their `name`, each registered once (tests may remove)."""

  def __init__(self, kind: str):
    self.kind = kind  # As errors name an entry: 'model', 'selection method'.
    self._entries: dict[str, T] = {}

  def register(self, entry: T) -> T:
    name = entry.name  # type: ignore[attr-defined]
    if name in self._entries:
      raise ValueError(f'{self.kind} {name!r} is already registered')
    self._entries[name] = entry
    return entry

  def unregister(self, name: str):
    del self._entries[name]

  def get(self, name: str) -> T:
    """The entry `name`; ValueError naming every registered one."""
    try:
      return self._entries[name]
    except (KeyError, TypeError):
      raise ValueError(f'{self.kind} {name!r} is not registered: expected '
                       f'one of {tuple(self._entries)}') from None

  def __iter__(self) -> Iterator[T]:
    return iter(tuple(self._entries.values()))
