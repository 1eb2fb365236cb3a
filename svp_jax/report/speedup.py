"""The data-selection speed-up: one definition, for report and benchmarks.

Definitions (docs/reference.md, "Active learning"):

* A group ("selection model") is the selector's model and epochs plus the
  selection method, read from each run's config.json; runs of one group
  differ only in `seed`. Random selection trains no selector, so all random
  runs form one group.
* The baseline of a method is the group whose selector trains exactly as the
  target does (run_files.same_training) with that method.
* Data-selection seconds of a run at a labeled-set size: selector training +
  the selector's text encoding + scoring + ranking + their compiling
  (SELECTION_PARTS; encoding and compiling are 0 for runs written before
  they were recorded), summed over the rounds up to the
  one that reaches that size (round 0's random pick included), from
  summary.json's rounds.
* Speed-up of a group at a size = the baseline's mean seconds over its runs
  that reached the size / the group's mean over its runs that did. Runs
  marked `shared` (other work took the machine while they ran) are left out
  of both means. Random selection gets none.

A run here is anything with `config` (config.json as a dict), `summary`
(summary.json), `seed`, `complete` and `shared`:
svp_jax.report.runs.TimedRun and the report's Run both are.
"""

from collections.abc import Callable, Mapping, Sequence
import dataclasses
from typing import Any

from svp_jax import methods
from svp_jax import run_files
from svp_jax.report import runs as runs_lib
from svp_jax.report import stats

BASELINE, PROXY, RANDOM = 'baseline', 'proxy', 'random'
_KIND_ORDER = {BASELINE: 0, PROXY: 1, RANDOM: 2}
# A round's data-selection seconds: every part but the target's training.
SELECTION_PARTS = run_files.SELECTION_PARTS


@dataclasses.dataclass(frozen=True)
class Group:
  """Runs of one selection model (selector + epochs + method)."""

  label: str
  method: str
  kind: str  # BASELINE, PROXY or RANDOM.
  runs: tuple[Any, ...]  # By seed.

  @property
  def partial_runs(self) -> int:
    return sum(not r.complete for r in self.runs)


def trains_selector(method: str) -> bool:
  return methods.get(method).trains_selector


def selector_epochs(config: Mapping[str, Any]) -> int:
  return sum(int(epochs) for epochs, _ in
             config['selector']['train']['lr_schedule'])


def is_baseline(config: Mapping[str, Any]) -> bool:
  """Whether the target selects for itself (active's `same_models`)."""
  return (trains_selector(config['selection']['method'])
          and run_files.same_training(config['selector'], config['target']))


def kind(config: Mapping[str, Any]) -> str:
  """BASELINE, PROXY or RANDOM (no selector is trained)."""
  if not trains_selector(config['selection']['method']):
    return RANDOM
  return BASELINE if is_baseline(config) else PROXY


def group_key(config: Mapping[str, Any]) -> tuple[str, int, str]:
  """(selector model, selector epochs, method): the runs of one group."""
  method = config['selection']['method']
  if not trains_selector(method):  # One group: no selector is trained.
    return ('', 0, method)
  return (config['selector']['model']['name'], selector_epochs(config),
          method)


def group_label(config: Mapping[str, Any]) -> str:
  """'preact8 (15 ep)', '... , target selects (baseline)' or the method."""
  name, epochs, method = group_key(config)
  group_kind = kind(config)
  if group_kind == RANDOM:
    return method
  label = f'{name} ({epochs} ep)'
  return (f'{label}, target selects (baseline)' if group_kind == BASELINE
          else label)


def group_runs(runs: Sequence[Any],
               check: Callable[[Sequence[Any]], None] | None = None
               ) -> list[Group]:
  """Baselines first, then proxies, then random; each sorted by method.

  Args:
    runs: runs (see the module docstring).
    check: called with the runs of each group, e.g. to refuse a group whose
      runs train different selectors.
  """
  by_key: dict[tuple[str, int, str], list[Any]] = {}
  for r in runs:
    by_key.setdefault(group_key(r.config), []).append(r)
  groups = []
  for members in by_key.values():
    if check is not None:
      check(members)
    config = members[0].config
    groups.append(Group(group_label(config), group_key(config)[2],
                        kind(config),
                        tuple(sorted(members, key=lambda r: r.seed))))
  return sorted(groups, key=lambda g: (_KIND_ORDER[g.kind], g.method,
                                       g.label))


def baselines_by_method(groups: Sequence[Group]) -> dict[str, Group]:
  return {g.method: g for g in groups if g.kind == BASELINE}


def selection_seconds_at(run: Any, size: int) -> float | None:
  """Data-selection seconds up to the round reaching `size` (None: not yet)."""
  total = 0.0
  for row in sorted(run.summary['rounds'], key=lambda row: row['round']):
    total += sum(runs_lib.round_seconds(row, part)
                 for part in SELECTION_PARTS)
    if row['labeled'] == size:
      return total
  return None


def mean_seconds(group: Group, size: int) -> float | None:
  """Mean data-selection seconds at `size` over the runs that reached it
  on a machine of their own (not `shared`)."""
  return stats.mean(stats.present([selection_seconds_at(r, size)
                                   for r in group.runs if not r.shared]))


def speedup(group: Group, baseline: Group | None, size: int) -> float | None:
  """The group's data-selection speed-up over `baseline` at `size`.

  None without a baseline, for random selection, or where either has no
  unshared run that reached `size` (or the group took no time).
  """
  if baseline is None or group.kind == RANDOM:
    return None
  seconds, base_seconds = mean_seconds(group, size), mean_seconds(baseline,
                                                                  size)
  if base_seconds is None or not seconds:
    return None
  return base_seconds / seconds


def sizes(runs: Sequence[Any]) -> list[int]:
  """Every labeled-set size some run's rounds reached, ascending."""
  return sorted({int(row['labeled']) for r in runs
                 for row in r.summary['rounds']})
