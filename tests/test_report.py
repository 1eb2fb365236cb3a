"""The active-learning report: Table 1 numbers, figures, agreement, errors.

Run directories are written by experiment.claim_workdir and active.write_tables
themselves (the files a real run writes), from made-up round records with
round numbers, so every expected value below is exact arithmetic.
"""

import csv
import dataclasses
import os
import shutil
import subprocess
import sys

import numpy as np
import pytest
from scipy import stats

from configs import fashion_mnist_coreset
from configs import fashion_mnist_resnet20
from configs import fashion_mnist_svp
from svp_jax import active
from svp_jax import coreset
from svp_jax import experiment
from svp_jax import methods
from svp_jax import report
from svp_jax import results
from svp_jax import run_files
from svp_jax import selection
from svp_jax import train_job
from svp_jax.report import speedup
from svp_jax.report import stats as report_stats

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
POOL = 10_000
SCHEDULE = (1000, 1000, 2000)  # fashion_mnist_svp's: labeled 1000, 2000, 4000.
PNG_MAGIC = b'\x89PNG\r\n\x1a\n'

# Per round: (selector train s, scoring s, ranking s, target accuracy or None).
# Cumulative data-selection seconds are noted after each run.
BASELINE_0 = [(0, 0, 1, None), (90, 8, 1, 0.80), (180, 19, 1, 0.90)]  # 100,300
BASELINE_1 = [(0, 0, 1, None), (110, 8, 1, 0.82), (250, 29, 1, 0.88)]  # 120,400
PROXY_0 = [(0, 0, 1, None), (8, 1, 1, 0.79), (30, 3, 1, 0.885)]  # 11, 45
PROXY_1 = [(0, 0, 1, None), (8, 1, 1, 0.79), (40, 3, 1, 0.875)]  # 11, 55
PROXY_2_PARTIAL = [(0, 0, 1, None), (8, 1, 1, 0.77)]  # 11; round 2 not run.
RANDOM_0 = [(0, 0, 1, None), (0, 0, 1, 0.75), (0, 0, 1, 0.85)]
TARGET_TRAIN_SECONDS = 50.0


def _model_row(size, accuracy, train_time):
  return {'nexamples': size, 'train_accuracy': 0.9, 'dev_accuracy': '',
          'test_accuracy': accuracy, 'train_time': train_time,
          'dev_time': 0.0, 'test_time': 1.0}


def _record(round_index, size, before, spec):
  selector_train, scoring, ranking, target_accuracy = spec
  target = (None if target_accuracy is None else
            _model_row(size, target_accuracy, TARGET_TRAIN_SECONDS))
  return {
      'round': round_index, 'labeled': size,
      'selector_train_seconds': float(selector_train),
      'scoring_seconds': float(scoring), 'ranking_seconds': float(ranking),
      'selector': (_model_row(before, 0.7, float(selector_train))
                   if selector_train else None),
      'selection': {'nexamples': size, 'current_nexamples': before,
                    'new_nexamples': size - before,
                    'total_time': float(scoring + ranking),
                    'inference_time': float(scoring),
                    'ranking_time': float(ranking)},
      'target': target,
      'target_train_seconds': TARGET_TRAIN_SECONDS if target else 0.0,
  }


def _learner(section):
  return experiment.Learner(name=section.model.name, model=None, cfg=None,
                            batch_size=section.train.batch_size,
                            eval_batch_size=section.train.eval_batch_size,
                            lr_schedule=())


def make_run(path, rounds, arg=None, seed=0, **overrides):
  """Writes a run directory as active.run would after len(rounds) rounds."""
  config = fashion_mnist_svp.get_config(arg)
  config.seed = seed
  for dotted, value in overrides.items():
    section, key = dotted.rsplit('__', 1)
    node = config
    for part in section.split('__'):
      node = node[part]
    node[key] = value
  path = str(path)
  os.makedirs(path)
  experiment.claim_workdir(path, config)
  sizes = np.cumsum(SCHEDULE)
  history = tuple(
      _record(r, int(sizes[r]), int(sizes[r - 1]) if r else 0, spec)
      for r, spec in enumerate(rounds))
  job = experiment.Job(
      info=None, pool=None, test=None, mesh=None, workdir=path,
      learners={'selector': _learner(config.selector),
                'target': _learner(config.target)})
  exp = active.Experiment(
      job=job, method=methods.get(config.selection.method),
      schedule=SCHEDULE, target_sizes=frozenset())
  labeled = np.zeros(POOL, bool)
  labeled[:int(sizes[len(rounds) - 1])] = True
  active.write_tables(exp, active.RoundState(
      labeled, len(rounds), np.zeros(2, np.uint32), history))
  return path


@pytest.fixture
def runs(tmp_path):
  """Baseline x2, proxy x2 + a partial proxy run, one random run."""
  return {
      'baseline_0': make_run(tmp_path / 'baseline_0', BASELINE_0, 'baseline'),
      'baseline_1': make_run(tmp_path / 'baseline_1', BASELINE_1, 'baseline',
                             seed=1),
      'proxy_0': make_run(tmp_path / 'proxy_0', PROXY_0),
      'proxy_1': make_run(tmp_path / 'proxy_1', PROXY_1, seed=1),
      'proxy_2': make_run(tmp_path / 'proxy_2', PROXY_2_PARTIAL, seed=2),
      'random_0': make_run(tmp_path / 'random_0', RANDOM_0, 'random'),
  }


