r"""Every benchmark of issue 6 in one command; writes BENCHMARKS.md and JSON.

  bash scripts/bench.sh                 # full run (a quiet machine: ~1 h)
  bash scripts/bench.sh --quick         # tiny settings: checks the harness
  bash scripts/bench.sh --parts=throughput --models=preact20

scripts/bench.sh installs requirements-bench.txt (the project's pins plus
PyTorch) into .venv-bench, sets XLA_FLAGS like scripts/run_default.sh (one
XLA CPU device per core, up to 8) and runs `python -m benchmarks.run_all`.
Without PyTorch the PyTorch columns are left empty.

Parts (--parts), in order:

  hardware    fp32 matmul peak and memory bandwidth (benchmarks/hardware.py);
  throughput  train (batch 128) and eval (batch 512) images/s of each model,
              JAX and PyTorch timed alternately in one process per model
              (benchmarks/side_by_side.py), the ratio JAX / PyTorch, and
              GFLOP/s achieved (benchmarks/flops.py);
  kcenters    greedy k-centers per-pick time against its memory-bandwidth
              floor, and memory, for the library on 1 and 8 simulated devices,
              a NumPy incremental version and the reference's distance-matrix
              pattern: one subprocess per case (benchmarks/kcenters_scale.py);
  scoring     pool scoring images/s and memory per uncertainty method, in a
              subprocess (benchmarks/pool_scoring.py);
  selection   end-to-end data-selection speed-up of finished runs, grouped
              and defined as in the report's Table 1
              (benchmarks/selection_speedup.py, svp_jax/report/speedup.py);
  phases      one least-confidence and one k-centers active run per selector
              broken into phases (compile, init, data placement, epochs,
              scoring, ranking, test), each fixed cost in seconds and as a
              share of the data-selection runtime: one fresh process per run
              (benchmarks/selection_phases.py).

Every timed figure is the median over --repeats repetitions after a warm-up;
ceilings (matmul peak, bandwidth) are the best repetition. --quick makes every
part tiny (seconds, for tests and CI): its numbers mean nothing.
"""

import json
import math
import os
import pathlib
import shlex
import sys
import time
from typing import Any

from absl import app
from absl import flags
from absl import logging

from benchmarks import hardware
from benchmarks import selection_speedup
from benchmarks import side_by_side
from svp_jax import runtime

# Above this 1-minute load average per core, the report says the machine was
# busy (this process alone keeps about one core busy when it starts).
BUSY_LOAD_PER_CORE = 0.75

PARTS = ('hardware', 'throughput', 'kcenters', 'scoring', 'selection',
         'phases')
REPO = pathlib.Path(__file__).resolve().parents[1]

_MODELS = flags.DEFINE_list('models', 'preact20,preact56,preact110,preact164',
                            'Models whose throughput is measured.')
_REPEATS = flags.DEFINE_integer('repeats', 5, 'Timed repetitions per figure.')
_STEPS = flags.DEFINE_integer('steps', 5, 'Train / eval steps per repetition.')
_QUICK = flags.DEFINE_bool('quick', False, 'Tiny settings for every part '
                           '(flags given explicitly still win).')
_PARTS = flags.DEFINE_list('parts', list(PARTS), f'Parts to run, of {PARTS}.')
_OUT_MD = flags.DEFINE_string('out_md', 'BENCHMARKS.md', 'Markdown report.')
_OUT_JSON = flags.DEFINE_string('out_json', 'benchmarks/results/all.json',
                                'All results as JSON.')
_REPORT_ONLY = flags.DEFINE_bool(
    'report_only', False, 'Measure nothing: rewrite --out_md from the '
    'results already in --out_json (after a change to the report).')
_KEEP_OTHER_PARTS = flags.DEFINE_bool(
    'keep_other_parts', False, 'Parts not in --parts keep the results '
    'already in --out_json (the report names them and their date).')
_TRAIN_BATCH = flags.DEFINE_integer('train_batch', 128, 'Training batch size.')
_EVAL_BATCH = flags.DEFINE_integer('eval_batch', 512, 'Eval batch size.')
_TORCH_THREADS = flags.DEFINE_integer(
    'torch_threads', 0, 'PyTorch intra-op threads (0 = os.cpu_count()).')
_MATMUL_N = flags.DEFINE_integer('matmul_n', 2048, 'Matmul peak: n x n.')
_BANDWIDTH_MIB = flags.DEFINE_integer('bandwidth_mib', 1024,
                                      'Bandwidth: array size in MiB.')
_KC_SIZES = flags.DEFINE_list('kc_sizes', '50000,200000,1000000,2000000',
                              'k-centers pool sizes.')
_KC_DIMS = flags.DEFINE_list('kc_dims', '64,256', 'k-centers feature dims.')
_KC_DEVICES = flags.DEFINE_list('kc_devices', '1,8',
                                'Simulated CPU devices for the JAX version.')
_KC_IMPLS = flags.DEFINE_list('kc_impls', 'jax,numpy,reference',
                              'k-centers implementations.')
