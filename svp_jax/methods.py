"""The selection methods: one registry entry each, read by every part.

A method declares what it needs from the selector and how it picks:

  needs       what the selector must provide (`NOTHING`: no selector is
              trained; `UNCERTAINTY`: one score per pool example from its
              logits, computed batch by batch on the device; `FEATURES`: the
              penultimate features of the pool; `FORGETTING`: forgetting-event
              counts recorded while it trains)
  pick        (scores, labeled, k, key, mesh) -> k new pool indices, never a
              labeled one; `scores` is what `needs` asked for (None for
              `NOTHING`), `key` a JAX key for methods that draw at random
  modes       the jobs that may use it: 'active' (rounds that add points to
              a labeled set) and/or 'coreset' (one subset kept from nothing)
  seeded      it cannot start from an empty labeled set: a core-set first
              draws `coreset.kcenters_seeds` random points as its centers

Active learning (svp_jax.active), core-set selection (svp_jax.coreset),
config validation, the configs' argument parsing and the report all read
this registry, so a new method is one `register` call plus its tests (a
test may register a method of its own; tests/test_methods.py does).

Importing this module imports no JAX: the report reads the registry in
processes that never start JAX, so the built-in picks import
svp_jax.selection when first called.
"""

from collections.abc import Callable
import dataclasses
import functools
from typing import Any

NOTHING, UNCERTAINTY, FEATURES, FORGETTING = (
    'nothing', 'uncertainty', 'features', 'forgetting')
NEEDS = (NOTHING, UNCERTAINTY, FEATURES, FORGETTING)
MODES = ('active', 'coreset')

# (scores, labeled [pool] bool, k, key, mesh) -> k pool indices.
Pick = Callable[[Any, Any, int, Any, Any], Any]


@dataclasses.dataclass(frozen=True)
class SelectionMethod:
  """One way of choosing points; see the module docstring for the fields."""

  name: str
  needs: str
  pick: Pick
  modes: tuple[str, ...] = MODES
  # For `UNCERTAINTY`: logits [batch, classes] -> float32 [batch], higher =
  # more uncertain; run inside the jitted scoring step.
  uncertainty: Callable[[Any], Any] | None = None
  seeded: bool = False

  def __post_init__(self):
    if self.needs not in NEEDS:
      raise ValueError(f'method {self.name!r}: needs={self.needs!r}, '
                       f'expected one of {NEEDS}')
    if (self.needs == UNCERTAINTY) != (self.uncertainty is not None):
      raise ValueError(f'method {self.name!r}: an uncertainty function is '
                       f'required exactly when needs={UNCERTAINTY!r}')
    unknown = set(self.modes) - set(MODES)
    if unknown or not self.modes:
      raise ValueError(f'method {self.name!r}: modes={self.modes!r}, '
                       f'expected a non-empty subset of {MODES}')

  @property
  def trains_selector(self) -> bool:
    return self.needs != NOTHING

  @property
  def scores_compare(self) -> bool:
    """Whether proxy and target scores can be compared (agreement files)."""
    return self.needs == UNCERTAINTY


_REGISTRY: dict[str, SelectionMethod] = {}


def register(method: SelectionMethod) -> SelectionMethod:
  """Adds `method`; a name is registered once (tests may `unregister`)."""
  if method.name in _REGISTRY:
    raise ValueError(f'selection method {method.name!r} is already '
                     'registered')
  _REGISTRY[method.name] = method
  return method


def unregister(name: str):
  """Removes a method registered by a test."""
  del _REGISTRY[name]


def names(mode: str | None = None) -> tuple[str, ...]:
  """Registered method names usable in `mode` (all if None), in order."""
  return tuple(n for n, m in _REGISTRY.items()
               if mode is None or mode in m.modes)


def get(name: str) -> SelectionMethod:
  """The method `name`; ValueError naming the registered ones."""
  try:
    return _REGISTRY[name]
  except (KeyError, TypeError):
    raise ValueError(f'selection method {name!r} is not registered: expected '
                     f'one of {names()}') from None


# ----------------------------------------------------------------------------
# The built-in methods, in the order `:all` runs them (the baseline first,
# then by what the selector provides: outputs, training history, features).


def _pick_random(scores, labeled, k, key, mesh):
  from svp_jax import selection  # pylint: disable=g-import-not-at-top
  del scores, mesh  # Uniform over the unlabeled points.
  return selection.select_random(key, labeled, k)


def _pick_top_k(scores, labeled, k, key, mesh):
  from svp_jax import selection  # pylint: disable=g-import-not-at-top
  del key, mesh  # Deterministic: the k highest scores, ties to low indices.
  return selection.select_top_k(scores, labeled, k)


def _pick_top_k_random_ties(scores, labeled, k, key, mesh):
  from svp_jax import selection  # pylint: disable=g-import-not-at-top
  del mesh  # The k highest scores, ties in an order drawn from the run's key.
  return selection.select_top_k(scores, labeled, k, tie_key=key)


def _pick_k_centers(features, labeled, k, key, mesh):
  from svp_jax import selection  # pylint: disable=g-import-not-at-top
  del key  # Greedy and deterministic from the labeled centers.
  return selection.greedy_k_centers(features, labeled, k, mesh=mesh)


def _builtin_measure(name: str, logits):
  from svp_jax import selection  # pylint: disable=g-import-not-at-top
  return selection.UNCERTAINTY_MEASURES[name](logits)


register(SelectionMethod('random', NOTHING, _pick_random))
# The measures of svp_jax.selection.UNCERTAINTY_MEASURES; one partial each,
# made once, so a jitted scoring step keyed by it compiles once.
for _name in ('least_confidence', 'entropy', 'margin'):
  register(SelectionMethod(_name, UNCERTAINTY, _pick_top_k,
                           uncertainty=functools.partial(_builtin_measure,
                                                         _name)))
# Core-set only: forgetting is counted over a training run on the whole pool.
# Counts are small integers, so the subset's boundary falls inside a large
# tie class: the run's key, not dataset order, chooses within it.
register(SelectionMethod('forgetting_events', FORGETTING,
                         _pick_top_k_random_ties, modes=('coreset',)))
register(SelectionMethod('kcenters', FEATURES, _pick_k_centers, seeded=True))
