"""Surviving preemption: stop requests and checkpoints inside a training.

An active run resumes at round boundaries from its round checkpoints
(svp_jax.active), a core-set run at its phases (svp_jax.coreset); this
module adds the pieces that let every job (train, active, coreset,
precomputed, label) resume *inside* a training:

* `TrainingCheckpoints` saves a training's progress (parameters, batch
  statistics, optimizer state, step, forgetting counters, the epoch and the
  step within it, the partial epoch's metric sums and the epoch history)
  through orbax, every `preemption.checkpoint_minutes` minutes and every
  `preemption.checkpoint_epochs` epochs (config), when a stop is requested,
  and once when the training ends, so that a run killed while it scores
  resumes without training again. The data order needs no saving: each epoch's
  shuffle and each step's augmentation derive from the run's key, the epoch
  and the step, so a restored training replays the remaining steps exactly.
* SIGTERM and SIGINT (`handle_stop_signals`) only *request* a stop. The
  training finishes the step in flight, saves, and raises `Preempted`, which
  main.py turns into a line saying where the run stopped and how to resume,
  and exit status `PREEMPTED_STATUS`. A stop requested outside training
  (scoring, ranking) is honoured at the next phase boundary
  (`raise_if_stop_requested`); the round's completed trainings are on disk.
  On several processes every process decides at the same steps, from all
  processes' requests, so all stop (and save) at the same step.
* A hang (`Watchdog`): a run that reports no progress (`progress`: every
  training step, every scoring batch, every phase) and keeps no core busy
  (compiling is busy) for `preemption.hang_minutes` exits with
  `HUNG_STATUS` and a line naming the phase it was in, rather than wait in
  a collective that never completes;
  the same command resumes it from its last checkpoint. Data loading (a
  download may wait at little CPU) and ranking (one device computation;
  k-centers over a large pool may take long) are not watched.
"""

from collections.abc import Iterator
import contextlib
import dataclasses
import os
import shutil
import signal
import sys
import threading
import time
from typing import Any

from absl import logging
import jax
from jax.experimental import multihost_utils
import numpy as np
import orbax.checkpoint as ocp

from svp_jax import results

# Exit status of a run that stopped on request and can be resumed (BSD's
# EX_TEMPFAIL: "try again later").
PREEMPTED_STATUS = 75
# Exit status of a run aborted by the watchdog (BSD's EX_SOFTWARE).
HUNG_STATUS = 70
# Defaults of config.preemption: a save costs well under a second on the CPU
# for the models here (BUILD.md, "Resuming and preemption").
DEFAULT_MINUTES = 10.0
DEFAULT_EPOCHS = 0
DEFAULT_HANG_MINUTES = 30.0
# On several processes, how many steps apart they agree on stopping and
# saving (one small all-gather each time).
SYNC_EVERY_STEPS = 10

_stop_requested = threading.Event()


class Preempted(Exception):
  """The run stopped on request after saving; the same command resumes it."""


def request_stop(signum: int | None = None, frame: Any = None):
  """Asks the run to stop at its next safe point (a signal handler)."""
  del frame
  if signum is not None:
    logging.warning('Received %s: stopping after the step in flight.',
                    signal.Signals(signum).name)
  _stop_requested.set()


def stop_requested() -> bool:
  return _stop_requested.is_set()


def clear_stop_request():
  _stop_requested.clear()


@contextlib.contextmanager
def handle_stop_signals():
  """SIGTERM and SIGINT request a stop while the block runs (main thread)."""
  if threading.current_thread() is not threading.main_thread():
    yield
    return
  previous = {s: signal.signal(s, request_stop)
              for s in (signal.SIGTERM, signal.SIGINT)}
  try:
    yield
  finally:
    for s, handler in previous.items():
      signal.signal(s, handler)


def raise_if_stop_requested(where: str):
  """Raises Preempted at a phase boundary if a stop was requested."""
  (stop,) = any_process((stop_requested(),))
  if stop:
    raise Preempted(f'stopped {where}')


def any_process(flags: tuple[bool, ...]) -> tuple[bool, ...]:
  """Each flag OR-ed over all processes (a collective on several)."""
  if jax.process_count() == 1:
    return tuple(flags)
  gathered = multihost_utils.process_allgather(np.asarray(flags, np.int32))
  return tuple(bool(v) for v in np.any(gathered.reshape(-1, len(flags)),
                                       axis=0))


