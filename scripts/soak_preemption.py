"""Fault-injection soak: kill runs at random moments, resume, compare.

  python scripts/soak_preemption.py --out=DIR [--jobs=active,coreset,label] \
      [--kills=200] [--seed=0] [--data_dir=DIR] [--max_kills_per_trial=3]

Each job in --jobs (default all three) is run once without interruption,
then trial after trial: the same run in a fresh workdir, killed (SIGKILL or
SIGTERM, at random) at a randomly chosen phase -- after the log line that
starts it, or the moment a file it writes changes, or at a random moment --
started again, and so on until it completes. Every trial must end as the
uninterrupted run did. --kills is per job. With one job its results go to
DIR, with several to DIR/<job>/. A run the hang watchdog aborts (status 70:
two XLA:CPU devices on a busy machine now and then wait on each other
forever) is resumed too, and counted.

active   a tiny active-learning config (real Fashion-MNIST, 600-image pool,
         50 -> 100 -> 200 -> 300 labels, a 3-epoch target of 13 steps an
         epoch, trainings saving every epoch) per method (least confidence,
         k-centers) in turn; killed in selector training, pool scoring,
         target training, the end of a round (index files, checkpoint,
         tables) or at a random moment (plus a random delay, at most
         --max_kills_per_trial kills a trial). Index files and result tables
         (all but their seconds) must equal the uninterrupted run's.
coreset  a tiny core-set config (real Fashion-MNIST, a 400-image pool, keep
         120 by least confidence and by k-centers from one 3-epoch proxy,
         a 3-epoch target on each subset, saving every epoch); killed in the
         proxy's training, scoring, between the two methods' rankings, after
         the last selection, in each target's training (a random epoch of
         either), between the targets, or at a random moment. The subsets
         (index files) and result tables (all but their seconds) must equal
         the uninterrupted run's, and no training checkpoint may be left.
label    the labeling loop (svp_jax.labeling) on real images: the 1,797
         scikit-learn digits as a PNG folder (scripts/
         write_own_data_examples.py), a 400-image pool asked about from zero
         labels (labeling.ignore_file_labels) in 3 rounds of 40, then
         train_target. A simulated person answers each round from the files'
         labels (scripts/answer_queries.py) between the commands, in one of
         three ways: all at once; half, the rest after the next command is
         killed in its merge; or all with one wrong, corrected after the next
         command is killed in its training. Each query and train_target
         command is killed in a random phase (merging, selector training,
         scoring, writing the query files, the target's training, saving it,
         a random moment), at most --max_kills_per_trial kills a command;
         between kills the person answers again now and then, and answers a
         query file a killed run left without its index. After every
         attempt each answer the person wrote must be in its file or in
         labels.csv (else it is lost); at the end labels.csv must hold every
         answer as the person last gave it (else changed), and the asked ids
         (queries/round_<r>.index), rounds.csv's counts and accuracies,
         target.csv and the export must equal an uninterrupted loop's with
         every answer given at once.

Writes per job: kills.csv (one row per kill: trial, signal, phase, the log
line or file it followed, seconds into the attempt), trials.csv (one row per
trial: kills, divergences, wall seconds against the uninterrupted run's; the
label job also lost and changed answers), soak.json and soak.md (totals,
kills per phase and signal, divergences, time lost per kill). Exit status 1
if anything diverged or a label was lost or changed.
"""

import argparse
import collections
import csv
import dataclasses
import json
import os
import queue
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from typing import Any

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)
# pylint: disable=g-import-not-at-top,wrong-import-position
from svp_jax import preemption
from svp_jax import results

JOBS = ('active', 'coreset', 'label')
METHODS = ('least_confidence', 'kcenters')
SIGNALS = {'SIGKILL': signal.SIGKILL, 'SIGTERM': signal.SIGTERM}
HANG_MINUTES = 1.0


@dataclasses.dataclass(frozen=True)
class Aim:
  """Where a kill is aimed: after the `nth` log line matching `line`, when
  one of `files` (relative to the workdir, drawn per attempt) changes, or
  (neither) at a random moment within `random_within` seconds of the
  start."""
  line: str | None = None
  files: tuple[str, ...] = ()
  nth: int = 1  # Most matches a kill may wait for (drawn 1..nth).
  random_within: float = 30.0


# Active runs: where a kill is aimed (the log line it follows).
PHASES = {
    'selector training': Aim(r'selector preact8 n=\d+ epoch \d+/'),
    'scoring': Aim(r'selector preact8 trained on'),
    'target training': Aim(r'target preact8 n=\d+ epoch \d+/'),
    'round end (files, checkpoint)': Aim(r'round \d+ done'),
    'random moment': Aim(),
}
# Result columns compared (seconds are not: they differ run to run).
COMPARED = {
    'proxy.csv': ('nexamples', 'train_accuracy', 'test_accuracy'),
    'target.csv': ('nexamples', 'train_accuracy', 'test_accuracy'),
    'selection.csv': ('nexamples', 'current_nexamples', 'new_nexamples'),
}
ROUND_KEYS = ('round', 'labeled', 'selector_accuracy', 'target_accuracy')

