"""Fault-injection soak: kill runs at random moments, resume, compare.

  python scripts/soak_preemption.py --out=docs/results/preemption_soak \
      [--kills=200] [--seed=0] [--data_dir=DIR]

Runs a tiny active-learning config (real Fashion-MNIST, 600-image pool,
50 -> 100 -> 200 -> 300 labels, a 3-epoch target of 13 steps an epoch,
trainings saving every epoch) once per method (least confidence,
k-centers) without interruption, then trial after trial: start the same run
in a fresh workdir, kill it (SIGKILL or SIGTERM, at random) when its log
reaches a randomly chosen phase -- selector training, pool scoring, target
training, the end of a round (index files, checkpoint, tables), or a random
moment -- plus a random delay, start it again, and so on until it completes
(at most --max_kills_per_trial kills). Every trial's index files and result
tables (all but their seconds) must equal the uninterrupted run's. A run the
hang watchdog aborts (status 70: two XLA:CPU devices on a busy machine now and
then wait on each other forever) is resumed too, and counted.

Writes to --out: kills.csv (one row per kill: trial, method, signal, phase,
the log line it followed, seconds into the attempt), trials.csv (one row per
trial: kills, divergences, wall seconds against the uninterrupted run's),
and soak.md (totals, kills per phase and signal, divergences, time lost per
kill). Exit status 1 if anything diverged.
"""

import argparse
import collections
import csv
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
# pylint: disable=g-import-not-at-top,wrong-import-position
from svp_jax import preemption
from svp_jax import results

METHODS = ('least_confidence', 'kcenters')
# Where a kill is aimed: the log line it follows (None: a random moment).
PHASES = {
    'selector training': r'selector preact8 n=\d+ epoch \d+/',
    'scoring': r'selector preact8 trained on',
    'target training': r'target preact8 n=\d+ epoch \d+/',
    'round end (files, checkpoint)': r'round \d+ done',
    'random moment': None,
}
SIGNALS = {'SIGKILL': signal.SIGKILL, 'SIGTERM': signal.SIGTERM}
HANG_MINUTES = 1.0
# Result columns compared (seconds are not: they differ run to run).
COMPARED = {
    'proxy.csv': ('nexamples', 'train_accuracy', 'test_accuracy'),
    'target.csv': ('nexamples', 'train_accuracy', 'test_accuracy'),
    'selection.csv': ('nexamples', 'current_nexamples', 'new_nexamples'),
}
ROUND_KEYS = ('round', 'labeled', 'selector_accuracy', 'target_accuracy')


def command(method: str, workdir: str, data_dir: str | None) -> list[str]:
  return ([sys.executable, os.path.join(REPO, 'main.py'),
           f'--config=configs/fashion_mnist_svp.py:{method},quick',
           f'--workdir={workdir}',
           '--config.data.max_train_examples=600',
           '--config.data.max_test_examples=200',
           '--config.selection.initial_subset=50.0',
           '--config.selection.rounds=(50.0, 100.0, 100.0)',
           '--config.target.model.name=preact8',
           '--config.target.train.batch_size=8',
           '--config.target.train.lr_schedule=((3, 0.02),)',
           '--config.preemption.checkpoint_epochs=1',
           # A run stuck at 0% CPU (the 2-device XLA:CPU hang that a busy
           # machine shows now and then) aborts soon and is resumed.
           f'--config.preemption.hang_minutes={HANG_MINUTES}']
          + ([f'--config.data.data_dir={data_dir}'] if data_dir else []))


def environment() -> dict[str, str]:
  flags = os.environ.get('XLA_FLAGS', '')
  if 'xla_force_host_platform_device_count' not in flags:
    flags += ' --xla_force_host_platform_device_count=2'
  if 'collective_call_terminate' not in flags:
    flags += ' --xla_cpu_collective_call_terminate_timeout_seconds=86400'
  return dict(os.environ, XLA_FLAGS=flags.strip())


