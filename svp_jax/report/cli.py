"""`python -m svp_jax.report`: read the runs, write every report file."""

from collections.abc import Sequence
import functools
import os
import sys

from absl import app
from absl import flags
from absl import logging

from svp_jax import results
from svp_jax.report import active
from svp_jax.report import agreement
from svp_jax.report import coreset
from svp_jax.report import figures
from svp_jax.report import runs as runs_lib
from svp_jax.report import text


def write_active_report(run_dirs: Sequence[str], out_dir: str,
                        shared_runs: Sequence[str] = ()) -> list[str]:
  """Table 1, figures, agreement and the index for active-learning runs;
  the runs named in `shared_runs` shared the machine (their seconds are
  left out of the speed-ups)."""
  runs = runs_lib.load_runs(run_dirs, shared_runs)
  active.check_comparable(runs)
  groups = active.group_runs(runs)
  pool = runs[0].summary['pool_size']
  agreement_rows = [row for r in runs for row in agreement.agreement_rows(r)]
  os.makedirs(out_dir, exist_ok=True)
  path = functools.partial(os.path.join, out_dir)
  text.write_text(path('table1.md'), active.table1_markdown(
      groups, active.budgets(runs), pool))
  figures.plot_curves(groups, pool, path('curves.png'))
  figures.plot_time_breakdown(runs, path('time_breakdown.png'))
  text.write_text(path('agreement.md'),
                  agreement.agreement_markdown(agreement_rows))
  written = ['table1.md', 'curves.png', 'time_breakdown.png', 'agreement.md']
  if agreement_rows:
    results.write_csv(path('agreement.csv'), agreement_rows,
                      agreement.AGREEMENT_COLUMNS)
    written.append('agreement.csv')
  # Last: the index of the files above.
  text.write_text(path('report.md'), active.report_markdown(
      runs, groups, bool(agreement_rows)))
  written.append('report.md')
  logging.info('Report on %d runs written to %s: %s', len(runs), out_dir,
               ', '.join(written))
  return [path(name) for name in written]


def write_report(run_dirs: Sequence[str], out_dir: str,
                 shared_runs: Sequence[str] = ()) -> list[str]:
  """Reads the runs and writes every report file; returns their paths.

  Core-set runs (with any full-data train runs) get the core-set report;
  otherwise the runs must be active-learning runs.
  """
  if any(runs_lib.read_config(d).get('mode') == 'coreset' for d in run_dirs):
    if shared_runs:
      raise runs_lib.ReportError(
          '--shared_runs applies to active-learning runs only, not to a '
          'core-set report')
    return coreset.write_coreset_report(run_dirs, out_dir)
  return write_active_report(run_dirs, out_dir, shared_runs)


def define_flags():
  flags.DEFINE_string('out', None, 'Directory the report files are written to.')
  flags.mark_flag_as_required('out')
  flags.DEFINE_list(
      'shared_runs', [], 'Names of runs (directory names) that shared the '
      'machine with other work: their errors count, their seconds are left '
      'out of the speed-ups (scripts/study_load.py shared finds them).')


def main(argv: Sequence[str]):
  if len(argv) < 2:
    raise app.UsageError('give one or more active-learning run directories, '
                         'or core-set run directories (and full-data train '
                         'run directories to compare with)')
  try:
    write_report(argv[1:], flags.FLAGS.out, flags.FLAGS.shared_runs)
  except runs_lib.ReportError as e:
    # The user's inputs to fix: one clear message, no traceback.
    sys.exit(f'error: {e}')