# The core-set run: 3 proxy epochs, then 3 target epochs per method.
CORESET_EPOCHS = 3
CORESET_PHASES = {
    'proxy training': Aim(r'proxy \w+ n=\d+ epoch \d+/', nth=CORESET_EPOCHS),
    'scoring (proxy trained)': Aim(r'proxy \w+ trained on'),
    'between methods (k-centers ranks next)': Aim(
        rf'{METHODS[0]} kept \d+ of'),
    'after the last selection (tables)': Aim(rf'{METHODS[1]} kept \d+ of'),
    'target training': Aim(r'target \w+ n=\d+ epoch \d+/',
                           nth=CORESET_EPOCHS * len(METHODS)),
    'between targets (target.csv, summary)': Aim(r'target \w+ trained on',
                                                 nth=len(METHODS)),
    'random moment': Aim(random_within=25.0),
}
CORESET_COMPARED = {'proxy.csv': COMPARED['proxy.csv']} | {
    f'{m}/{table}': COMPARED[table] for m in METHODS
    for table in ('selection.csv', 'target.csv')}
CORESET_SUMMARY_KEYS = ('method', 'subset_size', 'proxy_test_accuracy',
                        'target_test_accuracy')

# The labeling loop: 3 rounds, then train_target.
LABEL_ROUNDS = 3
LABEL_STORE = 'labels.csv'
PERSON_WAYS = ('all at once', 'half, rest after a kill',
               'one wrong, corrected after a kill')


def label_phases(action: str, round_index: int) -> dict[str, Aim]:
  """Where a `labeling.action` command may be killed."""
  merging = Aim(files=(LABEL_STORE,))  # The store rewritten by a merge.
  moment = Aim(random_within=8.0)
  if action == 'train_target':
    return {'merging': merging,
            'target training': Aim(r'target \w+ n=\d+ epoch \d+/', nth=3),
            'saving the target': Aim(r'target \w+ trained on \d+ labels in'),
            'random moment': moment}
  files = tuple(f'queries/round_{round_index}.{ext}'
                for ext in ('label_studio.json', 'csv', 'index'))
  writing = {'writing the query files': Aim(files=files)}
  if round_index == 0:  # Nothing to merge nor train yet.
    return writing | {'random moment': moment}
  return {'merging': merging,
          'selector training': Aim(r'selector \w+ n=\d+ epoch \d+/', nth=3),
          'scoring': Aim(r'selector \w+ trained on')} | writing | {
              'random moment': moment}


# ----------------------------------------------------------------------------
# Running, killing and resuming.


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
           '--config.target.train.lr_schedule=((3, 0.02),)']
          + _preemption_flags()
          + ([f'--config.data.data_dir={data_dir}'] if data_dir else []))


def _preemption_flags() -> list[str]:
  return ['--config.preemption.checkpoint_epochs=1',
          # A run stuck at 0% CPU (the 2-device XLA:CPU hang that a busy
          # machine shows now and then) aborts soon and is resumed.
          f'--config.preemption.hang_minutes={HANG_MINUTES}']


def coreset_command(workdir: str, data_dir: str | None) -> list[str]:
  return ([sys.executable, os.path.join(REPO, 'main.py'),
           f'--config=configs/fashion_mnist_coreset.py:{METHODS[0]},quick',
           f'--workdir={workdir}',
           '--config.data.max_train_examples=400',
           '--config.data.max_test_examples=100',
           f'--config.coreset.methods={METHODS!r}',
           '--config.coreset.subset_size=120.0',
           '--config.coreset.kcenters_seeds=20',
           f'--config.selector.train.lr_schedule=(({CORESET_EPOCHS}, 0.05),)',
           f'--config.target.train.lr_schedule=(({CORESET_EPOCHS}, 0.02),)',
           '--config.target.train.batch_size=32']
          + _preemption_flags()
          + ([f'--config.data.data_dir={data_dir}'] if data_dir else []))


def label_command(workdir: str, images: str, data_dir: str,
                  action: str) -> list[str]:
  return [sys.executable, os.path.join(REPO, 'main.py'),
          '--config=configs/own_images.py:least_confidence,quick,label',
          f'--workdir={workdir}', f'--config.data.path={images}',
          f'--config.data.data_dir={data_dir}',
          '--config.data.max_train_examples=400',
          '--config.data.max_test_examples=200',
          '--config.selection.initial_subset=40.0',
          '--config.selection.rounds=(40.0, 40.0)',
          '--config.labeling.ignore_file_labels=True',
          f'--config.labeling.action={action}',
          '--config.target.model.name=preact8',
          '--config.selector.train.lr_schedule=((3, 0.05),)',
          '--config.target.train.lr_schedule=((3, 0.02),)',
          '--config.selector.train.batch_size=16',
          '--config.target.train.batch_size=16'] + _preemption_flags()