@dataclasses.dataclass(frozen=True)
class Policy:
  """When trainings save their progress, and when a run counts as hung."""

  minutes: float = DEFAULT_MINUTES  # Save every this many; 0: never by time.
  epochs: int = DEFAULT_EPOCHS  # Save every this many; 0: never by epochs.
  hang_minutes: float = DEFAULT_HANG_MINUTES  # 0: never abort.

  @classmethod
  def from_config(cls, config) -> 'Policy':
    """config.preemption's values (defaults where a config has none)."""
    section = config.get('preemption') if config is not None else None
    if section is None:
      return cls()
    return cls(float(section.checkpoint_minutes),
               int(section.checkpoint_epochs), float(section.hang_minutes))


# ----------------------------------------------------------------------------
# Hangs.

# The newest progress report: (time.monotonic(), what the run was doing).
_last_progress = [time.monotonic(), 'starting']
_watched = threading.Event()  # Cleared while an unwatched phase runs.
_watched.set()


def progress(doing: str):
  """Reports that the run is alive, doing `doing` (cheap: call per step)."""
  _last_progress[0], _last_progress[1] = time.monotonic(), doing


@contextlib.contextmanager
def unwatched(doing: str):
  """A phase that may take long in one device call: not a hang."""
  progress(doing)
  _watched.clear()
  try:
    yield
  finally:
    _watched.set()
    progress(f'after {doing}')


# Share of one core above which a process that reports no progress is busy
# (compiling, say), not hung.
BUSY_CPU_SHARE = 0.2


class Watchdog:
  """Exits the process when it has neither reported progress nor used the
  CPU for `minutes`."""

  def __init__(self, minutes: float, check_seconds: float | None = None):
    self.seconds = 60.0 * minutes
    self.check_seconds = check_seconds or max(0.05, min(30.0,
                                                        self.seconds / 10))
    self._stop = threading.Event()
    self._thread = None

  def __enter__(self):
    if self.seconds > 0:
      progress('starting')
      self._thread = threading.Thread(target=self._watch, daemon=True,
                                      name='svp_jax-watchdog')
      self._thread.start()
    return self

  def __exit__(self, *unused_exc):
    self._stop.set()
    if self._thread is not None:
      self._thread.join()

  def _watch(self):
    cpu, wall = time.process_time(), time.monotonic()
    while not self._stop.wait(self.check_seconds):
      # Compiling reports no progress but keeps a core busy; a collective
      # that never completes waits at 0% CPU (BUILD.md, "Running").
      now_cpu, now = time.process_time(), time.monotonic()
      if now_cpu - cpu >= BUSY_CPU_SHARE * (now - wall):
        _last_progress[0] = now
      cpu, wall = now_cpu, now
      since, doing = _last_progress
      idle = now - since
      if _watched.is_set() and idle > self.seconds:
        message = (f'error: no progress for {idle / 60:.1f} min while '
                   f'{doing} (preemption.hang_minutes='
                   f'{self.seconds / 60:g}); a collective that never '
                   'completes? Aborting: the same command resumes from the '
                   'last checkpoint.')
        logging.error(message)
        # Also bare, as main.py's other error lines: the process ends next.
        sys.stderr.write(message + '\n')
        sys.stderr.flush()
        os._exit(HUNG_STATUS)  # pylint: disable=protected-access


@contextlib.contextmanager
def guard(policy: Policy):
  """Stop signals handled and the watchdog on while the block runs."""
  with handle_stop_signals(), Watchdog(policy.hang_minutes):
    yield


@dataclasses.dataclass
class Progress:
  """A training's state between two steps: all a resume needs."""

  state: Any  # train.TrainState
  forgetting: Any  # Forgetting counters, or None.
  totals: Any  # The partial epoch's summed metrics (scalars), or None.
  epoch: int  # The epoch in progress, 0-based (== epochs when done).
  step: int  # Steps of `epoch` done.
  history: list[dict[str, float]]
  seconds: float  # Wall seconds of training before this process resumed it.


