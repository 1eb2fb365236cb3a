"""The active-learning report: which runs go together, Table 1, the index.

Groups, baselines and the speed-up are defined in svp_jax.report.speedup.
Error = 1 - the target's (last-epoch) test accuracy, in percent; std is the
sample standard deviation over runs (ddof=1).

All runs read together must share everything except `seed`, the selector,
`selection.method` and the settings in `_MAY_DIFFER`; otherwise ReportError
names the runs and the keys.
"""

from collections.abc import Sequence
import dataclasses

from svp_jax import results
from svp_jax.report import runs as runs_lib
from svp_jax.report import speedup as speedup_lib
from svp_jax.report import stats
from svp_jax.report import text

BASELINE, PROXY, RANDOM = (speedup_lib.BASELINE, speedup_lib.PROXY,
                           speedup_lib.RANDOM)
Group = speedup_lib.Group
Run = runs_lib.Run
TIME_PARTS = runs_lib.TIME_PARTS

# Config keys (dotted prefixes) that may differ between the runs of one
# report. `selector` and `selection.method` define the groups; the rest change
# where data is read from or how a model is evaluated, not what is trained.
_MAY_DIFFER = ('seed', 'selector', 'selection.method',
               'selection.compare_with_target', 'data.data_dir',
               'data.manual_dir', 'data.download', 'data.in_memory',
               'target.train.eval_batch_size', 'target.train.eval_every')
# Selector settings that may differ within a group (evaluation only).
_SELECTOR_MAY_DIFFER = tuple(f'selector.train.{k}'
                             for k in ('eval_batch_size', 'eval_every'))
_WITHIN_TOLERANCE = 1e-9  # Percent; absorbs float noise at the 1-std bound.


@dataclasses.dataclass(frozen=True)
class Cell:
  """One group at one labeled-set size."""

  error_mean: float | None  # Percent; None when no run trained a target.
  error_std: float | None  # None with fewer than two runs.
  n: int  # Runs with a target error at this size.
  seconds: float | None  # Mean data-selection seconds up to this size.
  speedup: float | None  # None: no baseline, random selection, no times.
  within: bool | None  # Error within 1 std of the baseline's; None: n/a.


# ----------------------------------------------------------------------------
# Which runs belong together.


def check_comparable(runs: Sequence[Run]):
  """Raises ReportError if the runs differ beyond seed, selector and method."""
  runs_lib.check_may_differ_only(runs, _MAY_DIFFER)
  pools = {r.summary['pool_size'] for r in runs}
  if len(pools) > 1:
    raise runs_lib.ReportError(f'the runs have different pools: '
                               f'{sorted(pools)} (summary.json pool_size)')


def _check_group(runs: Sequence[Run]):
  """Runs of one group must train the same selector and have distinct seeds."""
  if speedup_lib.trains_selector(runs[0].method):  # Else no selector.
    differences = runs_lib.differing_keys(
        runs, [p for p in _MAY_DIFFER if p != 'selector']
        + list(_SELECTOR_MAY_DIFFER))
    if differences:
      raise runs_lib.ReportError(
          f'runs {", ".join(r.name for r in runs)} have the same selector '
          f'model, epochs and method but train the selector differently: '
          f'{runs_lib.describe(differences)}')
  runs_lib.check_distinct_seeds(runs)


def group_runs(runs: Sequence[Run]) -> list[Group]:
  """Baselines first, then proxies, then random; each sorted by method."""
  return speedup_lib.group_runs(runs, check=_check_group)


# ----------------------------------------------------------------------------
# Numbers.


def budgets(runs: Sequence[Run]) -> list[int]:
  """Every labeled-set size at which some run trained the target."""
  return sorted({size for r in runs for size in r.target_accuracy})


def error_at(run: Run, size: int) -> float | None:
  """Target top-1 error in percent at `size` (None: no target there)."""
  accuracy = run.target_accuracy.get(size)
  return None if accuracy is None else 100.0 * (1.0 - accuracy)


def errors(group: Group, size: int) -> list[float]:
  """The errors at `size` of the group's runs that trained a target there."""
  return stats.present([error_at(r, size) for r in group.runs])