def environment() -> dict[str, str]:
  flags = os.environ.get('XLA_FLAGS', '')
  if 'xla_force_host_platform_device_count' not in flags:
    flags += ' --xla_force_host_platform_device_count=2'
  if 'collective_call_terminate' not in flags:
    flags += ' --xla_cpu_collective_call_terminate_timeout_seconds=86400'
  return dict(os.environ, XLA_FLAGS=flags.strip())


def _stamp(path: str) -> tuple[int, int, int] | None:
  """What tells a rewritten file (atomic renames change the inode)."""
  try:
    s = os.stat(path)
  except FileNotFoundError:
    return None
  return (s.st_ino, s.st_mtime_ns, s.st_size)


def _lines(stream, into: queue.Queue):
  for line in stream:
    into.put(line)
  into.put(None)


def attempt(cmd: list[str], aim: Aim | None, delay: float, sig: int | None,
            rng: random.Random, timeout: float, workdir: str = '',
            nth: int = 1) -> tuple[int, str, float, bool]:
  """One start of the run, killed (if `sig`) `delay` seconds after `aim`:
  its `nth` matching log line, the first of its files to change, or its
  random moment.

  Returns (exit status, the log line or file the kill followed, seconds
  from the start to the kill or the end, whether the signal was sent).
  """
  start = time.monotonic()
  process = subprocess.Popen(cmd, cwd=REPO, env=environment(),
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                             text=True, start_new_session=True)
  lines = queue.Queue()
  threading.Thread(target=_lines, args=(process.stderr, lines),
                   daemon=True).start()
  aim = aim or Aim()
  pattern = re.compile(aim.line) if sig and aim.line else None
  watched = {p: os.path.join(workdir, p) for p in aim.files} if sig else {}
  stamps = {p: _stamp(path) for p, path in watched.items()}
  random_at = (start + rng.uniform(0, aim.random_within)
               if sig and not pattern and not watched else None)
  after, killed_at, matches = '', None, 0
  try:
    while time.monotonic() - start < timeout:
      try:  # Files are polled often: their window may be milliseconds.
        line = lines.get(timeout=0.001 if watched else 0.05)
      except queue.Empty:
        line = ''
      if line is None:
        break
      if sig is None or killed_at is not None:
        continue
      if line:
        after = line.strip()[:200]
      hit = None
      if pattern is not None and line and pattern.search(line):
        matches += 1
        hit = matches == nth
      for name, path in watched.items():
        if _stamp(path) != stamps[name]:
          hit, after = True, f'{name} written (after: {after})'[:300]
          break
      if random_at is not None and time.monotonic() >= random_at:
        hit = True
      if hit:
        time.sleep(delay)
        killed_at = time.monotonic()
        if process.poll() is None:
          os.killpg(process.pid, sig)
    status = process.wait(timeout=max(1.0, timeout - (time.monotonic()
                                                      - start)))
  finally:
    if process.poll() is None:
      os.killpg(process.pid, signal.SIGKILL)
      process.wait()
  return (status, after, (killed_at or time.monotonic()) - start,
          killed_at is not None)


def expected_statuses(sig_name: str | None) -> tuple[int, ...]:
  # SIGTERM before main.py installed its handler (Python starting) kills as
  # SIGKILL does; after the last stop check the run finishes (status 0).
  return {'SIGKILL': (-signal.SIGKILL,),
          'SIGTERM': (preemption.PREEMPTED_STATUS, -signal.SIGTERM, 0)
          }.get(sig_name, ())


def differences(expected: dict, got: dict) -> list[str]:
  return sorted(k for k in set(expected) | set(got)
                if expected.get(k) != got.get(k))


def _index_files(workdir: str) -> dict[str, str]:
  found = {}
  for root, _, names in os.walk(workdir):
    for name in names:
      if name.endswith('.index'):
        with open(os.path.join(root, name)) as f:
          found[os.path.relpath(os.path.join(root, name), workdir)] = f.read()
  return found


def _columns(path: str, columns: tuple[str, ...]) -> list[list[str]] | None:
  """A CSV's rows as written, in `columns`; None if there is no file."""
  if not os.path.exists(path):
    return None
  with open(path, newline='', encoding='utf-8') as f:
    return [[row.get(c) for c in columns] for row in csv.DictReader(f)]


def _computed(workdir: str, compared: dict[str, tuple[str, ...]],
              summary_rows: str, summary_keys: tuple[str, ...]
              ) -> dict[str, object]:
  """A finished run's index files, its `compared` tables' columns and its
  summary.json's `summary_rows` (their `summary_keys`): all but seconds."""
  found = _index_files(workdir)
  for table, columns in compared.items():
    found[table] = _columns(os.path.join(workdir, table), columns)
  summary = results.read_json(os.path.join(workdir, 'summary.json'))
  found['summary.json'] = [[r[k] for k in summary_keys]
                           for r in summary[summary_rows]]
  return found