_KC_FRACTIONS = flags.DEFINE_list(
    'kc_fractions', '0.01,0.1',
    'Selection budgets as fractions of the pool (the projected times).')
_KC_LABELED = flags.DEFINE_integer(
    'kc_labeled', 1000, 'Labeled points at the start (the reference seeds '
    'core-set k-centers with 1,000).')
_KC_MAX_PICKS = flags.DEFINE_integer(
    'kc_max_picks', 200, 'Picks timed per case; a pick costs the same at any '
    'step, so full budgets are projected from these.')
_KC_MAX_MATRIX_GIB = flags.DEFINE_float(
    'kc_max_matrix_gib', 0.0, 'Run the reference pattern only where it needs '
    'at most this much (0 = half the memory available at start).')
_SCORE_MODELS = flags.DEFINE_list('score_models', 'preact20',
                                  'Models scoring the pool.')
_SCORE_N = flags.DEFINE_integer('score_n', 5000, 'Pool size for scoring.')
_SCORE_BATCH = flags.DEFINE_integer('score_batch', 512, 'Scoring batch size.')
_PHASE_CASES = flags.DEFINE_list(
    'phase_cases', 'preact8:60000:15,preact20:60000:5,preact164:10000:5',
    'selector:pool size:epochs of the phase runs (each runs least '
    'confidence and k-centers). preact8 for 15 epochs is the default '
    "run's proxy; preact20 for 5, the configuration of issue 23.")
_PHASE_ROUNDS = flags.DEFINE_list(
    'phase_rounds', '1000,1000,2000',
    'Initial labeled set and adds of the phase runs.')
_RUN_DIRS = flags.DEFINE_list(
    'run_dirs', 'workdirs/fashion_mnist_svp_study/*_seed*',
    'Globs of run directories for the end-to-end speed-up (empty: none).')

QUICK = {
    'models': ['preact8'], 'repeats': 2, 'steps': 2, 'train_batch': 16,
    'eval_batch': 32, 'matmul_n': 256, 'bandwidth_mib': 16,
    'kc_sizes': ['2000'], 'kc_dims': ['8'], 'kc_labeled': 10,
    'kc_max_picks': 8, 'score_models': ['preact8'], 'score_n': 64,
    'score_batch': 32, 'phase_cases': ['preact8:600:5'],
    'phase_rounds': ['20', '20', '20'],
}


def apply_quick() -> None:
  """--quick: tiny values for every flag not given on the command line."""
  for name, value in QUICK.items():
    if not flags.FLAGS[name].present:
      flags.FLAGS[name].value = value


# ----------------------------------------------------------------------------
# Parts.


def measure_hardware(repeats: int) -> dict[str, Any]:
  logging.info('hardware: matmul %d, bandwidth %d MiB', _MATMUL_N.value,
               _BANDWIDTH_MIB.value)
  return {'matmul': hardware.matmul_peak(_MATMUL_N.value, repeats),
          'bandwidth': hardware.memory_bandwidth(_BANDWIDTH_MIB.value,
                                                 repeats)}


def measure_throughput(peak_gflops: float | None) -> list[dict[str, Any]]:
  """JAX and PyTorch train / eval images/s, each model in its own process."""
  rows = []
  for name in _MODELS.value:
    logging.info('throughput: %s', name)
    row = hardware.run_json_subprocess(
        ['-m', 'benchmarks.side_by_side', f'--model={name}',
         f'--steps={_STEPS.value}', f'--repeats={_REPEATS.value}',
         f'--train_batch={_TRAIN_BATCH.value}',
         f'--eval_batch={_EVAL_BATCH.value}',
         f'--torch_threads={_TORCH_THREADS.value}'], cwd=str(REPO))
    for lib in ('jax', 'torch'):
      for mode in ('train', 'eval'):
        row[f'{lib}_{mode}_fraction_of_peak'] = hardware.ratio(
            row[f'{lib}_{mode}_gflops'], peak_gflops)
    logging.info('throughput: %s', {k: v for k, v in row.items()
                                     if not k.endswith(('seconds', 'faults'))})
    rows.append(row)
  return rows


def _child_env(devices: int) -> dict[str, str]:
  """This environment with XLA_FLAGS splitting the CPU into `devices`."""
  from svp_jax import sharding  # pylint: disable=g-import-not-at-top
  own = [f for f in os.environ.get('XLA_FLAGS', '').split()
         if not f.startswith(('--xla_force_host_platform_device_count',
                              '--xla_cpu_collective_call_'))]
  env = dict(os.environ)
  env['XLA_FLAGS'] = ' '.join(
      own + [sharding.simulated_cpu_devices_flags(devices)])
  return env


def _available_gib() -> float:
  with open('/proc/meminfo') as f:
    for line in f:
      if line.startswith('MemAvailable:'):
        return int(line.split()[1]) / 2**20
  return 8.0