def cell(group: Group, baseline: Group | None, size: int) -> Cell:
  """The Table 1 entry of `group` at labeled-set size `size`."""
  error_mean, error_std = stats.mean_std(errors(group, size))
  within = None
  if baseline is not None and group.kind == PROXY and error_mean is not None:
    base_mean, base_std = stats.mean_std(errors(baseline, size))
    if base_mean is not None:
      within = error_mean <= base_mean + (base_std or 0.0) + _WITHIN_TOLERANCE
  return Cell(error_mean, error_std, len(errors(group, size)),
              speedup_lib.mean_seconds(group, size),
              speedup_lib.speedup(group, baseline, size), within)


def table_cells(groups: Sequence[Group],
                sizes: Sequence[int]) -> list[tuple[Group, list[Cell]]]:
  baselines = speedup_lib.baselines_by_method(groups)
  return [(g, [cell(g, baselines.get(g.method), s) for s in sizes])
          for g in groups]


def time_breakdown(run: Run) -> dict[str, float]:
  """Seconds of each phase, summed over the run's completed rounds.

  Each training counts once: the target a baseline trains at the end of a
  round is the next round's selector (svp_jax.active reuses it), so its
  seconds count as that selector's training, not also as a target's.
  """
  rows = sorted(run.summary['rounds'], key=lambda row: row['round'])
  totals = {part: sum(runs_lib.round_seconds(row, part) for row in rows)
            for part in TIME_PARTS}
  totals['target_train_seconds'] -= reused_target_seconds(run.config, rows)
  return totals


def reused_target_seconds(config, rows) -> float:
  """Seconds of the targets a baseline run reused as its next selector.

  A reused target's row is the next round's selector row, so the two
  rounds record the same training seconds.
  """
  if not speedup_lib.is_baseline(config):
    return 0.0
  return sum(before['target_train_seconds']
             for before, row in zip(rows, rows[1:])
             if before['target_train_seconds'] > 0
             and row['selector_train_seconds']
             == before['target_train_seconds'])


# ----------------------------------------------------------------------------
# Markdown.


def title(runs: Sequence[Run]) -> str:
  config = runs[0].config
  return (f'{config["data"]["name"]}, target '
          f'{config["target"]["model"]["name"]}')


def format_cell(c: Cell, group_size: int) -> str:
  """'10.0× · 21.67 ± 1.15 ✓': speed-up · error (%) mean ± std, mark."""
  speedup = '—' if c.speedup is None else f'{c.speedup:.1f}×'
  if c.error_mean is None:
    error = 'no target'
  else:
    error = f'{c.error_mean:.2f}'
    if c.error_std is not None:
      error += f' ± {c.error_std:.2f}'
    if c.n < group_size:
      error += f' (n={c.n})'
  return f'{speedup} · {error}' + (' ✓' if c.within else '')


def _runs_label(group: Group) -> str:
  partial = group.partial_runs
  return (f'{len(group.runs)} ({partial} partial) †' if partial
          else str(len(group.runs)))


def _table1_notes(groups: Sequence[Group]) -> list[str]:
  notes = []
  baselines = speedup_lib.baselines_by_method(groups)
  proxied = sorted({g.method for g in groups if g.kind == PROXY})
  missing = [m for m in proxied if m not in baselines]
  if not baselines:
    notes.append('No baseline run among these (selector = target, method '
                 'not random): speed-ups need one, so only errors are shown.')
  elif missing:
    notes.append(f'No baseline run for {", ".join(missing)}: those rows '
                 f'show errors only.')
  if any(g.partial_runs for g in groups):
    notes.append('†: includes partial runs (see report.md); a cell averages '
                 'the runs that reached its size (n= when not all did).')
  shared = [r.name for g in groups for r in g.runs if r.shared]
  if shared:
    notes.append(
        f'Seconds and speed-ups leave out {text.count(len(shared), "run")} '
        f'that shared the machine with other work ({", ".join(shared)}): '
        'their errors count, their seconds are not a quiet machine\'s. A '
        'group with no other run shows no speed-up (—).')
  return notes