def outcome(workdir: str) -> dict[str, object]:
  """What a finished active run computed: index files, tables without
  seconds."""
  return _computed(workdir, COMPARED, 'rounds', ROUND_KEYS)


def coreset_outcome(workdir: str) -> dict[str, object]:
  """What a finished core-set run computed: the subsets, tables without
  seconds, and any training checkpoint left behind."""
  found = _computed(workdir, CORESET_COMPARED, 'methods',
                    CORESET_SUMMARY_KEYS)
  found['checkpoints left'] = sorted(
      os.path.relpath(root, workdir) for root, _, _ in os.walk(workdir)
      if os.path.basename(root) == 'training_checkpoints')
  return found


def phase_draw(rng: random.Random, phases: dict[str, Aim]
               ) -> tuple[str, Aim, int, str, float]:
  """A kill's phase, its aim (one of its files), match number, signal and
  delay (none after a file: its window may be milliseconds)."""
  phase = rng.choice(list(phases))
  aim = phases[phase]
  if aim.files:
    aim = dataclasses.replace(aim, files=(rng.choice(aim.files),))
  nth = rng.randint(1, aim.nth)
  sig_name = rng.choice(list(SIGNALS))
  delay = rng.uniform(0.0, 0.5)
  return phase, aim, nth, sig_name, 0.0 if aim.files else delay


def resume_until_done(cmd: list[str], workdir: str, phases: dict[str, Aim],
                      rng: random.Random, kills_allowed: int,
                      timeout: float, hangs: list[dict], label: dict
                      ) -> tuple[list[dict], float]:
  """Starts `cmd` again and again, killing it at random phases (at most
  `kills_allowed` times), until it exits 0 unkilled; returns (kills, wall
  seconds)."""
  kills, wall = [], 0.0
  while True:
    killing = len(kills) < kills_allowed
    phase, aim, nth, sig_name, delay = phase_draw(rng, phases)
    start = time.monotonic()
    status, after, seconds, sent = attempt(
        cmd, aim if killing else None, delay,
        SIGNALS[sig_name] if killing else None, rng, timeout, workdir, nth)
    wall += time.monotonic() - start
    if status == preemption.HUNG_STATUS:  # Aborted by the watchdog.
      hangs.append(dict(label, after_line=after))
      continue
    if not sent:
      if status != 0:
        raise RuntimeError(f'{label}: exit status {status} unkilled; workdir '
                           f'kept: {workdir}')
      return kills, wall
    if status not in expected_statuses(sig_name):
      raise RuntimeError(f'{label}: exit status {status} after {sig_name} '
                         f'(expected {expected_statuses(sig_name)}); workdir '
                         f'kept: {workdir}')
    kills.append(dict(label, signal=sig_name, exit_status=status, phase=phase,
                      after_line=after,
                      seconds_into_attempt=round(seconds, 2)))


def reference_run(cmd: list[str], rng: random.Random, timeout: float,
                  hangs: list[dict], label: dict) -> float:
  """Runs `cmd` uninterrupted (again if the watchdog aborts it); seconds."""
  start = time.monotonic()
  while True:
    status, after, _, _ = attempt(cmd, None, 0.0, None, rng, timeout)
    if status != preemption.HUNG_STATUS:
      break
    hangs.append(dict(label, trial='reference', after_line=after))
  if status != 0:
    raise RuntimeError(f'the uninterrupted run {label} failed ({status})')
  return time.monotonic() - start


# ----------------------------------------------------------------------------
# The active and core-set soaks: one command a trial.


def soak(out: str, kills_wanted: int, seed: int, data_dir: str | None,
         max_kills_per_trial: int, timeout: float = 900.0) -> dict[str, object]:
  """The active-run soak (each trial one method, in turn)."""
  rng = random.Random(seed)
  os.makedirs(out, exist_ok=True)
  scratch = tempfile.mkdtemp(prefix='svp_soak_')
  reference, reference_seconds = {}, {}
  hangs = []
  for method in METHODS:
    workdir = os.path.join(scratch, f'reference_{method}')
    reference_seconds[method] = reference_run(
        command(method, workdir, data_dir), rng, timeout, hangs,
        {'trial': 'reference', 'method': method})
    reference[method] = outcome(workdir)
  kills, trials = [], []
  trial = 0
  while len(kills) < kills_wanted:
    method = METHODS[trial % len(METHODS)]
    workdir = os.path.join(scratch, f'trial_{trial}')
    new, wall = resume_until_done(
        command(method, workdir, data_dir), workdir, PHASES, rng,
        min(max_kills_per_trial, kills_wanted - len(kills)), timeout, hangs,
        {'trial': trial, 'method': method})
    kills.extend(new)
    diverged = differences(reference[method], outcome(workdir))
    trials.append({'trial': trial, 'method': method, 'kills': len(new),
                   'divergent': ' '.join(diverged),
                   'wall_seconds': round(wall, 1),
                   'uninterrupted_seconds': round(reference_seconds[method],
                                                  1)})
    if not diverged:
      shutil.rmtree(workdir)
    _progress(trial, method, len(new), diverged, len(kills), kills_wanted)
    trial += 1
  summary = write_results(out, kills, trials, hangs, seed)
  if not summary['divergent_trials']:
    shutil.rmtree(scratch, ignore_errors=True)
  return summary