def _cells(run_dirs):
  loaded = report.load_runs(list(run_dirs))
  report.check_comparable(loaded)
  groups = report.group_runs(loaded)
  return {(g.label, g.method): (g, cells) for g, cells in
          report.table_cells(groups, report.budgets(loaded))}


def test_table1_speedups_errors_and_marks_are_exact(runs):
  table = _cells(runs.values())
  assert list(table) == [
      ('preact20 (15 ep), target selects (baseline)', 'least_confidence'),
      ('preact8 (15 ep)', 'least_confidence'), ('random', 'random')]
  (baseline, (b2k, b4k)), (proxy, (p2k, p4k)), (random, (r2k, r4k)) = (
      table.values())
  assert [g.kind for g in (baseline, proxy, random)] == [
      'baseline', 'proxy', 'random']
  assert [r.seed for r in proxy.runs] == [0, 1, 2]
  assert proxy.partial_runs == 1

  # Baseline: errors (20, 18) and (10, 12) %, seconds (100, 120), (300, 400).
  assert b2k.error_mean == pytest.approx(19.0)
  assert b2k.error_std == pytest.approx(np.sqrt(2))
  assert b4k.error_mean == pytest.approx(11.0)
  assert (b2k.seconds, b4k.seconds) == (110.0, 350.0)
  assert (b2k.speedup, b4k.speedup) == (1.0, 1.0)
  assert b2k.within is None

  # Proxy at 2,000: all three runs, errors (21, 21, 23), seconds 11 each.
  assert p2k.n == 3
  assert p2k.error_mean == pytest.approx(65 / 3)
  assert p2k.error_std == pytest.approx(np.std([21, 21, 23], ddof=1))
  assert p2k.speedup == pytest.approx(110 / 11)
  assert p2k.within is False  # 21.67 > 19 + 1.41.
  # At 4,000 the partial run is missing: errors (11.5, 12.5), seconds 45, 55.
  assert p4k.n == 2
  assert p4k.error_mean == pytest.approx(12.0)
  assert p4k.error_std == pytest.approx(np.sqrt(0.5))
  assert p4k.speedup == pytest.approx(350 / 50)
  assert p4k.within is True  # 12.0 <= 11 + 1.41.

  # Random: error only.
  assert (r2k.error_mean, r4k.error_mean) == (
      pytest.approx(25.0), pytest.approx(15.0))
  assert r2k.error_std is None and r2k.speedup is None and r2k.within is None


def test_table1_markdown_shows_the_cells(runs, tmp_path):
  out = tmp_path / 'out'
  report.write_report(list(runs.values()), str(out))
  text = (out / 'table1.md').read_text()
  assert '| 2,000 (20%) | 4,000 (40%) |' in text
  assert ('| preact20 (15 ep), target selects (baseline) | least_confidence '
          '| 2 | 1.0× · 19.00 ± 1.41 | 1.0× · 11.00 ± 1.41 |') in text
  assert ('| preact8 (15 ep) | least_confidence | 3 (1 partial) † '
          '| 10.0× · 21.67 ± 1.15 | 7.0× · 12.00 ± 0.71 (n=2) ✓ |') in text
  assert '| random | random | 1 | — · 25.00 | — · 15.00 |' in text
  # Mean data-selection seconds behind the speed-ups.
  assert ('| preact8 (15 ep) | least_confidence | 3 (1 partial) † | 11.0 '
          '| 50.0 |') in text
  assert 'No baseline' not in text


def test_shared_runs_keep_their_errors_but_not_their_seconds(runs, tmp_path):
  loaded = report.load_runs(list(runs.values()),
                            shared=['baseline_1', 'proxy_0'])
  assert [r.name for r in loaded if r.shared] == ['baseline_1', 'proxy_0']
  groups = report.group_runs(loaded)
  (_, (b2k, b4k)), (_, (p2k, p4k)), _ = report.table_cells(
      groups, report.budgets(loaded))
  # Errors: every run, as without the marks.
  assert (b2k.error_mean, p2k.n) == (pytest.approx(19.0), 3)
  # Seconds: baseline_0 alone (100, 300); proxy_1 and proxy_2 (11, 11) at
  # 2,000, proxy_1 alone (55) at 4,000.
  assert (b2k.seconds, b4k.seconds) == (100.0, 300.0)
  assert (p2k.seconds, p4k.seconds) == (11.0, 55.0)
  assert p2k.speedup == pytest.approx(100 / 11)
  assert p4k.speedup == pytest.approx(300 / 55)
  out = tmp_path / 'out'
  report.write_report(list(runs.values()), str(out),
                      shared_runs=['baseline_1', 'proxy_0'])
  table = (out / 'table1.md').read_text()
  assert 'leave out 2 runs that shared the machine' in table
  assert '(baseline_1, proxy_0)' in table
  index = (out / 'report.md').read_text()
  assert index.count('; shared the machine') == 2


def test_a_group_whose_runs_all_shared_gets_no_speedup(runs):
  loaded = report.load_runs([runs['baseline_0'], runs['proxy_0']],
                            shared=['baseline_0'])
  _, (_, (p2k, _)) = report.table_cells(report.group_runs(loaded),
                                        report.budgets(loaded))
  assert p2k.speedup is None and p2k.error_mean == pytest.approx(21.0)