class TrainingCheckpoints:
  """One training's saved progress in `directory` (one checkpoint kept)."""

  def __init__(self, directory: str, policy: Policy, what: str):
    self.directory = os.path.abspath(directory)
    self.policy = policy
    self.what = what  # For log lines: 'target preact20 n=6000'.
    self._manager = None
    self.save_seconds = 0.0  # Spent saving: not the training's arithmetic.
    self._last_save = time.monotonic()
    self._last_epoch_saved = 0

  def _open(self) -> ocp.CheckpointManager:
    if self._manager is None:
      self._manager = ocp.CheckpointManager(
          self.directory,
          options=ocp.CheckpointManagerOptions(
              max_to_keep=1, enable_async_checkpointing=False),
          item_names=('arrays', 'meta'))
    return self._manager

  def restore(self, template: Progress) -> Progress | None:
    """The saved progress, restored into `template`'s shapes, or None."""
    if not os.path.isdir(self.directory):
      return None
    manager = self._open()
    step = manager.latest_step()
    if step is None:
      return None
    arrays = {'state': _abstract(template.state),
              'forgetting': _abstract(template.forgetting)}
    try:
      restored = manager.restore(step, args=ocp.args.Composite(
          arrays=ocp.args.StandardRestore(_present(arrays)),
          meta=ocp.args.JsonRestore()))
    except Exception as e:  # pylint: disable=broad-except
      # Training again from the start gives the very same result.
      logging.warning('%s: checkpoint %s cannot be read (%s: %s); training '
                      'from the start instead.', self.what, self.directory,
                      type(e).__name__, str(e).splitlines()[0])
      self.close()
      remove(self.directory)
      return None
    meta, saved = restored['meta'], restored['arrays']
    logging.info('%s: resuming at epoch %d, step %d (saved after %.0f s of '
                 'training)', self.what, meta['epoch'] + 1, meta['step'],
                 meta['seconds'])
    self._last_epoch_saved = meta['epoch']
    return Progress(saved['state'], saved.get('forgetting'),
                    _totals_from_json(meta['totals']), meta['epoch'],
                    meta['step'], meta['history'], meta['seconds'])

  def due(self, epoch_done: bool, epoch: int) -> bool:
    """Whether this process's policy asks for a save now.

    Clocks differ between processes: callers combine the answers with
    `any_process` before saving, a collective.
    """
    by_time = (self.policy.minutes > 0 and time.monotonic() - self._last_save
               >= 60.0 * self.policy.minutes)
    by_epochs = (epoch_done and self.policy.epochs > 0
                 and epoch - self._last_epoch_saved >= self.policy.epochs)
    return by_epochs or by_time

  def save(self, progress: Progress, why: str):
    start = time.perf_counter()
    manager = self._open()
    # Steps of the manager are save counts: the newest is the one kept.
    step = (manager.latest_step() or 0) + 1
    arrays = {'state': progress.state, 'forgetting': progress.forgetting}
    try:
      manager.save(step, args=ocp.args.Composite(
          arrays=ocp.args.StandardSave(_present(arrays)),
          meta=ocp.args.JsonSave({
              'epoch': progress.epoch, 'step': progress.step,
              'history': progress.history, 'seconds': progress.seconds,
              'totals': _totals_to_json(progress.totals)})))
      manager.wait_until_finished()
    except Exception as e:  # pylint: disable=broad-except
      raise results.WriteError(
          getattr(e, 'errno', None),
          f'cannot save {self.what} in {self.directory}: {e}; the previous '
          'checkpoint is intact') from e
    self._last_save = time.monotonic()
    self._last_epoch_saved = progress.epoch
    seconds = time.perf_counter() - start
    self.save_seconds += seconds
    logging.info('%s: saved at epoch %d, step %d (%s) in %.2f s', self.what,
                 progress.epoch + 1, progress.step, why, seconds)

  def close(self):
    if self._manager is not None:
      self._manager.close()
      self._manager = None


@contextlib.contextmanager
def training_checkpoints(directory: str, policy: Policy, what: str
                         ) -> Iterator[TrainingCheckpoints]:
  """One training's TrainingCheckpoints, closed when the block ends."""
  checkpoints = TrainingCheckpoints(directory, policy, what)
  try:
    yield checkpoints
  finally:
    checkpoints.close()


def _totals_to_json(totals: dict[str, Any] | None) -> dict[str, Any] | None:
  """Scalar metric sums as (dtype, value): a float holds a float32 exactly."""
  if totals is None:
    return None
  return {k: [str(np.asarray(v).dtype), np.asarray(v).item()]
          for k, v in jax.device_get(totals).items()}


def _totals_from_json(saved: dict[str, Any] | None) -> dict[str, Any] | None:
  if saved is None:
    return None
  return {k: jax.numpy.asarray(value, dtype) for k, (dtype, value)
          in saved.items()}


def _present(tree: dict[str, Any]) -> dict[str, Any]:
  """Drops None entries: orbax stores no empty items."""
  return {k: v for k, v in tree.items() if v is not None}


def _abstract(tree: Any) -> Any:
  if tree is None:
    return None
  return jax.tree.map(
      lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding)
      if isinstance(x, jax.Array) else x, tree)


def remove(directory: str):
  """Deletes checkpoints no longer needed (process 0 only)."""
  if jax.process_index() == 0 and os.path.isdir(directory):
    shutil.rmtree(directory)