def _progress(trial: int, what: str, kills: int, diverged: list[str],
              total: int, wanted: int, extra: str = ''):
  print(f'trial {trial} ({what}): {kills} kills, '
        f'{"DIVERGED: " + " ".join(diverged) if diverged else "same"}'
        f'{extra}; {total}/{wanted} kills so far', flush=True)


def soak_coreset(out: str, kills_wanted: int, seed: int, data_dir: str | None,
                 max_kills_per_trial: int, timeout: float = 900.0
                 ) -> dict[str, object]:
  """The core-set soak: both methods in one run, killed in every phase."""
  rng = random.Random(seed)
  os.makedirs(out, exist_ok=True)
  scratch = tempfile.mkdtemp(prefix='svp_soak_coreset_')
  hangs = []
  methods = '+'.join(METHODS)
  workdir = os.path.join(scratch, 'reference')
  reference_seconds = reference_run(coreset_command(workdir, data_dir), rng,
                                    timeout, hangs, {'method': methods})
  reference = coreset_outcome(workdir)
  kills, trials = [], []
  trial = 0
  while len(kills) < kills_wanted:
    workdir = os.path.join(scratch, f'trial_{trial}')
    new, wall = resume_until_done(
        coreset_command(workdir, data_dir), workdir, CORESET_PHASES, rng,
        min(max_kills_per_trial, kills_wanted - len(kills)), timeout, hangs,
        {'trial': trial, 'method': methods})
    kills.extend(new)
    diverged = differences(reference, coreset_outcome(workdir))
    trials.append({'trial': trial, 'method': methods, 'kills': len(new),
                   'divergent': ' '.join(diverged),
                   'wall_seconds': round(wall, 1),
                   'uninterrupted_seconds': round(reference_seconds, 1)})
    if not diverged:
      shutil.rmtree(workdir)
    _progress(trial, methods, len(new), diverged, len(kills), kills_wanted)
    trial += 1
  summary = write_results(out, kills, trials, hangs, seed,
                          title='Preemption soak: the core-set job')
  if not summary['divergent_trials']:
    shutil.rmtree(scratch, ignore_errors=True)
  return summary


# ----------------------------------------------------------------------------
# The labeling soak: a person answers between the commands and the kills.


class Person:
  """Answers a loop's query files from the files' known labels, as
  scripts/answer_queries.py does, and remembers every answer written."""

  def __init__(self, workdir: str, truth, names: tuple[str, ...],
               rng: random.Random):
    self.workdir, self.truth, self.names, self.rng = (workdir, truth, names,
                                                      rng)
    self.written = {}  # (query file, id) -> the answer last written there.
    self.ever = collections.defaultdict(set)  # id -> every answer written.
    self.corrections = 0

  def newest(self) -> str:
    from svp_jax import labeling
    return labeling.query_path(self.workdir,
                               labeling.query_rounds(self.workdir)[-1])

  def answer(self, path: str, skip: float = 0.0, wrong: int = 0,
             keep: bool = False) -> list[int]:
    """Fills in `path` (all, or leaving a `skip` share blank, or `wrong`
    answers the wrong class); `keep`: answered rows stay as they are.
    Returns the ids answered wrong."""
    from svp_jax import labeling
    with open(path, encoding='utf-8', newline='') as f:
      rows = list(csv.DictReader(f))
    wrong_ids = self.rng.sample([int(r['id']) for r in rows], wrong)
    for row in rows:
      index = int(row['id'])
      if keep and row['answer']:
        continue
      if self.rng.random() < skip:
        row['answer'] = ''
        continue
      label = int(self.truth[index])
      if index in wrong_ids:
        label = (label + 1) % len(self.names)
      row['answer'] = self.names[label]
    labeling.write_rows(path, rows, labeling.QUERY_COLUMNS)
    name = os.path.relpath(path, self.workdir)
    for row in rows:
      if row['answer']:
        key = (name, int(row['id']))
        if self.written.get(key, row['answer']) != row['answer']:
          self.corrections += 1
        self.written[key] = row['answer']
        self.ever[int(row['id'])].add(row['answer'])
    return wrong_ids

  def lost(self) -> set[tuple[str, int]]:
    """Answers written that are neither in their file nor in the store."""
    from svp_jax import labeling
    store = {r['id']: r['label'] for r in labeling.read_store(self.workdir)}
    files = {}
    gone = set()
    for (name, index), answer in self.written.items():
      if name not in files:
        path = os.path.join(self.workdir, name)
        files[name] = {}
        if os.path.exists(path):
          with open(path, encoding='utf-8', newline='') as f:
            files[name] = {int(r['id']): r['answer']
                           for r in csv.DictReader(f)}
      if (files[name].get(index) != answer
          and store.get(index) != answer):
        gone.add((name, index))
    return gone

  def changed(self) -> list[int]:
    """Ids whose stored label is not the person's last answer, or whose
    history holds a label the person never wrote."""
    from svp_jax import labeling
    store = labeling.read_store(self.workdir)
    last = {}
    for (_, index), answer in sorted(self.written.items()):
      last[index] = answer
    current = {r['id']: r['label'] for r in store}
    bad = {i for i, a in last.items() if current.get(i) != a}
    bad |= {r['id'] for r in store if r['label'] not in self.ever[r['id']]}
    return sorted(bad)