def table1_markdown(groups: Sequence[Group], sizes: Sequence[int],
                    pool: int) -> str:
  """The paper's Table 1 for these runs, plus mean selection seconds."""
  header = ['selection model', 'method', 'runs'] + [
      f'{s:,} ({text.percent(s, pool)})' for s in sizes]
  entries = table_cells(groups, sizes)
  table = [dict(zip(header, [g.label, g.method, _runs_label(g)]
                    + [format_cell(c, len(g.runs)) for c in cells]))
           for g, cells in entries]
  seconds = [dict(zip(header, [g.label, g.method, _runs_label(g)] + [
      '—' if c.seconds is None else f'{c.seconds:.1f}' for c in cells]))
             for g, cells in entries]
  return (
      f'# Table 1: active learning on {title(groups[0].runs)}\n\n'
      'Columns: labeled-set size (share of the pool of '
      f'{pool:,}). Cell: data-selection speed-up over the baseline of the '
      'same method · target top-1 error in % (mean ± sample std over runs). '
      '✓: mean error within 1 std of the baseline\'s mean error, or lower. '
      'Random selection trains no selector: no speed-up (—).\n\n'
      + results.markdown_table(table, header) + '\n'
      + text.notes(_table1_notes(groups))
      + '## Data-selection seconds (mean over runs; shared runs left out)\n\n'
      'Selector training + text encoding + scoring + ranking + their '
      'compiling (encoding and compiling 0 for runs written before they '
      'were recorded), summed over the rounds up to '
      'each size (round 0\'s random pick included). Speed-up = baseline '
      'seconds / row seconds.\n\n'
      + results.markdown_table(seconds, header))


_BASELINE_TIME_NOTE = (
    '\nA baseline run trains one model per round: the target trained at the '
    'end of a round is the next round\'s selector, so that training counts '
    'both as target training and as the next round\'s selector training '
    '(the latter as data-selection time, the paper\'s definition).\n')


def _run_rows(runs: Sequence[Run], groups: Sequence[Group]) -> list[dict]:
  group_of = {r.name: g for g in groups for r in g.runs}
  rows = []
  for r in runs:
    s = r.summary
    rounds = f'{s["rounds_completed"]}/{s["rounds_total"]}'
    rows.append({'run': r.name, 'directory': f'`{r.path}`',
                 'selection model': group_of[r.name].label,
                 'method': r.method, 'seed': r.seed, 'rounds': rounds,
                 'status': ('complete' if r.complete else
                            f'**PARTIAL** ({rounds} rounds)')
                           + ('; shared the machine' if r.shared else '')})
  return rows


def report_markdown(runs: Sequence[Run], groups: Sequence[Group],
                    has_agreement: bool) -> str:
  """report.md: the files written and the runs read."""
  partial = [r.name for r in runs if not r.complete]
  return (
      '# Active-learning report\n\n'
      f'{text.count(len(runs), "run")}: {title(runs)}, pool '
      f'{runs[0].summary["pool_size"]:,}'
      + (f'; **partial**: {", ".join(partial)}' if partial else
         '; all complete') + '.\n\n'
      '- [Table 1](table1.md): data-selection speed-up and target error per '
      'selection model and labeled-set size\n'
      '- [Learning curves](curves.png): target error against the labeled '
      'fraction of the pool (mean ± std over runs)\n'
      '- [Time breakdown](time_breakdown.png): selector training, scoring, '
      'ranking, compiling and target training seconds per run (a '
      'baseline\'s target reused as its next selector counted once, as the '
      'selector)\n'
      f'- [Proxy–target agreement](agreement.md)'
      + ('' if has_agreement else ' (no run recorded any)') + '\n\n'
      '## Runs\n\n'
      + results.markdown_table(_run_rows(runs, groups),
                               ('run', 'directory', 'selection model',
                                'method', 'seed', 'rounds', 'status'))
      + '\n![learning curves](curves.png)\n\n'
      '![time breakdown](time_breakdown.png)\n'
      + (_BASELINE_TIME_NOTE if any(g.kind == BASELINE for g in groups)
         else ''))
