"""JAX's persistent compilation cache: compile once per machine, not per run.

A run compiles its training, scoring and ranking steps once (svp_jax.train
keys every jitted step by model and shape); with the persistent cache, the
compiled executables are also written to a folder, so a resumed run, a
second seed or a second method on the same machine reads them back instead
of compiling again (BUILD.md, "Compilation cache", says what that saves).

Where (`chosen_dir`): main.py's --compilation_cache, else
$SVP_JAX_COMPILATION_CACHE, else `default_dir()`: svp_jax/jax under the
user's cache folder ($XDG_CACHE_HOME, else ~/.cache). 'off' turns it off.
JAX keys entries by the computation, the compile options, the backend and
the JAX version, so one folder serves every run and version safely.
"""

import os

from absl import logging
import jax

CACHE_ENV = 'SVP_JAX_COMPILATION_CACHE'
OFF = 'off'
# Compilations shorter than this are not written (JAX's default is 1 s; the
# jitted steps of small models compile in 0.1-1 s on a CPU, and they add up
# over a run's training, scoring and ranking steps).
MIN_COMPILE_SECONDS = 0.1


class CacheError(ValueError):
  """The chosen cache folder cannot be used."""


def default_dir() -> str:
  base = os.environ.get('XDG_CACHE_HOME') or os.path.join(
      os.path.expanduser('~'), '.cache')
  return os.path.join(base, 'svp_jax', 'jax')


def chosen_dir(choice: str | None) -> str | None:
  """The folder for `choice` (flag value; None: env, then default), or None
  when the cache is off."""
  if choice is None:
    choice = os.environ.get(CACHE_ENV) or default_dir()
  if choice.strip().lower() == OFF:
    return None
  return os.path.abspath(os.path.expanduser(choice))


def configure(choice: str | None) -> str | None:
  """Turns the cache on in the chosen folder; returns it (None: off).

  Raises CacheError when the folder cannot be created or written.
  """
  folder = chosen_dir(choice)
  if folder is None:
    logging.info('Persistent compilation cache: off')
    return None
  try:
    os.makedirs(folder, exist_ok=True)
  except OSError as e:
    raise CacheError(f'--compilation_cache={folder!r}: cannot create the '
                     f'folder ({e.strerror}); give a writable folder or '
                     f'{OFF!r}') from None
  if not os.access(folder, os.W_OK | os.X_OK):
    raise CacheError(f'--compilation_cache={folder!r} is not writable; give '
                     f'a writable folder or {OFF!r}')
  jax.config.update('jax_compilation_cache_dir', folder)
  jax.config.update('jax_persistent_cache_min_compile_time_secs',
                    MIN_COMPILE_SECONDS)
  entries = sum(1 for _ in os.scandir(folder))
  logging.info('Persistent compilation cache: %s (%d entries)', folder,
               entries)
  return folder
