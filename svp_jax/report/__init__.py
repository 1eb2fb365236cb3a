r"""Reports over runs: active learning (Table 1, curves, agreement), core-set.

  python -m svp_jax.report RUN_DIR [RUN_DIR ...] --out=DIR \
      [--shared_runs=NAME,...]

Imports neither JAX, Flax nor orbax: runs are read through the schema in
svp_jax.run_files, the selection methods through svp_jax.methods' registry.

Active-learning runs (`svp_jax.active`: config.json, summary.json,
proxy.csv, selection.csv, target.csv and, with
`selection.compare_with_target`, agreement/round_<r>.npz) give, in DIR:

  table1.md           the paper's Table 1: per selection model and labeled-set
                      size, the data-selection speed-up over the baseline and
                      the target's top-1 error (mean +- std over runs)
  curves.png          target error against the labeled fraction of the pool
  time_breakdown.png  selector training / scoring / ranking / compiling /
                      target training seconds of every run (a baseline's
                      target reused as its next selector counted once)
  agreement.md/.csv   proxy-target agreement per round (Spearman, Pearson,
                      top-k overlap over the unlabeled points)
  report.md           an index of the above and the runs read, each marked
                      complete or partial (and shared: --shared_runs names
                      runs that shared the machine with other work; their
                      seconds are left out of the speed-ups)

Core-set runs (`svp_jax.coreset`: config.json, summary.json), optionally with
full-data train runs of their target (`svp_jax.train_job`: config.json,
summary.json, metrics.jsonl), get a report of their own:

  coreset.md/.csv     one row per selection method, and a 'full data' row
                      from the train runs: runs (seeds), subset size, target
                      test accuracy mean +- std (ddof=1) and error, mean
                      proxy training, scoring + ranking and target training
                      seconds
  report.md           an index and the runs read; a run whose target is not
                      trained yet for some method is marked partial

The modules, by concern:

  runs       reading run directories (ReportError), comparing their configs
  speedup    groups, baselines and THE data-selection speed-up (also used by
             benchmarks/selection_speedup.py)
  stats      mean +- std, Spearman / Pearson, the NumPy top-k
  active     which active runs go together, Table 1, report.md
  agreement  proxy-target agreement files and table
  figures    curves.png, time_breakdown.png (matplotlib, Agg)
  coreset    the core-set table and index
  cli        write_report and the command line (__main__)
"""

from svp_jax.report import active
from svp_jax.report import agreement
from svp_jax.report import cli
from svp_jax.report import coreset
from svp_jax.report import runs
from svp_jax.report import stats

# The names callers (tests, scripts) use, from the modules that define them.
ReportError = runs.ReportError
RUN_FILES = runs.RUN_FILES
load_run = runs.load_run
load_runs = runs.load_runs
load_coreset_run = runs.load_coreset_run
load_coreset_report_runs = runs.load_coreset_report_runs
check_comparable = active.check_comparable
group_runs = active.group_runs
budgets = active.budgets
table_cells = active.table_cells
time_breakdown = active.time_breakdown
agreement_rows = agreement.agreement_rows
average_ranks = stats.average_ranks
pearson = stats.pearson
spearman = stats.spearman
check_coreset_comparable = coreset.check_coreset_comparable
coreset_rows = coreset.coreset_rows
CORESET_CSV_COLUMNS = coreset.CORESET_CSV_COLUMNS
write_report = cli.write_report
