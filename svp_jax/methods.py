"""The selection methods: one registry entry each, read by every part.

A method brings its own scoring and its own pick:

  scoring     what it ranks by, from the trained selector:
              `None`        no selector is trained (random);
              `PerBatch`    a function of the selector's model outputs
                            (`OUTPUTS`: logits and/or penultimate features,
                            named in `outputs`), run batch by batch on the
                            device over the pool by svp_jax.scoring, which
                            pads, shards and gathers for every method alike;
                            it returns one score or one row per example
                            (uncertainty; features; an embedding of both);
              `FromTraining` a function of what the selector recorded while
                            it trained (forgetting-event counts)
  pick        (scores, labeled, k, key, mesh) -> k new pool indices, never a
              labeled one; `scores` is what `scoring` gave (None without
              one), `key` a JAX key for methods that draw at random
  modes       the jobs that may use it: 'active' (rounds that add points to
              a labeled set) and/or 'coreset' (one subset kept from nothing)
  seeded      it cannot start from an empty labeled set: a core-set first
              draws `coreset.kcenters_seeds` random points as its centers
  scores_compare  its scores are one float per example that a target's can
              be compared with (selection.compare_with_target)

Active learning (svp_jax.active), core-set selection (svp_jax.coreset),
config validation, the configs' argument parsing and the report all read
this registry and call its entries, never branching on a kind of method
(experiment.method_scores runs a scoring of either kind), so a new method
is one `register` call plus its tests, even one that scores
by something new: BADGE's gradient embeddings are a `PerBatch` of the
logits and the features (one row per example), picked by k-means++
seeding. A test may register a method of its own; tests/test_methods.py
does.

Importing this module imports no JAX: the report reads the registry in
processes that never start JAX, so the built-in scorings and picks import
svp_jax.selection or svp_jax.train when first called. It never imports
svp_jax.scoring, which imports it.
"""

from collections.abc import Callable
import dataclasses
import functools
from typing import Any

from svp_jax import registry_table

# The selector's model outputs a `PerBatch` may take, in the order its
# forward pass returns them (svp_jax.train.predict_step): logits
# [batch, classes] and penultimate features [batch, d], the input of the
# last linear layer.
LOGITS, FEATURES = 'logits', 'features'
OUTPUTS = (LOGITS, FEATURES)
MODES = ('active', 'coreset')

# (scores, labeled [pool] bool, k, key, mesh) -> k pool indices.
Pick = Callable[[Any, Any, int, Any, Any], Any]


@dataclasses.dataclass(frozen=True)
class PerBatch:
  """A per-batch function of the selector's outputs, run over the pool.

  `fn(*outputs)` takes the outputs named in `outputs` (each [batch, ...])
  and returns one score ([batch]) or one row ([batch, d]) per example; it
  runs inside the jitted scoring step, so it must be traceable and
  hashable (a module-level function or a partial made once). With
  `unlabeled_only`, only the pool's unlabeled points are computed (the only
  ones top-k can pick) and labeled ones get NaN; otherwise every point is
  (k-centers needs the labeled points as its centers).
  """

  outputs: tuple[str, ...]
  fn: Callable[..., Any]
  unlabeled_only: bool = False

  def __post_init__(self):
    if (not isinstance(self.outputs, tuple) or not self.outputs
        or set(self.outputs) - set(OUTPUTS)):
      raise ValueError(f'outputs={self.outputs!r}, expected a non-empty '
                       f'tuple of {OUTPUTS}')



@dataclasses.dataclass(frozen=True)
class FromTraining:
  """Scores from what the selector recorded while it trained.

  The one record training keeps is forgetting events (train.train_model's
  `track_forgetting`): the selector counts them for a method scored so, and
  `fn` maps them (a dict of device arrays) to one score per pool example.
  """

  fn: Callable[[Any], Any]