def outcome(workdir: str) -> dict[str, object]:
  """What a finished run computed: index files, tables without seconds."""
  found = {}
  for root, _, files in os.walk(workdir):
    for name in files:
      if name.endswith('.index'):
        with open(os.path.join(root, name)) as f:
          found[os.path.relpath(os.path.join(root, name), workdir)] = f.read()
  for table, columns in COMPARED.items():
    with open(os.path.join(workdir, table), newline='') as f:
      found[table] = [[row[c] for c in columns] for row in csv.DictReader(f)]
  summary = results.read_json(os.path.join(workdir, 'summary.json'))
  found['summary.json'] = [[r[k] for k in ROUND_KEYS]
                           for r in summary['rounds']]
  return found


def differences(expected: dict, got: dict) -> list[str]:
  return sorted(k for k in set(expected) | set(got)
                if expected.get(k) != got.get(k))


def attempt(cmd: list[str], phase: str | None, delay: float,
            sig: int | None, rng: random.Random, timeout: float
            ) -> tuple[int, str, float]:
  """One start of the run, killed after `phase`'s line + `delay` (if sig).

  Returns (exit status, the log line the kill followed, seconds from the
  start to the kill or the end).
  """
  start = time.monotonic()
  process = subprocess.Popen(cmd, cwd=REPO, env=environment(),
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                             text=True, start_new_session=True)
  pattern = re.compile(PHASES[phase]) if phase and PHASES[phase] else None
  random_at = start + rng.uniform(0, 30) if sig and not pattern else None
  after, killed_at = '', None
  try:
    for line in process.stderr:
      if sig is None or killed_at is not None:
        continue
      after = line.strip()[:200]
      now = time.monotonic()
      if (pattern is not None and pattern.search(line)) or (
          random_at is not None and now >= random_at):
        time.sleep(delay)
        killed_at = time.monotonic()
        if process.poll() is None:
          os.killpg(process.pid, sig)
    status = process.wait(timeout=timeout)
  finally:
    if process.poll() is None:
      os.killpg(process.pid, signal.SIGKILL)
      process.wait()
  return status, after, (killed_at or time.monotonic()) - start


def soak(out: str, kills_wanted: int, seed: int, data_dir: str | None,
         max_kills_per_trial: int, timeout: float = 900.0) -> dict[str, object]:
  rng = random.Random(seed)
  os.makedirs(out, exist_ok=True)
  scratch = tempfile.mkdtemp(prefix='svp_soak_')
  reference, reference_seconds = {}, {}
  hangs = []
  for method in METHODS:
    workdir = os.path.join(scratch, f'reference_{method}')
    start = time.monotonic()
    while True:
      status, after, _ = attempt(command(method, workdir, data_dir), None,
                                 0.0, None, rng, timeout)
      if status != preemption.HUNG_STATUS:
        break
      hangs.append({'trial': 'reference', 'method': method,
                    'after_line': after})
    if status != 0:
      raise RuntimeError(f'the uninterrupted {method} run failed ({status})')
    reference_seconds[method] = time.monotonic() - start
    reference[method] = outcome(workdir)
  kills, trials = [], []
  trial = 0
  while len(kills) < kills_wanted:
    method = METHODS[trial % len(METHODS)]
    workdir = os.path.join(scratch, f'trial_{trial}')
    cmd = command(method, workdir, data_dir)
    trial_kills, wall = 0, 0.0
    while True:
      kill_now = (trial_kills < max_kills_per_trial
                  and len(kills) < kills_wanted)
      phase = rng.choice(list(PHASES)) if kill_now else None
      sig_name = rng.choice(list(SIGNALS)) if kill_now else None
      delay = rng.uniform(0.0, 0.5)
      start = time.monotonic()
      status, after, seconds = attempt(
          cmd, phase, delay, SIGNALS[sig_name] if sig_name else None, rng,
          timeout)
      wall += time.monotonic() - start
      if status == 0:
        break
      if status == preemption.HUNG_STATUS:  # Aborted by the watchdog.
        hangs.append({'trial': trial, 'method': method, 'after_line': after})
        continue
      # SIGTERM before main.py installed its handler (Python starting)
      # kills as SIGKILL does.
      expected = {'SIGKILL': (-signal.SIGKILL,),
                  'SIGTERM': (preemption.PREEMPTED_STATUS, -signal.SIGTERM)
                  }.get(sig_name, ())
      if status not in expected:
        raise RuntimeError(f'trial {trial}: exit status {status} after '
                           f'{sig_name} (expected {expected}); workdir kept: '
                           f'{workdir}')
      trial_kills += 1
      kills.append({'trial': trial, 'method': method, 'signal': sig_name,
                    'exit_status': status, 'phase': phase,
                    'after_line': after,
                    'seconds_into_attempt': round(seconds, 2)})
    diverged = differences(reference[method], outcome(workdir))
    trials.append({'trial': trial, 'method': method, 'kills': trial_kills,
                   'divergent': ' '.join(diverged),
                   'wall_seconds': round(wall, 1),
                   'uninterrupted_seconds': round(reference_seconds[method],
                                                  1)})
    if not diverged:
      shutil.rmtree(workdir)
    print(f'trial {trial} ({method}): {trial_kills} kills, '
          f'{"DIVERGED: " + " ".join(diverged) if diverged else "same"}; '
          f'{len(kills)}/{kills_wanted} kills so far', flush=True)
    trial += 1
  summary = write_results(out, kills, trials, hangs, seed)
  if not summary['divergent_trials']:
    shutil.rmtree(scratch, ignore_errors=True)
  return summary


