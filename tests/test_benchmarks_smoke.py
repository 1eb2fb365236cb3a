"""benchmarks/run_all.py end to end in --quick mode (tiny settings, ~30 s).

Runs in a subprocess, as scripts/bench.sh does, and checks that BENCHMARKS.md
and the JSON are written with every table and key. No timing is asserted: the
numbers of a quick run mean nothing. PyTorch parts run only where torch is
installed (.venv-bench); elsewhere their cells are empty.
"""

import json
import os
import subprocess
import sys

import pytest

from configs import fashion_mnist_svp
from svp_jax import sharding

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# Per run: config variant, data-selection seconds per round (labeled 1,000,
# 2,000 and 4,000). Cumulative at 2,000 / 4,000: proxy 40/100, 20/50, 30/75
# (means 30, 75); baseline 160/400, 80/200 (means 120, 300): 4x at both.
RUNS = {
    'proxy_seed0': (None, (0, 40, 60)), 'proxy_seed1': (None, (0, 20, 30)),
    'proxy_seed2': (None, (0, 30, 45)),
    'baseline_seed0': ('baseline', (0, 160, 240)),
    'baseline_seed1': ('baseline', (0, 80, 120)),
    'baseline_seed2': ('baseline', (0,)),  # Still running.
    'random_seed0': ('random', (0, 0, 0)),
}


def write_run(root, name, arg, seconds):
  """config.json and summary.json as an active run writes them."""
  config = fashion_mnist_svp.get_config(arg)
  config.seed = int(name[-1])
  os.makedirs(root / name)
  (root / name / 'config.json').write_text(
      json.dumps(config.to_dict()))
  rounds = [{'round': r, 'labeled': 1000 * 2 ** r,
             'selector_train_seconds': 0.8 * s, 'scoring_seconds': 0.2 * s,
             'ranking_seconds': 0.0, 'target_train_seconds': 5.0}
            for r, s in enumerate(seconds)]
  (root / name / 'summary.json').write_text(json.dumps({
      'complete': len(rounds) == 3, 'rounds_completed': len(rounds),
      'rounds_total': 3, 'pool_size': 60_000, 'rounds': rounds,
      'selector': config.selector.model.name,
      'target': config.target.model.name}))


@pytest.fixture(scope='module')
def quick_run(tmp_path_factory):
  tmp = tmp_path_factory.mktemp('bench')
  runs = tmp / 'study'
  for name, (arg, seconds) in RUNS.items():
    write_run(runs, name, arg, seconds)
  os.makedirs(runs / 'no_summary_seed0')
  env = dict(os.environ, XLA_FLAGS=sharding.simulated_cpu_devices_flags(1))
  md, out = tmp / 'BENCHMARKS.md', tmp / 'all.json'
  proc = subprocess.run(
      [sys.executable, '-m', 'benchmarks.run_all', '--quick',
       f'--out_md={md}', f'--out_json={out}', f'--run_dirs={runs}/*_seed*'],
      cwd=REPO, env=env, capture_output=True, text=True, check=False)
  assert proc.returncode == 0, proc.stderr[-3000:]
  with open(out) as f:
    results = json.load(f)
  with open(md) as f:
    text = f.read()
  return results, text, proc.stdout


@pytest.mark.slow
def test_markdown_has_every_section_and_the_command(quick_run):
  _, text, stdout = quick_run
  for heading in ('# Benchmarks', '## Machine', '## Hardware ceilings',
                  '## Training and eval throughput: JAX vs PyTorch',
                  '### Achieved arithmetic', '## Greedy k-centers',
                  '## Pool scoring', '## End-to-end data selection',
                  '## Where data-selection time goes'):
    assert f'\n{heading}\n' in f'\n{text}', heading
  assert 'bash scripts/bench.sh --quick' in text
  assert 'Quick mode' in text
  assert '| model | params | JAX train | PyTorch train |' in text
  assert '| preact8 | 77,850 |' in text
  assert '| n | d | impl | picks timed |' in text
  assert text in stdout  # The report is also printed.