def test_an_unknown_shared_run_is_named(runs):
  with pytest.raises(report.ReportError,
                     match=r'shared runs nowhere_0 are not among the runs'):
    report.load_runs(list(runs.values()), shared=['nowhere_0'])


def test_without_a_baseline_errors_are_kept_and_speedups_explained(
    runs, tmp_path):
  out = tmp_path / 'out'
  report.write_report([runs['proxy_0'], runs['random_0']], str(out))
  text = (out / 'table1.md').read_text()
  assert ('| preact8 (15 ep) | least_confidence | 1 | — · 21.00 '
          '| — · 11.50 |') in text
  assert 'speed-ups need one' in text
  assert 'A baseline run' not in (out / 'report.md').read_text()


def test_a_method_without_its_baseline_gets_no_speedup(runs, tmp_path):
  entropy = make_run(tmp_path / 'entropy_0', PROXY_0, 'entropy')
  table = _cells([runs['baseline_0'], runs['proxy_0'], entropy])
  _, cells = table['preact8 (15 ep)', 'entropy']
  assert all(c.speedup is None and c.within is None for c in cells)
  out = tmp_path / 'out'
  report.write_report([runs['baseline_0'], runs['proxy_0'], entropy],
                      str(out))
  assert 'No baseline run for entropy' in (out / 'table1.md').read_text()


def test_report_index_lists_runs_and_marks_partial(runs, tmp_path):
  out = tmp_path / 'out'
  written = report.write_report(list(runs.values()), str(out))
  assert sorted(os.path.basename(p) for p in written) == [
      'agreement.md', 'curves.png', 'report.md', 'table1.md',
      'time_breakdown.png']
  text = (out / 'report.md').read_text()
  for name in ('table1.md', 'curves.png', 'time_breakdown.png',
               'agreement.md'):
    assert f']({name})' in text
  for name, path in runs.items():
    assert f'| {name} | `{os.path.normpath(path)}` |' in text
  assert '| proxy_2 |' in text and '**PARTIAL** (2/3 rounds)' in text
  assert text.count('| complete |') == 5
  assert '**partial**: proxy_2' in text
  assert 'A baseline run trains one model per round' in text


def test_figures_are_png_files(runs, tmp_path):
  out = tmp_path / 'out'
  report.write_report(list(runs.values()), str(out))
  for name in ('curves.png', 'time_breakdown.png'):
    data = (out / name).read_bytes()
    assert data.startswith(PNG_MAGIC) and len(data) > 1000


def test_time_breakdown_sums_rounds(runs):
  run = report.load_run(runs['baseline_1'])
  # Written before compile and encoding seconds were recorded: they read
  # as 0.
  assert report.time_breakdown(run) == {
      'selector_train_seconds': 360.0, 'encoding_seconds': 0.0,
      'scoring_seconds': 37.0, 'ranking_seconds': 3.0, 'compile_seconds': 0.0,
      'target_train_seconds': 100.0}
  partial = report.load_run(runs['proxy_2'])
  assert report.time_breakdown(partial)['target_train_seconds'] == 50.0


def test_time_breakdown_counts_a_reused_target_once(tmp_path):
  # Round 2's selector is round 1's target (50 s, TARGET_TRAIN_SECONDS): one
  # training, counted as the selector's.
  rounds = [(0, 0, 1, None), (90, 8, 1, 0.80),
            (TARGET_TRAIN_SECONDS, 19, 1, 0.90)]
  baseline = report.load_run(make_run(tmp_path / 'b', rounds, 'baseline'))
  assert report.time_breakdown(baseline) == {
      'selector_train_seconds': 140.0, 'encoding_seconds': 0.0,
      'scoring_seconds': 27.0, 'ranking_seconds': 3.0, 'compile_seconds': 0.0,
      'target_train_seconds': TARGET_TRAIN_SECONDS}
  # A proxy whose selector happens to take as long is two trainings.
  proxy = report.load_run(make_run(tmp_path / 'p', rounds))
  assert report.time_breakdown(proxy)['target_train_seconds'] == (
      2 * TARGET_TRAIN_SECONDS)


def _with_compile_seconds(run_dir, seconds):
  path = os.path.join(run_dir, run_files.SUMMARY_JSON)
  summary = results.read_json(path)
  for row, value in zip(summary['rounds'], seconds):
    row['compile_seconds'] = value
  results.write_json(path, summary)


def test_compile_seconds_count_in_the_data_selection_runtime(tmp_path):
  run_dir = make_run(tmp_path / 'proxy', PROXY_0)
  before = speedup.selection_seconds_at(report.load_run(run_dir), 4000)
  _with_compile_seconds(run_dir, [0.5, 2.0, 0.25])
  run = report.load_run(run_dir)
  assert report.time_breakdown(run)['compile_seconds'] == 2.75
  assert speedup.selection_seconds_at(run, 4000) == before + 2.75
  _with_compile_seconds(run_dir, [0.5, 'slow', 0.0])
  with pytest.raises(report.ReportError,
                     match=r'rounds\[1\].compile_seconds is .slow., not a '
                           r'number'):
    report.load_run(run_dir)