def label_outcome(workdir: str) -> dict[str, object]:
  """What a finished loop selected and computed, without seconds."""
  from svp_jax import labeling
  found = {name: text for name, text in _index_files(workdir).items()
           if name.startswith('queries')}
  found['rounds.csv'] = _columns(
      os.path.join(workdir, labeling.ROUNDS_CSV),
      ('round', 'labeled', 'asked', 'answered', 'selector_accuracy'))
  found['target.csv'] = _columns(os.path.join(workdir, 'target.csv'),
                                 COMPARED['target.csv'])
  found['labeled.csv'] = _columns(
      os.path.join(workdir, labeling.EXPORT_CSV), ('id', 'label', 'split'))
  found['labels'] = sorted((r['id'], r['label'])
                           for r in current_store(workdir))
  return found


def current_store(workdir: str) -> list[dict[str, Any]]:
  from svp_jax import labeling
  last = {}
  for row in labeling.read_store(workdir):
    last[row['id']] = row
  return list(last.values())


def digits_folder(scratch: str) -> str:
  """The scikit-learn digits as a PNG folder per class (real images)."""
  import importlib.util
  import numpy as np
  spec = importlib.util.spec_from_file_location(
      'write_own_data_examples',
      os.path.join(REPO, 'scripts', 'write_own_data_examples.py'))
  writer = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(writer)
  images, labels = writer.read_digits(writer.digits_path())
  return writer.write_digits_folder(scratch, images, labels,
                                    np.zeros(len(labels), bool))


def known_labels(workdir: str):
  """The pool's labels and class names, as scripts/answer_queries.py reads
  them from the run's config.json."""
  import importlib.util
  import ml_collections
  spec = importlib.util.spec_from_file_location(
      'answer_queries', os.path.join(REPO, 'scripts', 'answer_queries.py'))
  answer_queries = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(answer_queries)
  return answer_queries.known_labels(ml_collections.ConfigDict(
      results.read_json(os.path.join(workdir, 'config.json'))))


