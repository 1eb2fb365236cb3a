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

A run loads native code from that folder, so anyone who can write there
could make it run theirs: a folder writable by group or others, or owned by
another user, is refused (`check_private`); folders made here are 0700.

One exception, handled here: the oneDNN CPU convolutions
(svp_jax/cpu/conv.py) are `custom_partitioning` ops, whose lowering carries
the address of a Python callback, different in every process, so JAX's key
for any step that convolves never matched across processes. JAX can leave
that address out of the key (jax_remove_custom_partitioning_ptr_from_cache_key);
what it stood for, the partitioning code, is then keyed by the folder:
entries go to a subfolder named after a fingerprint of svp_jax/cpu's
convolution sources, so a changed partitioning never reads an old entry.
"""

import hashlib
import os
import pathlib
import shlex
import stat

from absl import logging
import jax

CACHE_ENV = 'SVP_JAX_COMPILATION_CACHE'
OFF = 'off'
# Compilations shorter than this are not written. JAX's default is 1 s, but
# a run's small jitted functions (key folding, metric sums, top-k) compile
# in 0.05-1 s each on a CPU, and together they cost a second or more.
MIN_COMPILE_SECONDS = 0.05


# What JAX's cache key cannot see of a custom_partitioning op: the Python
# code that partitions it (and the kernels it calls).
PARTITIONING_SOURCES = tuple(
    pathlib.Path(__file__).resolve().parent / 'cpu' / name
    for name in ('conv.py', os.path.join('csrc', 'conv.cc')))
_DROP_CALLBACK_ADDRESS = 'jax_remove_custom_partitioning_ptr_from_cache_key'


class CacheError(ValueError):
  """The chosen cache folder cannot be used."""


def partitioning_fingerprint() -> str:
  digest = hashlib.sha256()
  for path in PARTITIONING_SOURCES:
    digest.update(path.read_bytes())
  return digest.hexdigest()[:16]


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
  make_private_dir(folder)
  if not os.access(folder, os.W_OK | os.X_OK):
    raise CacheError(f'--compilation_cache={folder!r} is not writable; give '
                     f'a writable folder or {OFF!r}')
  try:
    jax.config.update(_DROP_CALLBACK_ADDRESS, True)
    folder = os.path.join(folder,
                          f'partitioning-{partitioning_fingerprint()}')
  except AttributeError:  # A JAX without the option: keys stay per process.
    logging.warning('This JAX (%s) has no %s: steps with oneDNN convolutions '
                    'compile again in every process', jax.__version__,
                    _DROP_CALLBACK_ADDRESS)
  make_private_dir(folder)
  jax.config.update('jax_compilation_cache_dir', folder)
  jax.config.update('jax_persistent_cache_min_compile_time_secs',
                    MIN_COMPILE_SECONDS)
  entries = sum(1 for _ in os.scandir(folder))
  logging.info('Persistent compilation cache: %s (%d entries)', folder,
               entries)
  return folder


def make_private_dir(folder: str):
  """Creates `folder` (0700) if missing; CacheError unless it is private."""
  try:
    os.makedirs(folder, mode=0o700, exist_ok=True)
  except OSError as e:
    raise CacheError(f'--compilation_cache={folder!r}: cannot create the '
                     f'folder ({e.strerror}); give a writable folder or '
                     f'{OFF!r}') from None
  check_private(folder)


def check_private(folder: str):
  """CacheError if others could put code in `folder`: writable by group or
  others, or owned by another user."""
  info = os.stat(folder)
  writers = [who for who, bit in (('group', stat.S_IWGRP),
                                  ('others', stat.S_IWOTH))
             if info.st_mode & bit]
  if writers:
    raise CacheError(
        f'--compilation_cache={folder!r} is writable by '
        f'{" and ".join(writers)} (mode {stat.S_IMODE(info.st_mode):04o}): '
        'a run loads compiled code from it, so anyone who can write there '
        f'could run theirs. Make it private (chmod go-w '
        f'{shlex.quote(folder)}), or give another folder or {OFF!r}')
  if info.st_uid != os.getuid():
    raise CacheError(
        f'--compilation_cache={folder!r} belongs to another user (uid '
        f'{info.st_uid}): a run loads compiled code from it, so its owner '
        f'could run theirs. Give a folder of your own, or {OFF!r}')