@dataclasses.dataclass(frozen=True)
class SelectionMethod:
  """One way of choosing points; see the module docstring for the fields."""

  name: str
  scoring: PerBatch | FromTraining | None
  pick: Pick
  modes: tuple[str, ...] = MODES
  seeded: bool = False
  scores_compare: bool = False

  def __post_init__(self):
    if not isinstance(self.scoring, (PerBatch, FromTraining, type(None))):
      raise ValueError(f'method {self.name!r}: scoring={self.scoring!r}, '
                       'expected None, a PerBatch or a FromTraining')
    unknown = set(self.modes) - set(MODES)
    if unknown or not self.modes:
      raise ValueError(f'method {self.name!r}: modes={self.modes!r}, '
                       f'expected a non-empty subset of {MODES}')
    if self.scores_compare and not isinstance(self.scoring, PerBatch):
      raise ValueError(f'method {self.name!r}: scores_compare needs '
                       'scores computed from the selector (a PerBatch)')

  @property
  def trains_selector(self) -> bool:
    return self.scoring is not None

  @property
  def counts_forgetting(self) -> bool:
    """Whether its selector must count forgetting events as it trains."""
    return isinstance(self.scoring, FromTraining)



_TABLE = registry_table.Table[SelectionMethod]('selection method')


def register(method: SelectionMethod) -> SelectionMethod:
  """Adds `method`; a name is registered once (tests may `unregister`)."""
  return _TABLE.register(method)


def unregister(name: str):
  """Removes a method registered by a test."""
  _TABLE.unregister(name)


def names(mode: str | None = None) -> tuple[str, ...]:
  """Registered method names usable in `mode` (all if None), in order."""
  return tuple(m.name for m in _TABLE if mode is None or mode in m.modes)


def get(name: str) -> SelectionMethod:
  """The method `name`; ValueError naming the registered ones."""
  return _TABLE.get(name)


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


def _pick_kmeans_pp(embeddings, labeled, k, key, mesh):
  from svp_jax import selection  # pylint: disable=g-import-not-at-top
  # Seeded among the unlabeled points only: the labeled are not centers.
  return selection.kmeans_pp_seeding(embeddings, labeled, k, key, mesh=mesh)


def uncertainty_of(logits, measure):
  """`measure` of the logits in float32, with -0.0 and 0.0 one value.

  How every top-k-by-uncertainty method scores (selection.apply_measure);
  a `PerBatch` fn of the logits, partially applied to its measure once.
  """
  from svp_jax import selection  # pylint: disable=g-import-not-at-top
  return selection.apply_measure(logits, measure)


def _builtin_measure(name: str, logits):
  from svp_jax import selection  # pylint: disable=g-import-not-at-top
  return selection.UNCERTAINTY_MEASURES[name](logits)


def _features(features):
  return features  # k-centers works on the penultimate features themselves.


def _gradient_embeddings(logits, features):
  from svp_jax import selection  # pylint: disable=g-import-not-at-top
  return selection.gradient_embeddings(logits, features)


def _forgetting_scores(record):
  from svp_jax import train  # pylint: disable=g-import-not-at-top
  return train.forgetting_scores(record)


register(SelectionMethod('random', None, _pick_random))
# The measures of svp_jax.selection.UNCERTAINTY_MEASURES; one partial each,
# made once, so a jitted scoring step keyed by it compiles once. Labeled
# points are never scored: top-k could not pick them.
for _name in ('least_confidence', 'entropy', 'margin'):
  register(SelectionMethod(
      _name, PerBatch((LOGITS,), functools.partial(
          uncertainty_of, measure=functools.partial(_builtin_measure, _name)),
                      unlabeled_only=True),
      _pick_top_k, scores_compare=True))
# Core-set only: forgetting is counted over a training run on the whole pool.
# Counts are small integers, so the subset's boundary falls inside a large
# tie class: the run's key, not dataset order, chooses within it.
register(SelectionMethod('forgetting_events', FromTraining(_forgetting_scores),
                         _pick_top_k_random_ties, modes=('coreset',)))
register(SelectionMethod('kcenters', PerBatch((FEATURES,), _features),
                         _pick_k_centers, seeded=True))
# BADGE (Ash et al. 2020; svp_jax.selection, "BADGE"): the loss gradient's
# last-layer embedding at the predicted label, one [classes * d] row per
# unlabeled point, picked by k-means++ seeding. Active only: in a core-set
# the proxy trained on the whole pool, where the embedding at its own
# prediction is ~0 for the points it fits, and every label, which BADGE's
# predicted-label gradient stands in for, is known.
register(SelectionMethod(
    'badge', PerBatch((LOGITS, FEATURES), _gradient_embeddings,
                      unlabeled_only=True),
    _pick_kmeans_pp, modes=('active',)))