@pytest.mark.slow
def test_json_has_machine_hardware_and_throughput(quick_run):
  results, _, _ = quick_run
  machine = results['machine']
  assert machine['cores'] == os.cpu_count()
  assert machine['cpu_model'] and machine['jax']
  assert results['settings']['quick'] is True
  hardware = results['hardware']
  assert hardware['matmul']['jax_gflops'] > 0
  assert hardware['bandwidth']['read_gbs'] > 0
  (row,) = results['throughput']
  assert row['model'] == 'preact8' and row['parameters'] == 77_850
  assert row['jax_train_images_per_second'] > 0
  assert row['jax_eval_images_per_second'] > 0
  assert row['train_gflop_per_image'] == pytest.approx(
      3 * row['forward_gflop_per_image'])
  assert len(row['jax_train_seconds']) == results['settings']['repeats']
  if machine['torch'] is None:
    assert row['torch_train_images_per_second'] is None
    assert row['train_ratio_jax_over_torch'] is None
  else:
    assert row['torch_parameters'] == row['parameters']
    assert row['train_ratio_jax_over_torch'] > 0


@pytest.mark.slow
def test_json_kcenters_cases_agree_and_have_floors(quick_run):
  results, _, _ = quick_run
  rows = results['kcenters']
  assert sorted((r['impl'], r['devices']) for r in rows) == [
      ('jax', 1), ('jax', 8), ('numpy', 1), ('reference', 1)]
  for r in rows:
    assert r['distinct'] and r['none_labeled'] and r['radii_non_increasing']
    assert r['floor_ms'] > 0 and r['per_pick_ms'] is not None
    assert set(r['projected_s']) == {'0.01', '0.1'}
    assert r['working_gib'] is not None and r['peak_rss_gib'] > 0
  # Same seeded pool, same greedy rule: every implementation picks alike.
  assert len({tuple(r['first_picks']) for r in rows}) == 1


@pytest.mark.slow
def test_json_scoring_returns_one_float_per_image(quick_run):
  results, _, _ = quick_run
  rows = results['scoring']
  assert [r['method'] for r in rows] == ['least_confidence', 'entropy',
                                         'margin']
  for r in rows:
    assert r['images_per_second'] > 0
    assert r['scores_bytes'] == 4 * r['n']


@pytest.mark.slow
def test_selection_speedups_as_the_report(quick_run):
  selection = quick_run[0]['selection']
  assert len(selection['runs']) == 7  # The directory without files: none.
  rows = {(r['group'], r['size']): r for r in selection['speedups']}
  # Size 1,000 (round 0) took no time; random trains no selector.
  assert set(rows) == {('preact8 (15 ep)', 2000), ('preact8 (15 ep)', 4000)}
  for row in rows.values():
    assert row['speedup'] == pytest.approx(4.0)
    assert row['time_ratio'] == pytest.approx(0.25)
    assert (row['runs'], row['baseline_runs']) == (3, 2)
  assert selection['summary']['preact8 (15 ep)']['size'] == 4000


@pytest.mark.slow
def test_report_only_rewrites_markdown_from_json(quick_run, tmp_path):
  results = json.loads(json.dumps(quick_run[0]))  # A copy to edit.
  # A pick cheaper than the init's run-to-run spread gives a negative
  # estimate: reported as noise, never as a number. A high load at the end
  # is the benchmark's own; only a high load at the start is a warning.
  jax_row = next(r for r in results['kcenters'] if r['impl'] == 'jax')
  jax_row['per_pick_ms'] = -2.0
  results['load_average_end'] = [99.0, 99.0, 99.0]
  results['machine']['load_average'] = [0.0, 0.0, 0.0]
  out, md = tmp_path / 'all.json', tmp_path / 'BENCHMARKS.md'
  out.write_text(json.dumps(results))
  proc = subprocess.run(
      [sys.executable, '-m', 'benchmarks.run_all', '--report_only',
       f'--out_md={md}', f'--out_json={out}'],
      cwd=REPO, capture_output=True, text=True, check=False)
  assert proc.returncode == 0, proc.stderr[-3000:]
  text = md.read_text()
  assert '| < noise |' in text and '| -2 |' not in text
  assert 'Warning' not in text
  assert json.loads(out.read_text()) == results  # The JSON is left alone.

  results['machine']['load_average'] = [9.0, 9.0, 9.0]
  out.write_text(json.dumps(results))
  subprocess.run(
      [sys.executable, '-m', 'benchmarks.run_all', '--report_only',
       f'--out_md={md}', f'--out_json={out}'],
      cwd=REPO, capture_output=True, text=True, check=True)
  assert '**Warning: the machine was busy (1-minute load average 9.0 at ' \
      'start' in md.read_text()