def reference_need_gib(n: int, d: int, s: int, b: int) -> float:
  """Memory of the reference pattern beyond the features.

  The (s + b) x |pool| float32 matrix, cdist's float64 s x |pool| result for
  the labeled rows, and the gathered |pool| x d copy made at every pick.
  """
  pool = n - s
  return (4 * (s + b) * pool + 8 * s * pool + 4 * pool * d) / 2**30


def kcenters_cases() -> list[dict[str, Any]]:
  """(impl, n, d, devices, k, budget) cases; the reference where it fits."""
  fractions = [float(f) for f in _KC_FRACTIONS.value]
  max_gib = _KC_MAX_MATRIX_GIB.value or _available_gib() / 2
  cases = []
  for n in (int(v) for v in _KC_SIZES.value):
    for d in (int(v) for v in _KC_DIMS.value):
      labeled = min(_KC_LABELED.value, n // 2)
      budgets = [max(2, round(f * n)) for f in fractions]
      k = max(2, min(_KC_MAX_PICKS.value, min(budgets)))
      common = {'n': n, 'd': d, 'labeled': labeled, 'k': k,
                'budgets': dict(zip(_KC_FRACTIONS.value, budgets))}
      for impl in _KC_IMPLS.value:
        if impl == 'jax':
          for devices in (int(v) for v in _KC_DEVICES.value):
            cases.append({'impl': 'jax', 'devices': devices, **common})
        elif impl == 'numpy':
          cases.append({'impl': 'numpy', 'devices': 1, **common})
        elif impl == 'reference':
          fits = [b for b in budgets
                  if reference_need_gib(n, d, labeled, b) <= max_gib]
          need = reference_need_gib(n, d, labeled, min(budgets))
          case = {'impl': 'reference', 'devices': 1, **common,
                  'max_gib': max_gib}
          if fits:
            case['budget'] = max(fits)
          else:
            case['skipped'] = (f'needs {need:.1f} GiB > {max_gib:.1f} GiB '
                               'even at the smallest budget')
          cases.append(case)
        else:
          raise ValueError(f'unknown k-centers implementation {impl!r}')
  return cases


def measure_kcenters(read_gbs: float) -> list[dict[str, Any]]:
  """Runs every case in its own process; adds the floor and projections."""
  rows = []
  for case in kcenters_cases():
    logging.info('kcenters: %s', case)
    row = dict(case)
    floor_ms = 1e3 * case['n'] * case['d'] * 4 / (read_gbs * 1e9)
    row['floor_ms'] = floor_ms
    if 'skipped' in case:
      rows.append(row)
      continue
    args = ['-m', 'benchmarks.kcenters_scale', f'--impl={case["impl"]}',
            f'--n={case["n"]}', f'--d={case["d"]}',
            f'--labeled={case["labeled"]}', f'--k={case["k"]}',
            f'--budget={case.get("budget", case["k"])}']
    result = hardware.run_json_subprocess(args, env=_child_env(
        case['devices']), cwd=str(REPO))
    row.update(result)
    row['x_floor'] = hardware.ratio(result['per_pick_ms'], floor_ms)
    # The reference's matrix was sized for case['budget']: larger budgets
    # would not fit, so they get no projection.
    largest = case.get('budget', math.inf) if case['impl'] == 'reference' \
        else math.inf
    row['projected_s'] = {
        fraction: (result['init_s'] + budget * result['per_pick_ms'] / 1e3
                   if budget <= largest else None)
        for fraction, budget in case['budgets'].items()}
    rows.append(row)
  return rows


def measure_scoring() -> list[dict[str, Any]]:
  rows = []
  for model in _SCORE_MODELS.value:
    logging.info('scoring: %s', model)
    rows += hardware.run_json_subprocess(
        ['-m', 'benchmarks.pool_scoring', f'--model={model}',
         f'--n={_SCORE_N.value}', f'--batch_size={_SCORE_BATCH.value}',
         f'--repeats={_REPEATS.value}'], cwd=str(REPO))
  return rows


def measure_selection() -> dict[str, Any]:
  return selection_speedup.measure(_RUN_DIRS.value)


def measure_phases() -> list[dict[str, Any]]:
  rows = []
  for case in _PHASE_CASES.value:
    model, pool, epochs = case.split(':')
    for method in ('least_confidence', 'kcenters'):
      logging.info('phases: %s (%s epochs) selecting by %s from %s', model,
                   epochs, method, pool)
      rows.append(hardware.run_json_subprocess(
          ['-m', 'benchmarks.selection_phases', f'--selector={model}',
           f'--method={method}', f'--pool={pool}', f'--epochs={epochs}',
           f"--rounds={','.join(_PHASE_ROUNDS.value)}",
           f'--repeats={_REPEATS.value}'], cwd=str(REPO)))
  return rows


# ----------------------------------------------------------------------------
# Report.


def fmt(value: Any, digits: int = 3) -> str:
  """A table cell: '-' for missing, `digits` significant figures for floats."""
  if value is None:
    return '-'
  if isinstance(value, bool):
    return 'yes' if value else 'no'
  if isinstance(value, float):
    if value == 0 or not math.isfinite(value):
      return str(value)
    if abs(value) >= 10 ** digits:
      return f'{value:,.0f}'
    return f'{value:.{digits}g}'
  if isinstance(value, int):
    return f'{value:,}'
  return str(value)


def table(headers: list[str], rows: list[list[Any]]) -> list[str]:
  lines = ['| ' + ' | '.join(headers) + ' |',
           '|' + '|'.join('---' for _ in headers) + '|']
  lines += ['| ' + ' | '.join(fmt(c) for c in row) + ' |' for row in rows]
  return lines + ['']


def command_line(argv: list[str]) -> str:
  return ' '.join(['bash scripts/bench.sh'] + [shlex.quote(a)
                                               for a in argv[1:]])


def _machine_section(results) -> list[str]:
  m = results['machine']
  lines = ['## Machine', '']
  lines += table(['fact', 'value'], [
      ['CPU', m['cpu_model']], ['cores', m['cores']],
      ['memory GiB', m['memory_gib']],
      ['Python / NumPy', f"{m['python']} / {m['numpy']}"],
      ['jax / jaxlib / flax', f"{m['jax']} / {m['jaxlib']} / {m['flax']}"],
      ['torch', m['torch'] or 'not installed'],
      ['JAX devices', m['jax_devices']],
      ['XLA_FLAGS', f"`{m['XLA_FLAGS']}`" if m['XLA_FLAGS'] else '(none)'],
      ['load average at start / end',
       f"{', '.join(f'{x:.2f}' for x in m['load_average'])} / "
       f"{', '.join(f'{x:.2f}' for x in results['load_average_end'])}"],
      ['date (UTC)', m['date_utc']]])
  return lines


def _hardware_section(results) -> list[str]:
  hw = results.get('hardware')
  if not hw:
    return []
  mm, bw = hw['matmul'], hw['bandwidth']
  lines = ['## Hardware ceilings', '',
           f"fp32 matmul {mm['n']}x{mm['n']} (2 n^3 FLOPs, best of "
           f"{results['settings']['repeats']}), and memory bandwidth over a "
           f"{bw['mib']} MiB float32 array (best of the same): a jitted JAX "
           'sum (multi-threaded, reads each byte once, like a k-centers step), '
           'a NumPy sum (one thread) and a NumPy copy (read + write, 2x the '
           'bytes). The k-centers floor uses the best read figure.', '']
  lines += table(['measure', 'value'], [
      ['NumPy matmul GFLOP/s', mm['numpy_gflops']],
      ['JAX matmul GFLOP/s', mm['jax_gflops']],
      ['PyTorch matmul GFLOP/s', mm.get('torch_gflops')],
      ['JAX sum read GB/s', bw['jax_sum_read_gbs']],
      ['NumPy sum read GB/s', bw['numpy_sum_read_gbs']],
      ['NumPy copy GB/s', bw['numpy_copy_gbs']],
      ['read bandwidth used for floors, GB/s', bw['read_gbs']]])
  return lines


def _throughput_section(results) -> list[str]:
  rows = results.get('throughput')
  if not rows:
    return []
  s = results['settings']
  lines = ['## Training and eval throughput: JAX vs PyTorch', '',
           f"Images/s, median of {s['repeats']} repetitions of {s['steps']} "
           'steps, JAX (svp_jax.train.train_step / '
           'predict_step, jitted, '
           f"{rows[0]['jax_devices']} XLA device(s)) and PyTorch "
           f"(benchmarks/torch_preact.py, channels_last, "
           f"{_threads(rows[0]['torch_threads'])}) timed alternately "
           f'{_process_setup(rows[0])}. Train: batch '
           f"{s['train_batch']}, crop+flip augmentation, SGD momentum 0.9, "
           f"weight decay 5e-4. Eval: batch {s['eval_batch']}, forward only. "
           f'{_jax_setup(rows[0])}.',
           '']
  for note in (_warmup_note(rows), _fresh_memory_note(rows)):
    if note:
      lines += [note, '']
  lines += table(
      ['model', 'params', 'JAX train', 'PyTorch train', 'train JAX/PyTorch',
       'JAX eval', 'PyTorch eval', 'eval JAX/PyTorch'],
      [[r['model'], r['parameters'], r['jax_train_images_per_second'],
        r['torch_train_images_per_second'], r['train_ratio_jax_over_torch'],
        r['jax_eval_images_per_second'], r['torch_eval_images_per_second'],
        r['eval_ratio_jax_over_torch']] for r in rows])
  peak = results.get('peak_gflops')
  lines += ['### Achieved arithmetic', '',
            'FLOPs counted from the traced model (benchmarks/flops.py): conv '
            'MACs = N·H_out·W_out·C_out·K_h·K_w·C_in, dense MACs = N·in·out; '
            'forward = 2·MACs; a training step ≈ 3x forward (forward, input '
            'gradient, weight gradient). BatchNorm, ReLU and the optimizer '
            'are not counted. Peak = best measured fp32 matmul GFLOP/s '
            f"({fmt(peak)}).", '']
  lines += table(
      ['model', 'forward GFLOP/img', 'JAX train GFLOP/s', '% peak',
       'PyTorch train GFLOP/s', '% peak', 'JAX eval GFLOP/s',
       'PyTorch eval GFLOP/s'],
      [[r['model'], r['forward_gflop_per_image'], r['jax_train_gflops'],
        _pct(r['jax_train_fraction_of_peak']), r['torch_train_gflops'],
        _pct(r['torch_train_fraction_of_peak']), r['jax_eval_gflops'],
        r['torch_eval_gflops']] for r in rows])
  return lines


def _threads(count):
  return 'not installed' if count is None else f'{count} threads'


def _pct(fraction):
  return None if fraction is None else f'{100 * fraction:.1f}%'


def _kcenters_section(results) -> list[str]:
  rows = results.get('kcenters')
  if not rows:
    return []
  fractions = list(rows[0]['budgets'])
  lines = ['## Greedy k-centers', '',
           'Seeded standard-normal float32 pools, '
           f"{rows[0]['labeled']:,} labeled points (capped at n/2), "
           'one subprocess per row. ms/pick: JAX (full - (init + 1 pick)) / '
           '(k - 1); NumPy and reference picks / k. Floor = n·d·4 bytes / '
           'the measured read bandwidth (each pick must read every feature '
           'once). Projected seconds for a budget b = init + b · ms/pick '
           '(every pick costs the same), since full budgets of 1-10% of 2M '
           'points would take hours. Working GiB: peak RSS during selection '
           'above the RSS with the inputs built (what selection adds to the '
           'features). numpy = incremental NumPy (one BLAS matrix-vector '
           'product per pick); reference = the SVP reference\'s (s+b) x n '
           'distance matrix, run only where it fits (see '
           'run_all.reference_need_gib), projected only up to the budget its '
           'matrix was sized for.', '']
  table_rows = []
  for r in rows:
    projected = r.get('projected_s') or {}
    if (r.get('per_pick_ms') or 0) < 0:
      # (full - init) came out negative: the picks cost less than the
      # run-to-run spread of the initialisation, so no figure is honest.
      r = dict(r, per_pick_ms='< noise', x_floor=None)
      projected = {}
    impl = r['impl'] + (f" ({r['devices']} dev)" if r['impl'] == 'jax'
                        else '')
    table_rows.append(
        [r['n'], r['d'], impl, r['k'], r.get('init_s'), r.get('per_pick_ms'),
         r['floor_ms'], r.get('x_floor')] +
        [projected.get(f) for f in fractions] +
        [r.get('features_gib'), r.get('working_gib'), r.get('peak_rss_gib'),
         r.get('skipped') or _note(r, rows)])
  lines += table(
      ['n', 'd', 'impl', 'picks timed', 'init s', 'ms/pick', 'floor ms',
       'x floor'] + [f'projected s @{100 * float(f):g}%' for f in fractions] +
      ['features GiB', 'working GiB', 'peak GiB', 'note'], table_rows)
  return lines


def _note(row, rows) -> str:
  note = _agree(row, rows)
  if row['impl'] == 'reference':
    note += (f"; matrix {row['matrix_gib']:.2f} GiB for b={row['budget']:,} "
             '(pages touched only as rows fill)')
  return note


def _agree(row, rows) -> str:
  """Whether this case picked the same first points as the JAX 1-device one."""
  ref = [r for r in rows if r['impl'] == 'jax' and r['n'] == row['n'] and
         r['d'] == row['d'] and 'first_picks' in r]
  if not ref or 'first_picks' not in row:
    return ''
  k = min(len(ref[0]['first_picks']), len(row['first_picks']))
  same = ref[0]['first_picks'][:k] == row['first_picks'][:k]
  return 'same picks' if same else 'PICKS DIFFER'


def _scoring_section(results) -> list[str]:
  rows = results.get('scoring')
  if not rows:
    return []
  lines = ['## Pool scoring', '',
           'svp_jax.scoring.pool_uncertainty over a random uint8 pool (no '
           'augmentation), one float back per image; images/s median of '
           f"{results['settings']['repeats']} passes after a warm-up. "
           'Working GiB: peak RSS during the passes above the RSS before them '
           '(compare with the n x classes float32 array the host never '
           f'holds){_retained_note(results)}.', '']
  lines += table(
      ['model', 'method', 'pool', 'batch', 'devices', 'images/s',
       'working GiB', 'peak GiB', 'scores bytes', 'n x classes bytes'],
      [[r['model'], r['method'], r['n'], r['batch_size'], r['devices'],
        r['images_per_second'], r['working_gib'], r['peak_rss_gib'],
        r['scores_bytes'], r['pool_x_classes_bytes']] for r in rows])
  return lines


def _selection_section(results) -> list[str]:
  sel = results.get('selection')
  if sel is None:
    return []
  lines = ['## End-to-end data selection', '',
           'Runs grouped as `python -m svp_jax.report` groups them (selector '
           'model, epochs and method from config.json). Data-selection '
           'seconds: selector training + scoring + ranking + compiling over '
           'the rounds up '
           'to a labeled-set size (summary.json). Speed-up = the baseline\'s '
           'mean seconds / the group\'s, over the runs that reached the size '
           '(svp_jax/report/speedup.py, as Table 1). Run directories: '
           f"{', '.join(f'`{p}`' for p in sel['patterns']) or '(none)'}.", '']
  if sel.get('error'):
    return lines + [f"Not reported: {sel['error']}", '']
  if not sel['runs']:
    return lines + ['No run directories found.', '']
  if sel['speedups'] and 'size' not in sel['speedups'][0]:
    return lines + ['Measured with the earlier per-seed definition: rerun '
                    '`--parts=selection` for this table.', '']
  lines += table(['run', 'selection model', 'selector', 'target', 'method',
                  'rounds', 'complete', 'data selection s'],
                 [[r['run'], r['group'], r['selector'], r['target'],
                   r['method'], r['rounds'], r['complete'],
                   r['data_selection_seconds']] for r in sel['runs']])
  if sel['speedups']:
    lines += table(['selection model', 'method', 'labeled', 'runs',
                    'baseline runs', 'group s', 'baseline s',
                    'group / baseline', 'speed-up'],
                   [[r['group'], r['method'], r['size'], r['runs'],
                     r['baseline_runs'], r['seconds'], r['baseline_seconds'],
                     r['time_ratio'], r['speedup']]
                    for r in sel['speedups']])
    lines += table(['selection model', 'method', 'labeled (largest)',
                    'speed-up'],
                   [[g, v['method'], v['size'], v['speedup']]
                    for g, v in sel['summary'].items()])
  return lines


def _share(seconds: float, total: float) -> str:
  return f'{fmt(seconds)} ({100 * seconds / total:.0f}%)' if total else '-'


def _phase_totals(row: dict[str, Any]) -> dict[str, float]:
  """A phase run's seconds by phase; compile seconds kept out of each."""
  seconds, compiling = row['phase_seconds'], row['phase_compile_seconds']
  fits = row['fits']

  def run(phase):
    return seconds.get(phase, 0.0) - compiling.get(phase, 0.0)

  epochs = sum(sum(f['epoch_seconds']) for f in fits)
  fit_compile = sum(f['compile_seconds'] for f in fits)
  return {
      'compile': fit_compile + compiling.get('scoring', 0.0)
                 + compiling.get('ranking', 0.0),
      'init': sum(f['init_seconds'] - f['init_compile_seconds']
                  for f in fits),
      'placement': seconds.get('placement:fit', 0.0)
                   + seconds.get('placement:scoring', 0.0),
      # Epoch seconds less the compiling the first epoch waits for.
      'epochs': epochs - (fit_compile - sum(f['init_compile_seconds']
                                            for f in fits)),
      'scoring': run('scoring'), 'ranking': run('ranking'),
      'test': seconds.get('test', 0.0),
  }


def _phases_section(results) -> list[str]:
  rows = results.get('phases')
  if not rows:
    return []
  first = rows[0]
  lines = [
      '## Where data-selection time goes', '',
      'One active run per selector and method in a fresh process '
      '(benchmarks/selection_phases.py): real Fashion-MNIST in CIFAR\'s '
      f"layout, schedule {' -> +'.join(str(s) for s in first['schedule'])}, "
      'the selector trained from scratch each round at batch 128 for the '
      'epochs shown, no target, no persistent compilation cache (a '
      'first run on a machine). Seconds of each phase (compiling kept '
      'out of the others and shown on its own), and as a share of the '
      "run's data-selection seconds (summary.json: selector training + "
      'scoring + ranking + compiling). Placement is the host\'s time '
      'gathering batches and handing them to the devices; dispatch is '
      'asynchronous, so most of it overlaps the device\'s work (it is '
      'already inside the epochs\' and scoring\'s seconds). Test (the '
      "selector's test-split accuracy) is not part of the selection.", '']
  lines += table(
      ['selector', 'its epochs', 'method', 'pool', 'devices',
       'data selection s', 'compile', 'init', 'placement', 'epochs',
       'scoring', 'ranking', 'test s'],
      [[r['selector'], r['epochs'], r['method'], r['pool'], r['devices'],
        r['data_selection_seconds']] + [
            _share(_phase_totals(r)[p], r['data_selection_seconds'])
            for p in ('compile', 'init', 'placement', 'epochs', 'scoring',
                      'ranking')] + [_phase_totals(r)['test']]
       for r in rows])
  lines += ['Each selector fit: wall seconds against (epochs x the median '
            'epoch after the first) + its compiling, and the fixed cost '
            'left: wall - epochs x median epoch - compiling '
            '(initialisation, the loop\'s own work, a slower first '
            'epoch).', '']
  lines += table(
      ['selector', 'method', 'labeled', 'fit wall s', 'compile s',
       'epochs x epoch + compile', 'wall / that', 'fixed cost s',
       'init s'],
      [[r['selector'], r['method'], f['labeled'], f['wall_seconds'],
        f['compile_seconds'], f['epochs_x_steady_plus_compile'],
        f['wall_over_expected'], f['fixed_seconds'],
        f['init_seconds']] for r in rows for f in r['fits']])
  lines += ['Pool scoring against the forward step alone (the same jitted '
            'scoring step with the same trained selector on one batch '
            'already on the devices, the ceiling), at the eval batch size, '
            'measured right after each round\'s scoring so that both share '
            'the machine\'s load; images/s over the rounds (each round\'s '
            'forward figure weighted by the images it scored). Scoring covers '
            'the unlabeled points for least confidence, the whole pool for '
            'k-centers; its last batch is padded.', '']
  lines += table(
      ['selector', 'method', 'batch', 'images scored', 'scoring images/s',
       'forward step images/s', 'scoring / forward'],
      [[r['selector'], r['method'], r['eval_batch_size'], r['scored_images'],
        r['scoring_images_per_second'], r['forward_images_per_second'],
        r['scoring_images_per_second'] / r['forward_images_per_second']]
       for r in rows])
  return lines


def busy_warning(results: dict[str, Any]) -> str:
  """A warning when the 1-minute load average says other work was running.

  A figure taken while something else ran is a lower bound, and ratios of
  two libraries suffer differently (an OpenMP pool with a thread per core
  loses far more to a stolen core than XLA's pool does).
  """
  # Only the load at start tells of other work: at the end the 1-minute
  # average is this run's own (8-device k-center subprocesses run more
  # threads than there are cores). Both are in the machine table.
  cores = results['machine']['cores'] or 1
  load = results['machine']['load_average'][0]
  if load <= BUSY_LOAD_PER_CORE * cores:
    return ''
  return (f'**Warning: the machine was busy (1-minute load average '
          f'{load:.1f} at start on {cores} cores): the figures below are not '
          'reliable.**')


def markdown(results: dict[str, Any]) -> str:
  lines = ['# Benchmarks', '',
           'Written by `benchmarks/run_all.py`; regenerate with', '',
           f"    {results['command']}", '',
           '(scripts/bench.sh = install requirements-bench.txt into '
           '.venv-bench, set XLA_FLAGS as scripts/run_default.sh does, run '
           '`python -m benchmarks.run_all` with the same arguments). Ratios '
           'come from figures measured side by side in the same run. '
           f"Total time {results['seconds']:.0f} s.", '']
  for carried in carried_over(results):
    lines += [f"Not measured in this run (--keep_other_parts): "
              f"{', '.join(carried['parts'])}, kept from an earlier run "
              f"({carried['date_utc']}, `{carried['command']}`, "
              f"{carried['seconds']:.0f} s in all).", '']
  if results['settings']['quick']:
    lines += ['**Quick mode: tiny settings that check the harness; the '
              'numbers below mean nothing.**', '']
  busy = busy_warning(results)
  if busy:
    lines += [busy, '']
  for section in (_machine_section, _hardware_section, _throughput_section,
                  _kcenters_section, _scoring_section, _selection_section,
                  _phases_section):
    lines += section(results)
  return '\n'.join(lines).rstrip() + '\n'


# ----------------------------------------------------------------------------


def run(argv: list[str]) -> dict[str, Any]:
  """Measures the requested parts; returns every result (and writes them)."""
  runtime.configure()  # as main.py does
  if _QUICK.value:
    apply_quick()
  unknown = set(_PARTS.value) - set(PARTS)
  if unknown:
    raise app.UsageError(f'unknown --parts {sorted(unknown)}; allowed {PARTS}')
  start = time.perf_counter()
  parts = set(_PARTS.value)
  results: dict[str, Any] = {
      'command': command_line(argv),
      'machine': hardware.machine_facts(),
      'settings': {name: flags.FLAGS[name].value for name in (
          'quick', 'parts', 'models', 'repeats', 'steps', 'train_batch',
          'eval_batch', 'torch_threads', 'matmul_n', 'bandwidth_mib',
          'kc_sizes', 'kc_dims', 'kc_devices', 'kc_impls', 'kc_fractions',
          'kc_labeled', 'kc_max_picks', 'kc_max_matrix_gib', 'score_models',
          'score_n', 'score_batch', 'run_dirs', 'phase_cases',
          'phase_rounds')},
  }
  if parts & {'hardware', 'throughput', 'kcenters'}:
    # Ceilings for the other parts, so measured whenever one needs them.
    results['hardware'] = measure_hardware(_REPEATS.value)
    mm = results['hardware']['matmul']
    results['peak_gflops'] = max(
        v for k, v in mm.items() if k.endswith('_gflops'))
  if 'throughput' in parts:
    results['throughput'] = measure_throughput(results['peak_gflops'])
  if 'kcenters' in parts:
    results['kcenters'] = measure_kcenters(
        results['hardware']['bandwidth']['read_gbs'])
  if 'scoring' in parts:
    results['scoring'] = measure_scoring()
  if 'selection' in parts:
    results['selection'] = measure_selection()
  if 'phases' in parts:
    results['phases'] = measure_phases()
  results['load_average_end'] = os.getloadavg()
  results['seconds'] = time.perf_counter() - start
  if _KEEP_OTHER_PARTS.value:
    if os.path.exists(_OUT_JSON.value):
      with open(_OUT_JSON.value) as f:
        carry_over_parts(results, parts, json.load(f))
    else:
      logging.warning('--keep_other_parts: no %s to keep parts from',
                      _OUT_JSON.value)
  write(results)
  return results


def carry_over_parts(results: dict[str, Any], parts: set[str],
                     previous: dict[str, Any]) -> None:
  """Copies the results of parts not run now from `previous` results."""
  kept = [p for p in PARTS if p not in parts and p in previous
          and p not in results]  # Hardware is measured for other parts.
  sources = {}  # date -> the run, and the kept parts it measured.
  for part in kept:
    results[part] = previous[part]
    if part == 'hardware' and 'peak_gflops' in previous:
      results['peak_gflops'] = previous['peak_gflops']
    source = measured_in(previous, part)
    sources.setdefault(source['date_utc'], {'parts': [], **source})[
        'parts'].append(part)
  if sources:
    results['carried_over'] = list(sources.values())


def measured_in(previous: dict[str, Any], part: str) -> dict[str, Any]:
  """The run that measured `part` of `previous`: it, or the one it kept."""
  for source in carried_over(previous):
    if part in source['parts']:
      return {k: source[k] for k in ('date_utc', 'command', 'seconds')}
  return {'date_utc': previous['machine']['date_utc'],
          'command': previous['command'], 'seconds': previous['seconds']}


def carried_over(results: dict[str, Any]) -> list[dict[str, Any]]:
  """results["carried_over"] as a list (older JSON files hold one dict)."""
  carried = results.get('carried_over') or []
  return [carried] if isinstance(carried, dict) else carried


def _retained_note(results: dict[str, Any]) -> str:
  if any(r.get('jax_host_memory_retained')
         for r in results.get('throughput') or []):
    return ('; a lower bound here: this run kept freed memory in the '
            'process (svp_jax.cpu.host_memory), so earlier parts\' pages are '
            'reused rather than counted')
  return ''


def _process_setup(row: dict[str, Any]) -> str:
  # Rows from before per-model processes were timed in one process.
  if 'train_warmup_rounds' not in row:
    return 'in the same process for every model, after one warm-up'
  return ('in one fresh process per model (benchmarks/side_by_side.py), '
          'after warm-up rounds in alternating order until a round no '
          'longer grew the heap (at least 2, at most '
          f'{side_by_side.MAX_WARMUP_ROUNDS})')


def _warmup_note(rows: list[dict[str, Any]]) -> str:
  if not all('train_warmup_rounds' in r for r in rows):
    return ''
  return ('Warm-up rounds, train / eval: ' + ', '.join(
      f"{r['model']} {r['train_warmup_rounds']} / {r['eval_warmup_rounds']}"
      for r in rows) + '.')


def _fresh_memory_note(rows: list[dict[str, Any]]) -> str:
  """Which timed calls had to fault in fresh memory, if any did."""
  found = []
  for row in rows:
    for lib, label in (('jax', 'JAX'), ('torch', 'PyTorch')):
      for mode in ('train', 'eval'):
        faults = row.get(f'{lib}_{mode}_page_faults') or []
        many = sum(f >= side_by_side.FRESH_MEMORY_FAULTS for f in faults)
        if many:
          found.append(f"{row['model']} {label} {mode} {many} of "
                       f'{len(faults)}')
  if not found:
    return ''
  return (f'Timed calls with over {side_by_side.FRESH_MEMORY_FAULTS:,} '
          'page faults '
          '(the heap grew; each such call is seconds slower here, and a '
          'median over repetitions absorbs only a minority of them): '
          f"{'; '.join(found)}.")


def _jax_setup(row: dict[str, Any]) -> str:
  # Rows from before these keys existed ran XLA's convolution, glibc default.
  convolutions = ('oneDNN (svp_jax.cpu.conv)'
                  if row.get('jax_convolutions') == 'oneDNN' else
                  "XLA:CPU's own")
  memory = ('kept for the next step (svp_jax.cpu.host_memory)'
            if row.get('jax_host_memory_retained') else
            "returned to the OS (glibc's default)")
  return f'JAX convolutions: {convolutions}; freed host memory {memory}'


def write(results: dict[str, Any]) -> None:
  text = markdown(results)
  for path, content in ((_OUT_MD.value, text),
                        (_OUT_JSON.value, json.dumps(results, indent=2))):
    if path:
      os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
      with open(path, 'w') as f:
        f.write(content)
  print(text, flush=True)


def rewrite_report() -> None:
  """Rewrites the Markdown report from the saved JSON results."""
  with open(_OUT_JSON.value) as f:
    write(json.load(f))  # The JSON is written back unchanged.


def main(argv):
  del argv  # absl leaves only positional arguments; the command needs flags.
  if _REPORT_ONLY.value:
    rewrite_report()
  else:
    run(sys.argv)


if __name__ == '__main__':
  app.run(main)
