"""One process per workdir: a lock held while a job reads or writes it.

Two processes in one workdir (two `query` commands of the labeling loop, a
run started twice) would overwrite each other's files, a query file a person
is answering among them. Every job holds the lock from before it reads or
writes anything in its workdir until it returns (`holds_workdir` on each
job's `run`); experiment.claim_workdir also takes it, for the rest of the
process, should a caller claim a workdir outside a job. A second process
gets one error naming the holder.

The lock is `fcntl.flock` on WORKDIR/.lock: the operating system releases it
when the process ends, however it ends, so a killed run never leaves a stale
lock behind. The file records who holds it (pid, host, command, mode) for
that message; its content is not the lock. Locks are re-entrant within a
process: a job that calls claim_workdir inside `hold` takes nothing twice.

On several processes (a multi-host run) only process 0 writes the workdir
(results.is_writer), so only it takes the lock; the others learn through one
collective whether it got it, and all of them stop if it did not.
"""

from collections.abc import Callable, Iterator
import contextlib
import dataclasses
import datetime
import errno
import fcntl
import functools
import json
import os
import socket
import sys

from typing import Any, TypeVar

from svp_jax import results

LOCK_FILE = '.lock'
T = TypeVar('T')


class WorkdirError(ValueError):
  """The workdir cannot be used: another process holds it, or it is not a
  folder this process can create or write."""


@dataclasses.dataclass
class _Held:
  fd: int | None  # None on processes that do not write (no file lock).
  count: int  # Open `hold` blocks; a process-life lock keeps one forever.
  created: bool  # This process created the workdir.


_held: dict[str, _Held] = {}


def lock_path(workdir: str) -> str:
  return os.path.join(workdir, LOCK_FILE)


def is_held(workdir: str) -> bool:
  """Whether this process holds `workdir`'s lock."""
  return _key(workdir) in _held


def acquire(workdir: str, what: str):
  """Takes `workdir`'s lock for the rest of the process (no-op if held).

  For callers without `hold` around them (experiment.claim_workdir called
  directly); the process's end releases it.
  """
  if not is_held(workdir):
    _take(workdir, what).count = 1


@contextlib.contextmanager
def hold(workdir: str, what: str) -> Iterator[None]:
  """Holds `workdir`'s lock while the block runs (re-entrant).

  `what` (the job's mode) goes into the message another process gets.
  Raises WorkdirError if another process holds it or the workdir cannot be
  a folder. A workdir this block created and left holding only the lock
  file is removed again: a job that failed its checks leaves nothing.
  """
  key = _key(workdir)
  held = _held.get(key) or _take(workdir, what)
  held.count += 1
  try:
    yield
  finally:
    held.count -= 1
    if held.count == 0:
      _release(key, held)


def holds_workdir(job: Callable[[Any, str], T]) -> Callable[[Any, str], T]:
  """`job(config, workdir)` run holding `workdir`'s lock, released when it
  returns: a job called in-process (a test, a script) frees its workdir as
  main.py's does, and keeps no lock file open for the rest of the process."""

  @functools.wraps(job)
  def held(config: Any, workdir: str) -> T:
    with hold(workdir, str(config.get('mode'))):
      return job(config, workdir)

  return held


def _key(workdir: str) -> str:
  return os.path.realpath(workdir)


def _take(workdir: str, what: str) -> _Held:
  """Locks `workdir` (process 0's file lock, agreed by every process)."""
  key = _key(workdir)
  failure, held = None, None
  if results.is_writer():
    try:
      held = _lock(workdir, what)
    except WorkdirError as e:
      failure = e
  if _process_count() > 1:
    from svp_jax import preemption  # pylint: disable=g-import-not-at-top
    (failed,) = preemption.any_process((failure is not None,))
    if failed and failure is None:
      if held is not None:
        _release(key, held)
      raise WorkdirError(f'process 0 could not lock workdir {workdir!r} '
                         '(its error line says why); nothing was changed')
    held = held or _Held(None, 0, False)
  if failure is not None:
    raise failure
  _held[key] = held
  return held


def _process_count() -> int:
  jax = sys.modules.get('jax')  # As results.is_writer: no JAX, one process.
  return 1 if jax is None else jax.process_count()


def _lock(workdir: str, what: str) -> _Held:
  """This process's flock on WORKDIR/.lock, its holder recorded."""
  if os.path.exists(workdir) and not os.path.isdir(workdir):
    raise WorkdirError(f'--workdir={workdir!r} is a file, not a folder: give '
                       'a folder (it is created if missing); nothing was '
                       'changed')
  created = not os.path.exists(workdir)
  path = lock_path(workdir)
  while True:
    try:
      os.makedirs(workdir, exist_ok=True)
    except OSError as e:
      raise WorkdirError(f'--workdir={workdir!r}: cannot create the folder '
                         f'({e.strerror or e}); give a folder you can write'
                         ) from None
    try:
      fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
      raise WorkdirError(f'--workdir={workdir!r}: cannot open its lock file '
                         f'{path} ({e.strerror or e}); give a folder you can '
                         'write') from None
    try:
      fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as e:
      holder = _read_holder(fd)
      os.close(fd)
      if e.errno not in (errno.EAGAIN, errno.EACCES):
        raise WorkdirError(f'--workdir={workdir!r}: cannot lock {path} '
                           f'({e.strerror or e})') from None
      raise WorkdirError(
          f'workdir {workdir!r} is in use by another process ({holder}); '
          'wait for it to finish or stop it, or choose another --workdir. '
          'Nothing was changed.') from None
    # A holder that removed its empty workdir unlinked the file we opened:
    # lock the file that is there now instead.
    if _same_file(fd, path):
      break
    os.close(fd)
  _record_holder(fd, what)
  return _Held(fd, 0, created)


def _same_file(fd: int, path: str) -> bool:
  try:
    here, there = os.fstat(fd), os.stat(path)
  except OSError:
    return False
  return (here.st_dev, here.st_ino) == (there.st_dev, there.st_ino)


def _record_holder(fd: int, what: str):
  holder = {'pid': os.getpid(), 'host': socket.gethostname(),
            'mode': what, 'command': ' '.join(sys.argv),
            'since': datetime.datetime.now().astimezone().isoformat(
                timespec='seconds')}
  os.ftruncate(fd, 0)
  os.pwrite(fd, (json.dumps(holder, sort_keys=True) + '\n').encode(), 0)


def _read_holder(fd: int) -> str:
  """Who holds the lock, as its file says."""
  try:
    holder = json.loads(os.pread(fd, 65536, 0).decode())
    return (f'pid {holder["pid"]} on host {holder["host"]}, mode '
            f'{holder["mode"]}, since {holder["since"]}: {holder["command"]}')
  except (OSError, ValueError, KeyError, TypeError):
    return 'which has not recorded itself in the lock file yet'


def _release(key: str, held: _Held):
  """Unlocks; removes a workdir this process created that holds nothing
  but the lock file."""
  _held.pop(key, None)
  if held.fd is None:
    return
  with contextlib.suppress(OSError):
    if held.created and os.listdir(key) == [LOCK_FILE]:
      os.remove(lock_path(key))
      os.rmdir(key)
  os.close(held.fd)  # Releases the flock.