# ----------------------------------------------------------------------------
# Agreement.


def test_average_ranks_and_spearman_with_ties():
  np.testing.assert_array_equal(report.average_ranks(np.array([3, 1, 3, 2])),
                                [3.5, 1, 3.5, 2])
  # Ranks (1, 2.5, 2.5, 4) and (1, 3, 2, 4): r = 4.5 / sqrt(4.5 * 5).
  assert report.spearman(np.array([1, 2, 2, 3]),
                         np.array([1, 3, 2, 4])) == pytest.approx(np.sqrt(0.9))
  assert np.isnan(report.pearson(np.ones(5), np.arange(5)))


def _brute_force_ranks(x):
  # Rank = points below + the middle of the tied block (1-based).
  return np.array([(x < v).sum() + ((x == v).sum() + 1) / 2 for v in x])


def _brute_force_top_k(scores, labeled, k):
  unlabeled = [i for i in range(len(scores)) if not labeled[i]]
  return set(sorted(unlabeled, key=lambda i: (-scores[i], i))[:k])


def test_agreement_matches_a_direct_computation(runs, tmp_path):
  rng = np.random.default_rng(0)
  n = 40
  saved = {}
  for round_index, k in ((1, 5), (2, 8)):
    # Few distinct values: many ties in scores and at the top-k boundary.
    proxy = rng.integers(0, 6, n).astype(np.float32) / 5
    target = (proxy + rng.integers(0, 3, n) / 5).astype(np.float32)
    labeled = np.zeros(n, bool)
    labeled[rng.choice(n, 10 * round_index, replace=False)] = True
    saved[round_index] = (proxy, target, labeled, k)
    folder = os.path.join(runs['proxy_0'], 'agreement')
    os.makedirs(folder, exist_ok=True)
    np.savez(os.path.join(folder, f'round_{round_index}.npz'), proxy=proxy,
             target=target, labeled=labeled, k=np.int64(k))
  out = tmp_path / 'out'
  report.write_report(list(runs.values()), str(out))
  with open(out / 'agreement.csv', newline='') as f:
    rows = list(csv.DictReader(f))
  assert [(r['run'], int(r['round'])) for r in rows] == [
      ('proxy_0', 1), ('proxy_0', 2)]
  for row in rows:
    proxy, target, labeled, k = saved[int(row['round'])]
    p, t = proxy[~labeled], target[~labeled]
    expected_spearman = np.corrcoef(_brute_force_ranks(p),
                                    _brute_force_ranks(t))[0, 1]
    assert float(row['spearman']) == pytest.approx(expected_spearman)
    assert float(row['spearman']) == pytest.approx(stats.spearmanr(p, t)[0])
    assert float(row['pearson']) == pytest.approx(np.corrcoef(p, t)[0, 1])
    overlap = len(_brute_force_top_k(proxy, labeled, k)
                  & _brute_force_top_k(target, labeled, k)) / k
    assert float(row['top_k_overlap']) == pytest.approx(overlap)
    assert (int(row['k']), int(row['unlabeled'])) == (k, int((~labeled).sum()))
  text = (out / 'agreement.md').read_text()
  assert '| proxy_0 | 1 | 10 | 30 | 5 |' in text
  assert 'agreement.md) (no run' not in (out / 'report.md').read_text()


@pytest.mark.parametrize('seed', range(4))
def test_numpy_top_k_is_select_top_k(seed):
  # The agreement's top-k (NumPy, no JAX) must pick as the selection does.
  rng = np.random.default_rng(seed)
  n = 300
  # Few distinct values (ties at the boundary), float64 values that tie only
  # in float32, -0.0 beside 0.0, and NaN (ranks last).
  scores = rng.integers(-3, 4, n) / 4.0
  scores[::7] += 1e-12
  scores[::11] = -0.0
  scores[::13] = np.nan
  labeled = rng.random(n) < 0.3
  for k in (1, 17, int((~labeled).sum())):
    np.testing.assert_array_equal(
        report_stats.top_k(scores, labeled, k),
        np.asarray(selection.select_top_k(scores, labeled, k)))


def test_report_imports_no_jax_and_runs(runs, tmp_path):
  """In a fresh process: import the report, run its CLI, still no JAX."""
  folder = os.path.join(runs['proxy_0'], run_files.AGREEMENT_DIR)
  os.makedirs(folder)
  rng = np.random.default_rng(0)
  np.savez(run_files.agreement_path(runs['proxy_0'], 1),
           proxy=rng.random(50), target=rng.random(50),
           labeled=np.arange(50) < 10, k=np.int64(5))
  out = tmp_path / 'out'
  script = (
      'import runpy, sys\n'
      'import svp_jax.report\n'
      f'sys.argv = ["report", *{list(runs.values())!r}, "--out={out}"]\n'
      'try:\n'
      '  runpy.run_module("svp_jax.report", run_name="__main__")\n'
      'except SystemExit as e:\n'
      '  assert not e.code, e.code\n'
      'print(sorted(m for m in ("jax", "jaxlib", "flax", "orbax")\n'
      '             if m in sys.modules))\n')
  proc = subprocess.run([sys.executable, '-c', script], cwd=REPO,
                        capture_output=True, text=True, timeout=300)
  assert proc.returncode == 0, proc.stderr[-2000:]
  assert proc.stdout.strip() == '[]'
  # Written by a process that never imported JAX (results.is_writer).
  for name in ('table1.md', 'agreement.csv', 'report.md', 'curves.png'):
    assert (out / name).exists(), name