def label_loop(workdir: str, images: str, data_dir: str, rng: random.Random,
               kills_allowed: int, max_kills: int, timeout: float,
               hangs: list[dict], trial: Any, truth=None
               ) -> tuple[list[dict], dict[str, Any]]:
  """One labeling loop to its end (3 rounds, train_target, export), killed
  at most `kills_allowed` times, `max_kills` a command.

  Returns its kills and its record (wall seconds, lost and changed answers,
  corrections, ways the person answered, the known labels).
  """
  may_kill = lambda: len(kills) < kills_allowed
  from svp_jax import labeling
  kills, wall, lost, person = [], 0.0, set(), None
  ways = []
  steps = [('query', r) for r in range(LABEL_ROUNDS)] + [('train_target',
                                                          None)]
  for action, round_index in steps:
    cmd = label_command(workdir, images, data_dir, action)
    step = (f'query round {round_index}' if action == 'query'
            else 'train_target')
    way, wrong = PERSON_WAYS[0], []
    if person is not None:  # Something is asked: the person answers.
      if may_kill():
        way = rng.choice(PERSON_WAYS)
      ways.append(way)
      if way == PERSON_WAYS[1]:
        person.answer(person.newest(), skip=0.5, keep=True)
      else:
        wrong = person.answer(person.newest(),
                              wrong=int(way == PERSON_WAYS[2]))
    phases = label_phases(action, round_index)
    step_kills = 0
    while True:
      label = {'trial': trial, 'step': step, 'person': way}
      forced = None
      if way == PERSON_WAYS[1]:  # Killed once its merge is written.
        forced = ('merging (half answered)', phases['merging'])
      elif way == PERSON_WAYS[2]:  # Killed once its training has saved.
        role = 'target' if action == 'train_target' else 'selector'
        forced = (f'{role} training (one answer wrong)',
                  Aim(rf'{role} \w+ n=\d+: saved at epoch'))
      killing = forced is not None or (step_kills < max_kills and may_kill())
      phase, aim, nth, sig_name, delay = phase_draw(rng, phases)
      if forced:
        (phase, aim), nth, delay = forced, 1, 0.0
      start = time.monotonic()
      status, after, seconds, sent = attempt(
          cmd, aim if killing else None, delay,
          SIGNALS[sig_name] if killing else None, rng, timeout, workdir, nth)
      wall += time.monotonic() - start
      if person is None and os.path.exists(os.path.join(workdir,
                                                        'config.json')):
        if truth is None:
          truth = known_labels(workdir)
        person = Person(workdir, truth[0], tuple(truth[1]), rng)
      if person is not None:
        lost |= person.lost()
      if status == preemption.HUNG_STATUS:
        hangs.append(dict(label, after_line=after))
        continue
      asked = labeling.query_rounds(workdir)
      # A query is done once its round is asked (its index written), even
      # if killed after that; train_target once it exits 0.
      done = (bool(asked) and asked[-1] == round_index if action == 'query'
              else status == 0)
      if sent:
        if status not in expected_statuses(sig_name):
          raise RuntimeError(f'{label}: exit status {status} after '
                             f'{sig_name}; workdir kept: {workdir}')
        if forced and status == 0:
          raise RuntimeError(f'{label}: the kill in {phase} came after the '
                             f'command finished; workdir kept: {workdir}')
        step_kills += 1
        kills.append(dict(label, signal=sig_name, exit_status=status,
                          phase=phase, after_line=after,
                          seconds_into_attempt=round(seconds, 2)))
      elif status != 0 or not done:
        raise RuntimeError(f'{label}: exit status {status} unkilled, the step '
                           f'{"done" if done else "not done"}; workdir kept: '
                           f'{workdir}')
      if done:
        break
      if forced:  # The person finishes what the kill interrupted.
        if way == PERSON_WAYS[1]:
          person.answer(person.newest(), keep=True)
        else:
          person.answer(person.newest())  # The wrong one corrected.
        way = f'{way} (done)'
        continue
      if person is not None and asked and rng.random() < 0.5:
        person.answer(person.newest())  # Answers again: nothing changes.
      left = [p for p in (labeling.query_path(workdir, r)
                          for r in range(LABEL_ROUNDS)
                          if r not in asked)
              if os.path.exists(p)]
      if person is not None and left and rng.random() < 0.5:
        # A query file its killed run left without its index: a person
        # sees it and answers.
        person.answer(left[0])
  status, after, _, _ = attempt(
      label_command(workdir, images, data_dir, 'export'), None, 0.0, None, rng,
      timeout)
  if status != 0:
    raise RuntimeError(f'trial {trial}: export failed ({status}); workdir '
                       f'kept: {workdir}')
  return kills, {'wall_seconds': wall, 'lost': sorted(lost),
                 'changed': person.changed(),
                 'corrections': person.corrections,
                 'answers': len(person.written), 'ways': ways,
                 'truth': truth}


def soak_label(out: str, kills_wanted: int, seed: int,
               max_kills_per_trial: int, timeout: float = 600.0
               ) -> dict[str, object]:
  """The labeling soak: loops killed in every phase, a person answering."""
  rng = random.Random(seed)
  os.makedirs(out, exist_ok=True)
  scratch = tempfile.mkdtemp(prefix='svp_soak_label_')
  images = digits_folder(scratch)
  data_dir = os.path.join(scratch, 'tfds')
  hangs = []
  workdir = os.path.join(scratch, 'reference')
  _, record = label_loop(workdir, images, data_dir, rng, 0, 0, timeout,
                         hangs, 'reference')
  if record['lost'] or record['changed']:
    raise RuntimeError(f'the uninterrupted loop lost answers: {record}')
  reference = label_outcome(workdir)
  reference_seconds, truth = record['wall_seconds'], record['truth']
  kills, trials = [], []
  trial = 0
  while len(kills) < kills_wanted:
    workdir = os.path.join(scratch, f'trial_{trial}')
    new, record = label_loop(workdir, images, data_dir, rng,
                             kills_wanted - len(kills), max_kills_per_trial,
                             timeout, hangs, trial, truth)
    kills.extend(new)
    diverged = differences(reference, label_outcome(workdir))
    trials.append({
        'trial': trial, 'kills': len(new), 'divergent': ' '.join(diverged),
        'lost': ' '.join(f'{n}:{i}' for n, i in record['lost']),
        'changed': ' '.join(str(i) for i in record['changed']),
        'answers': record['answers'], 'corrections': record['corrections'],
        'person': '; '.join(record['ways']),
        'wall_seconds': round(record['wall_seconds'], 1),
        'uninterrupted_seconds': round(reference_seconds, 1)})
    bad = diverged or record['lost'] or record['changed']
    if not bad:
      shutil.rmtree(workdir)
    _progress(trial, 'labeling loop', len(new), diverged, len(kills),
              kills_wanted, f', {len(record["lost"])} lost, '
              f'{len(record["changed"])} changed')
    trial += 1
  summary = write_results(
      out, kills, trials, hangs, seed,
      title='Preemption soak: the labeling loop',
      kill_columns=('trial', 'step', 'person', 'signal', 'exit_status',
                    'phase', 'after_line', 'seconds_into_attempt'),
      trial_columns=('trial', 'kills', 'divergent', 'lost', 'changed',
                     'answers', 'corrections', 'person', 'wall_seconds',
                     'uninterrupted_seconds'))
  if not (summary['divergent_trials'] or summary['lost_answers']
          or summary['changed_answers']):
    shutil.rmtree(scratch, ignore_errors=True)
  return summary