def write_results(out: str, kills: list[dict], trials: list[dict],
                  hangs: list[dict], seed: int) -> dict[str, object]:
  results.write_csv(os.path.join(out, 'kills.csv'), kills,
                    ('trial', 'method', 'signal', 'exit_status', 'phase',
                     'after_line', 'seconds_into_attempt'))
  results.write_csv(os.path.join(out, 'trials.csv'), trials,
                    ('trial', 'method', 'kills', 'divergent', 'wall_seconds',
                     'uninterrupted_seconds'))
  by_phase = collections.Counter((k['phase'], k['signal']) for k in kills)
  divergent = [t for t in trials if t['divergent']]
  killed = [t for t in trials if t['kills']]
  lost = [(t['wall_seconds'] - t['uninterrupted_seconds']) / t['kills']
          for t in killed]
  summary = {'seed': seed, 'trials': len(trials), 'kills': len(kills),
             'hangs_resumed': len(hangs),
             'divergent_trials': len(divergent),
             'mean_seconds_lost_per_kill': (round(sum(lost) / len(lost), 1)
                                            if lost else None)}
  rows = [{'phase': phase, 'signal': sig, 'kills': n}
          for (phase, sig), n in sorted(by_phase.items())]
  results.write_json(os.path.join(out, 'soak.json'), summary)
  results.write_text(
      os.path.join(out, 'soak.md'),
      '# Preemption soak\n\n'
      f'{len(trials)} trials, {len(kills)} kills, {len(divergent)} divergent '
      f'trials (seed {seed}). Mean wall seconds lost per kill (a trial\'s '
      'wall time over all its attempts, less the uninterrupted run\'s, per '
      f'kill): {summary["mean_seconds_lost_per_kill"]}. Runs aborted by the '
      f'hang watchdog (preemption.hang_minutes={HANG_MINUTES:g}) and '
      f'resumed: {len(hangs)}.\n\n'
      '## Kills per phase and signal\n\n'
      + results.markdown_table(rows, ('phase', 'signal', 'kills')) + '\n'
      + ('## Divergent trials\n\n'
         + results.markdown_table(divergent, ('trial', 'method', 'divergent'))
         if divergent else 'No trial diverged.\n'))
  return summary


def main(argv):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--out', required=True)
  parser.add_argument('--kills', type=int, default=200)
  parser.add_argument('--seed', type=int, default=0)
  parser.add_argument('--data_dir', default=None)
  parser.add_argument('--max_kills_per_trial', type=int, default=3)
  args = parser.parse_args(argv)
  summary = soak(args.out, args.kills, args.seed, args.data_dir,
                 args.max_kills_per_trial)
  print(json.dumps(summary))
  return 1 if summary['divergent_trials'] else 0


if __name__ == '__main__':
  sys.exit(main(sys.argv[1:]))