def test_no_agreement_files_says_how_to_get_them(runs, tmp_path):
  out = tmp_path / 'out'
  report.write_report([runs['proxy_0']], str(out))
  assert 'compare_with_target=True' in (out / 'agreement.md').read_text()
  assert not (out / 'agreement.csv').exists()


def test_malformed_agreement_file_is_named(runs):
  folder = os.path.join(runs['proxy_0'], 'agreement')
  os.makedirs(folder)
  np.savez(os.path.join(folder, 'round_1.npz'), proxy=np.zeros(3),
           target=np.zeros(3), labeled=np.zeros(3, bool))
  with pytest.raises(report.ReportError, match=r"round_1.npz is malformed: "
                     r"it lacks the arrays \['k'\]"):
    report.agreement_rows(report.load_run(runs['proxy_0']))


# ----------------------------------------------------------------------------
# What may and may not be reported together.


def test_mixed_datasets_are_refused_naming_runs_and_keys(runs, tmp_path):
  other = make_run(tmp_path / 'cifar_run', PROXY_0, seed=3,
                   data__name='cifar10')
  with pytest.raises(report.ReportError) as error:
    report.write_report([runs['baseline_0'], runs['proxy_0'], other],
                        str(tmp_path / 'out'))
  assert ('data.name: "fashion_mnist" in baseline_0, proxy_0; "cifar10" in '
          'cifar_run') in str(error.value)
  assert not (tmp_path / 'out').exists()


def test_mixed_schedules_and_targets_are_refused(runs, tmp_path):
  schedule = make_run(tmp_path / 'longer', PROXY_0, seed=4,
                      selection__rounds=(1000.0, 3000.0))
  target = make_run(tmp_path / 'other_target', PROXY_0, seed=5,
                    target__train__weight_decay=1e-4)
  with pytest.raises(report.ReportError,
                     match=r'selection.rounds: .* in proxy_0; .* in longer'):
    report.check_comparable(report.load_runs([runs['proxy_0'], schedule]))
  with pytest.raises(report.ReportError,
                     match=r'target.train.weight_decay: .*other_target'):
    report.check_comparable(report.load_runs([runs['proxy_0'], target]))


def test_settings_that_do_not_change_training_may_differ(runs, tmp_path):
  moved = make_run(tmp_path / 'moved', PROXY_0, seed=6,
                   data__data_dir='/elsewhere',
                   target__train__eval_batch_size=64,
                   selector__train__eval_batch_size=32)
  table = _cells([runs['proxy_0'], moved])
  group, _ = table['preact8 (15 ep)', 'least_confidence']
  assert [r.name for r in group.runs] == [
      'proxy_0', 'moved']


def test_one_group_must_train_one_selector(runs, tmp_path):
  other = make_run(tmp_path / 'proxy_wd', PROXY_0, seed=7,
                   selector__train__weight_decay=1e-4)
  with pytest.raises(report.ReportError,
                     match=r'train the selector differently: '
                     r'selector.train.weight_decay'):
    report.group_runs(report.load_runs([runs['proxy_0'], other]))


def test_the_same_run_twice_is_refused(runs, tmp_path):
  copy = shutil.copytree(runs['proxy_0'], tmp_path / 'copy')
  with pytest.raises(report.ReportError, match=r'proxy_0 and copy are the '
                     r'same experiment \(seed 0\)'):
    report.group_runs(report.load_runs([runs['proxy_0'], copy]))


# ----------------------------------------------------------------------------
# Unreadable inputs.


def test_missing_directory(tmp_path):
  with pytest.raises(report.ReportError, match=r"'.*nowhere' does not exist"):
    report.load_run(str(tmp_path / 'nowhere'))


@pytest.mark.parametrize('name', report.RUN_FILES)
def test_missing_file_names_file_and_run(runs, name):
  os.remove(os.path.join(runs['proxy_1'], name))
  with pytest.raises(report.ReportError,
                     match=rf"run '.*proxy_1' has no {name}"):
    report.load_runs(list(runs.values()))


@pytest.mark.parametrize('content,match', [
    ('nexamples,test_accuracy\n2000,0.8\n',
     r"target.csv is malformed: header .* lacks the columns "
     r"\['train_accuracy'"),
    (','.join(run_files.MODEL_COLUMNS) + '\n2000,0.9,,high,1,0,1,0\n',
     r"target.csv line 2 is malformed: test_accuracy='high' is not a "),
    (','.join(run_files.MODEL_COLUMNS) + '\nnan,0.9,,0.8,1,0,1,0\n',
     r"target.csv line 2 is malformed: nexamples='nan' is not a \(finite\)"),
    (','.join(run_files.MODEL_COLUMNS) + '\n2000,0.9,,0.8,1,0\n',
     r'target.csv line 2 is malformed: expected 8 fields'),
    (','.join(run_files.MODEL_COLUMNS) + '\n2000,90,,78.6,1,0,1,0\n',
     r'test_accuracy=78.6 is not a fraction in \[0, 1\]'),
])
def test_malformed_csv_is_named(runs, content, match):
  with open(os.path.join(runs['proxy_0'], 'target.csv'), 'w') as f:
    f.write(content)
  with pytest.raises(report.ReportError, match=match):
    report.load_run(runs['proxy_0'])