# ----------------------------------------------------------------------------
# Results.


def write_results(out: str, kills: list[dict], trials: list[dict],
                  hangs: list[dict], seed: int,
                  title: str = 'Preemption soak',
                  kill_columns: tuple[str, ...] = (
                      'trial', 'method', 'signal', 'exit_status', 'phase',
                      'after_line', 'seconds_into_attempt'),
                  trial_columns: tuple[str, ...] = (
                      'trial', 'method', 'kills', 'divergent', 'wall_seconds',
                      'uninterrupted_seconds')) -> dict[str, object]:
  results.write_csv(os.path.join(out, 'kills.csv'), kills, kill_columns)
  results.write_csv(os.path.join(out, 'trials.csv'), trials, trial_columns)
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
  labels = ''
  if 'lost' in trial_columns:
    summary['lost_answers'] = sum(len(t['lost'].split()) for t in trials)
    summary['changed_answers'] = sum(len(t['changed'].split())
                                     for t in trials)
    summary['answers_written'] = sum(t['answers'] for t in trials)
    summary['corrections_made'] = sum(t['corrections'] for t in trials)
    labels = (f' Answers the person wrote: {summary["answers_written"]} '
              f'(corrections among them: {summary["corrections_made"]}); '
              f'lost (neither in their file nor in labels.csv after an '
              f'attempt): {summary["lost_answers"]}; changed (labels.csv not '
              f'holding the last answer at the end): '
              f'{summary["changed_answers"]}.')
  rows = [{'phase': phase, 'signal': sig, 'kills': n}
          for (phase, sig), n in sorted(by_phase.items())]
  shown = ('trial', 'method', 'divergent') if 'method' in trial_columns else (
      'trial', 'divergent', 'lost', 'changed')
  bad = [t for t in trials if t['divergent'] or t.get('lost')
         or t.get('changed')]
  results.write_json(os.path.join(out, 'soak.json'), summary)
  results.write_text(
      os.path.join(out, 'soak.md'),
      f'# {title}\n\n'
      f'{len(trials)} trials, {len(kills)} kills, {len(divergent)} divergent '
      f'trials (seed {seed}).{labels} Mean wall seconds lost per kill (a '
      'trial\'s wall time over all its attempts, less the uninterrupted '
      f'run\'s, per kill): {summary["mean_seconds_lost_per_kill"]}. Runs '
      'aborted by the hang watchdog (preemption.hang_minutes='
      f'{HANG_MINUTES:g}) and resumed: {len(hangs)}.\n\n'
      '## Kills per phase and signal\n\n'
      + results.markdown_table(rows, ('phase', 'signal', 'kills')) + '\n'
      + ('## Divergent trials\n\n' + results.markdown_table(bad, shown)
         if bad else 'No trial diverged.\n'))
  return summary


def main(argv):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  parser.add_argument('--out', required=True)
  parser.add_argument('--jobs', default=','.join(JOBS),
                      help=f'comma-separated, of {", ".join(JOBS)}')
  parser.add_argument('--kills', type=int, default=200, help='per job')
  parser.add_argument('--seed', type=int, default=0)
  parser.add_argument('--data_dir', default=None)
  parser.add_argument('--max_kills_per_trial', type=int, default=3)
  args = parser.parse_args(argv)
  jobs = [j.strip() for j in args.jobs.split(',') if j.strip()]
  unknown = sorted(set(jobs) - set(JOBS))
  if unknown or not jobs:
    parser.error(f'--jobs={args.jobs!r}: expected some of {", ".join(JOBS)}')
  failed = False
  for job in jobs:
    out = args.out if len(jobs) == 1 else os.path.join(args.out, job)
    if job == 'active':
      summary = soak(out, args.kills, args.seed, args.data_dir,
                     args.max_kills_per_trial)
    elif job == 'coreset':
      summary = soak_coreset(out, args.kills, args.seed, args.data_dir,
                             args.max_kills_per_trial)
    else:
      summary = soak_label(out, args.kills, args.seed,
                           args.max_kills_per_trial)
    print(json.dumps(dict(summary, job=job)), flush=True)
    failed |= bool(summary['divergent_trials'] or summary.get('lost_answers')
                   or summary.get('changed_answers'))
  return 1 if failed else 0


if __name__ == '__main__':
  sys.exit(main(sys.argv[1:]))