@pytest.mark.slow
def test_keep_other_parts_carries_unrun_parts_over(quick_run, tmp_path):
  """Re-running only the hardware part keeps the other parts' results."""
  previous = quick_run[0]
  out, md = tmp_path / 'all.json', tmp_path / 'BENCHMARKS.md'
  out.write_text(json.dumps(previous))
  env = dict(os.environ, XLA_FLAGS=sharding.simulated_cpu_devices_flags(1))
  proc = subprocess.run(
      [sys.executable, '-m', 'benchmarks.run_all', '--quick',
       '--parts=hardware', '--keep_other_parts', f'--out_md={md}',
       f'--out_json={out}'],
      cwd=REPO, env=env, capture_output=True, text=True, check=False)
  assert proc.returncode == 0, proc.stderr[-3000:]
  results = json.loads(out.read_text())
  kept = ['throughput', 'kcenters', 'scoring', 'selection', 'phases']
  for part in kept:
    assert results[part] == previous[part]
  assert [c['parts'] for c in results['carried_over']] == [kept]
  assert results['hardware'] != previous['hardware']  # Run now.
  assert ('Not measured in this run (--keep_other_parts): throughput, '
          'kcenters, scoring, selection, phases, kept from an earlier run ('
          f"{previous['machine']['date_utc']}") in md.read_text()


def test_kept_parts_name_the_run_that_measured_them():
  """A part kept twice names its first run, not the run that kept it."""
  from benchmarks import run_all  # pylint: disable=g-import-not-at-top
  first = {'date_utc': 'first', 'command': 'bench all', 'seconds': 2000.0}
  previous = {'machine': {'date_utc': 'second'}, 'command': 'bench some',
              'seconds': 500.0, 'kcenters': {'rows': 1}, 'scoring': {'rows': 2},
              'carried_over': {'parts': ['kcenters'], **first}}  # Old format.
  results = {}
  run_all.carry_over_parts(results, {'hardware', 'selection'}, previous)
  assert results['kcenters'] == {'rows': 1}
  assert results['scoring'] == {'rows': 2}
  assert results['carried_over'] == [
      {'parts': ['kcenters'], **first},
      {'parts': ['scoring'], 'date_utc': 'second', 'command': 'bench some',
       'seconds': 500.0}]
  # Kept again: the provenance stays with the runs that measured them.
  again = {}
  run_all.carry_over_parts(
      again, {'hardware'}, {**results, 'machine': {'date_utc': 'third'},
                            'command': 'bench hw', 'seconds': 10.0})
  assert again['carried_over'] == results['carried_over']


@pytest.mark.slow
def test_phases_split_each_run_into_its_parts(quick_run):
  results, text, _ = quick_run
  rows = results['phases']
  assert [(r['selector'], r['method']) for r in rows] == [
      ('preact8', 'least_confidence'), ('preact8', 'kcenters')]
  for row in rows:
    assert row['schedule'] == [20, 20, 20] and row['pool'] == 600
    assert row['epochs'] == 5
    assert len(row['fits']) == 2  # One selector fit per round after the first.
    first, second = row['fits']
    assert first['compile_seconds'] > 0 and first['init_compile_seconds'] > 0
    assert second['init_compile_seconds'] == 0.0  # Initialiser reused.
    assert row['phase_seconds']['scoring'] > 0
    assert row['forward_images_per_second'] > 0
    assert len(row['scorings']) == 2  # Rounds 1 and 2.
    assert sum(s['images'] for s in row['scorings']) == row['scored_images']
  assert ('| selector | its epochs | method | pool | devices | data selection '
          's |') in text