def test_malformed_summary_is_named(runs):
  path = os.path.join(runs['proxy_0'], 'summary.json')
  summary = results.read_json(path)
  del summary['rounds'][1]['scoring_seconds']
  results.write_json(path, summary)
  with pytest.raises(report.ReportError, match=r'summary.json is malformed: '
                     r'rounds\[1\].scoring_seconds is None'):
    report.load_run(runs['proxy_0'])


def test_a_coreset_run_is_not_an_active_run(runs):
  path = os.path.join(runs['proxy_0'], 'config.json')
  config = results.read_json(path)
  config['mode'] = 'coreset'
  results.write_json(path, config)
  with pytest.raises(report.ReportError, match=r"mode='coreset'"):
    report.load_run(runs['proxy_0'])


def test_run_files_have_the_columns_active_writes(runs):
  # Guards the fixture: the report reads what active.write_tables writes.
  run = report.load_run(runs['proxy_0'])
  assert run.target_accuracy == {2000: 0.79, 4000: 0.885}
  assert dataclasses.asdict(run)['summary']['rounds_total'] == 3


def test_command_line(runs, tmp_path):
  out = tmp_path / 'out'
  ok = subprocess.run(
      [sys.executable, '-m', 'svp_jax.report', *runs.values(), f'--out={out}'],
      cwd=REPO, capture_output=True, text=True, timeout=300)
  assert ok.returncode == 0, ok.stderr[-2000:]
  assert (out / 'report.md').exists() and (out / 'table1.md').exists()
  bad = subprocess.run(
      [sys.executable, '-m', 'svp_jax.report', str(tmp_path / 'nowhere'),
       f'--out={out}'], cwd=REPO, capture_output=True, text=True, timeout=300)
  assert bad.returncode == 1
  assert 'error: run directory' in bad.stderr and 'Traceback' not in bad.stderr
  shared = subprocess.run(
      [sys.executable, '-m', 'svp_jax.report', *runs.values(), f'--out={out}',
       '--shared_runs=proxy_1,elsewhere'], cwd=REPO, capture_output=True,
      text=True, timeout=300)
  assert shared.returncode == 1, shared.stderr[-2000:]
  assert 'error: shared runs elsewhere are not among' in shared.stderr
  assert 'Traceback' not in shared.stderr


# ----------------------------------------------------------------------------
# Core-set runs.

CORESET_POOL, CORESET_SUBSET = 60_000, 6_000  # fashion_mnist_coreset's.
PROXY_SECONDS = 100.0
# Per method: (scoring s, ranking s, target accuracy or None, target train s).
CORESET_0 = {'random': (0, 1, 0.80, 60), 'least_confidence': (10, 1, 0.82, 60),
             'entropy': (10, 1, 0.81, 60), 'margin': (10, 1, 0.83, 60),
             'forgetting_events': (1, 1, 0.84, 60),
             'kcenters': (12, 20, 0.79, 60)}
CORESET_1 = {'random': (0, 1, 0.82, 62), 'least_confidence': (14, 1, 0.84, 64),
             'entropy': (10, 1, 0.81, 60), 'margin': (10, 1, 0.83, 60),
             'forgetting_events': (1, 1, 0.86, 60),
             'kcenters': (12, 28, None, None)}  # Not trained yet.


def make_coreset_run(path, methods_spec, arg='all', seed=0, **overrides):
  """Writes a core-set run directory as coreset.run would, from made-up rows."""
  config = fashion_mnist_coreset.get_config(arg)
  config.seed = seed
  _override(config, overrides)
  path = str(path)
  os.makedirs(path)
  experiment.claim_workdir(path, config)
  proxy = {'train_time': PROXY_SECONDS, 'test_accuracy': 0.7}
  rows = []
  for method in config.coreset.methods:
    scoring, ranking, accuracy, seconds = methods_spec[method]
    record = {'proxy': None if method == 'random' else proxy,
              'inference_time': float(scoring),
              'ranking_time': float(ranking)}
    target = (None if accuracy is None else
              {'test_accuracy': accuracy, 'train_time': float(seconds)})
    rows.append(coreset.summary_row(
        method, ('preact8', 'preact20'), CORESET_POOL,
        round(config.coreset.subset_size * CORESET_POOL), record, target))
  coreset.write_summary(path, rows)
  return path


def make_train_run(path, accuracy, epoch_seconds, seed=0, **overrides):
  """Writes the files of a finished train_job.run run."""
  config = fashion_mnist_resnet20.get_config()
  config.seed = seed
  _override(config, overrides)
  path = str(path)
  results.write_json(os.path.join(path, 'config.json'), config.to_dict())
  for epoch, seconds in enumerate(epoch_seconds, start=1):
    results.append_jsonl(os.path.join(path, 'metrics.jsonl'),
                         {'epoch': epoch, 'seconds': seconds,
                          'test_accuracy': accuracy})
  results.write_json(os.path.join(path, 'summary.json'), {
      'final_test_accuracy': accuracy, 'train_examples': CORESET_POOL,
      'best_test_accuracy': accuracy})
  return path


def _override(config, overrides):
  for dotted, value in overrides.items():
    *sections, key = dotted.split('__')
    node = config
    for part in sections:
      node = node[part]
    with node.ignore_type():
      node[key] = value


@pytest.fixture
def coreset_runs(tmp_path):
  """Two `all` runs (one partial), a random-only run, two full-data runs."""
  return {
      'all_seed0': make_coreset_run(tmp_path / 'all_seed0', CORESET_0),
      'all_seed1': make_coreset_run(tmp_path / 'all_seed1', CORESET_1,
                                    seed=1),
      'random_seed2': make_coreset_run(tmp_path / 'random_seed2',
                                       {'random': (0, 3, 0.84, 58)}, 'random',
                                       seed=2),
      'full_seed0': make_train_run(tmp_path / 'full_seed0', 0.90,
                                   (100, 110, 120)),
      'full_seed1': make_train_run(tmp_path / 'full_seed1', 0.92,
                                   (100, 100, 100), seed=1),
  }


def _coreset_rows(run_dirs):
  runs, full = report.load_coreset_report_runs(list(run_dirs))
  report.check_coreset_comparable(runs, full)
  return {r['method']: r for r in report.coreset_rows(runs, full)}


def test_coreset_rows_are_exact(coreset_runs):
  rows = _coreset_rows(coreset_runs.values())
  assert list(rows) == ['random', 'least_confidence', 'entropy', 'margin',
                        'forgetting_events', 'kcenters', 'full data']
  random = rows['random']
  assert (random['runs'], random['seeds'], random['partial_runs']) == (
      3, '0 1 2', 0)
  assert random['subset_size'] == CORESET_SUBSET
  assert random['target_accuracy_mean'] == pytest.approx(0.82)
  assert random['target_accuracy_std'] == pytest.approx(0.02)
  assert random['target_error_percent'] == pytest.approx(18.0)
  assert random['proxy_train_seconds'] == 0.0  # Random uses no proxy.
  assert random['scoring_ranking_seconds'] == pytest.approx(5 / 3)
  assert random['target_train_seconds'] == pytest.approx(60.0)
  lc = rows['least_confidence']
  assert lc['target_accuracy_std'] == pytest.approx(np.std([.82, .84], ddof=1))
  assert lc['proxy_train_seconds'] == PROXY_SECONDS
  assert lc['scoring_ranking_seconds'] == pytest.approx(13.0)
  assert lc['target_train_seconds'] == pytest.approx(62.0)
  # kcenters: seed 1 has no target yet; it is partial, not dropped.
  kcenters = rows['kcenters']
  assert (kcenters['runs'], kcenters['partial_runs']) == (2, 1)
  assert kcenters['target_accuracy_mean'] == pytest.approx(0.79)
  assert kcenters['target_accuracy_std'] is None
  assert kcenters['scoring_ranking_seconds'] == pytest.approx(36.0)
  assert kcenters['target_train_seconds'] == pytest.approx(60.0)
  full = rows['full data']
  assert (full['runs'], full['seeds'], full['subset_size']) == (
      2, '0 1', CORESET_POOL)
  assert full['target_accuracy_mean'] == pytest.approx(0.91)
  assert full['target_train_seconds'] == pytest.approx(315.0)
  assert full['proxy_train_seconds'] is None


def test_coreset_markdown_csv_and_index(coreset_runs, tmp_path):
  out = tmp_path / 'out'
  written = report.write_report(list(coreset_runs.values()), str(out))
  assert sorted(os.path.basename(p) for p in written) == [
      'coreset.csv', 'coreset.md', 'report.md']
  text = (out / 'coreset.md').read_text()
  assert ('| random | 3 (0, 1, 2) | 6,000 (10%) | 82.00 ± 2.00 | 18.00 '
          '| 0.0 | 0.0 | 1.7 | 0.0 | 60.0 |') in text
  assert ('| kcenters | 2 (0, 1; 1 partial) † | 6,000 (10%) | 79.00 (n=1) '
          '| 21.00 | 100.0 | 0.0 | 36.0 | 0.0 | 60.0 |') in text
  assert ('| full data | 2 (0, 1) | 60,000 (100%) | 91.00 ± 1.41 | 9.00 '
          '| — | — | — | — | 315.0 |') in text
  assert '†: includes partial runs' in text
  with open(out / 'coreset.csv', newline='') as f:
    rows = list(csv.DictReader(f))
  assert tuple(rows[0]) == report.CORESET_CSV_COLUMNS
  assert [r['method'] for r in rows][-1] == 'full data'
  assert rows[-1]['proxy_train_seconds'] == ''
  index = (out / 'report.md').read_text()
  assert '](coreset.md)' in index and '](coreset.csv)' in index
  assert '**PARTIAL** (no target yet: kcenters)' in index
  assert '**partial**: all_seed1' in index
  assert '| full_seed0 | `' in index and '| full data | — | 0 | complete |' in (
      index)
  # No active-learning files.
  assert not (out / 'table1.md').exists()


def test_a_single_seed_shows_the_mean_only(coreset_runs, tmp_path):
  out = tmp_path / 'out'
  report.write_report([coreset_runs['all_seed0']], str(out))
  text = (out / 'coreset.md').read_text()
  assert ('| margin | 1 (0) | 6,000 (10%) | 83.00 | 17.00 | 100.0 | 0.0 '
          '| 11.0 | 0.0 '
          in text)
  assert 'No full-data run among these' in text


@pytest.mark.parametrize('overrides,match', [
    ({'data__name': 'cifar10'},
     r'core-set runs cannot be reported together.*data.name: "fashion_mnist" '
     r'in all_seed0; "cifar10" in other'),
    ({'coreset__subset_size': 0.2},
     r'coreset.subset_size: 0.1 in all_seed0; 0.2 in other'),
    ({'target__model__name': 'preact56'},
     r'target.model.name: "preact20" in all_seed0; "preact56" in other'),
])
def test_mixed_coreset_runs_are_refused(coreset_runs, tmp_path, overrides,
                                        match):
  other = make_coreset_run(tmp_path / 'other', CORESET_0, seed=5, **overrides)
  with pytest.raises(report.ReportError, match=match):
    report.write_report([coreset_runs['all_seed0'], other],
                        str(tmp_path / 'out'))
  assert not (tmp_path / 'out').exists()


def test_full_data_run_must_train_the_coreset_target(coreset_runs, tmp_path):
  other = make_train_run(tmp_path / 'full_wd', 0.9, (1,), seed=3,
                         train__weight_decay=1e-4)
  with pytest.raises(report.ReportError,
                     match=r'full-data run must train the core-set target.*'
                     r'train.weight_decay: 0.0005 in all_seed0; 0.0001 in '
                     r'full_wd'):
    report.write_report([coreset_runs['all_seed0'], other],
                        str(tmp_path / 'out'))
  # Where data is read from and how often it is tested may differ.
  moved = make_train_run(tmp_path / 'moved', 0.9, (1,), seed=4,
                         data__data_dir='/elsewhere', train__eval_every=2)
  assert _coreset_rows([coreset_runs['all_seed0'], moved])[
      'full data']['runs'] == 1


def test_the_same_coreset_experiment_twice_is_refused(coreset_runs, tmp_path):
  # A random-only run with seed 0 repeats all_seed0's random subset.
  again = make_coreset_run(tmp_path / 'random_seed0',
                           {'random': (0, 1, 0.8, 60)}, 'random')
  with pytest.raises(report.ReportError, match=r'runs all_seed0 and '
                     r'random_seed0 are the same experiment \(random, seed 0'):
    report.write_report([coreset_runs['all_seed0'], again],
                        str(tmp_path / 'out'))


def test_coreset_and_active_runs_are_not_mixed(coreset_runs, runs, tmp_path):
  with pytest.raises(report.ReportError, match=r"proxy_0 has mode='active': "
                     r'a core-set report reads core-set runs and full-data'):
    report.write_report([coreset_runs['all_seed0'], runs['proxy_0']],
                        str(tmp_path / 'out'))


def test_malformed_coreset_summary_is_named(coreset_runs):
  path = os.path.join(coreset_runs['all_seed0'], 'summary.json')
  summary = results.read_json(path)
  summary['methods'][2]['scoring_seconds'] = 'slow'
  results.write_json(path, summary)
  with pytest.raises(report.ReportError, match=r'summary.json is malformed: '
                     r"methods\[2\].scoring_seconds is 'slow'"):
    report.load_coreset_run(coreset_runs['all_seed0'], 'all_seed0')
  os.remove(path)
  with pytest.raises(report.ReportError, match=r'has no summary.json'):
    report.load_coreset_run(coreset_runs['all_seed0'], 'all_seed0')


@pytest.mark.slow
def test_coreset_report_on_real_runs(fashion_mnist_dir, tmp_path):
  """A tiny core-set run and a tiny full-data run of its target, reported."""
  config = fashion_mnist_coreset.get_config('quick')
  config.coreset.methods = ('random', 'least_confidence')
  config.data.data_dir = fashion_mnist_dir
  config.data.max_train_examples = 400
  config.data.max_test_examples = 200
  config.coreset.subset_size = 120.0
  coreset.run(config, str(tmp_path / 'coreset'))
  full = fashion_mnist_resnet20.get_config('quick')
  full.data = config.data
  full.model = config.target.model
  full.train.lr_schedule = config.target.train.lr_schedule
  train_job.run(full, str(tmp_path / 'full'))
  out = tmp_path / 'out'
  report.write_report([str(tmp_path / 'coreset'), str(tmp_path / 'full')],
                      str(out))
  with open(out / 'coreset.csv', newline='') as f:
    rows = {r['method']: r for r in csv.DictReader(f)}
  assert list(rows) == ['random', 'least_confidence', 'full data']
  assert [rows[m]['subset_size'] for m in rows] == ['120', '120', '400']
  summary = results.read_json(tmp_path / 'coreset' / 'summary.json')
  for row in summary['methods']:
    assert float(rows[row['method']]['target_accuracy_mean']) == (
        row['target_test_accuracy'])
  assert float(rows['full data']['target_accuracy_mean']) == results.read_json(
      tmp_path / 'full' / 'summary.json')['final_test_accuracy']
  assert float(rows['full data']['target_train_seconds']) > 0
  assert 'all complete' in (out / 'report.md').read_text()
