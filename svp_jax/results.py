"""Result files a person can read: JSON, JSON lines, CSV and Markdown tables.

Only process 0 writes, so multi-host runs produce one copy of each file.
Imports no JAX: a report reads and writes these files in a process that never
starts it.
"""

from collections.abc import Iterator, Mapping, Sequence
import contextlib
import csv
import errno
import json
import os
import sys
from typing import Any, IO


class WriteError(OSError):
  """A result file could not be written (a full disk, say); the previous
  version of it is intact."""


@contextlib.contextmanager
def atomic_open(path: str, mode: str = 'w', **kwargs) -> Iterator[IO[Any]]:
  """A file object whose content replaces `path` only once fully written.

  Written to a temporary file beside `path`, flushed to disk, renamed over
  it, then the folder flushed too: a kill or a full disk at any moment
  leaves either the old file or the new one, never part of one, and once
  this returns the new one survives a power loss, in the order files were
  written (a round's index never without the label store it follows). A
  failed write removes the temporary file and raises WriteError naming
  `path`.
  """
  folder = os.path.dirname(path) or '.'
  tmp = f'{path}.{os.getpid()}.tmp'
  try:
    os.makedirs(folder, exist_ok=True)
    with open(tmp, mode, **kwargs) as f:
      yield f
      f.flush()
      os.fsync(f.fileno())
    os.replace(tmp, path)
  except OSError as e:
    with contextlib.suppress(OSError):
      os.remove(tmp)
    raise WriteError(e.errno, f'cannot write {path}: {e.strerror or e}; its '
                     'previous version is intact') from e
  try:
    fsync_dir(folder)
  except OSError as e:
    raise WriteError(e.errno, f'{path} was written but its folder could not '
                     f'be flushed to disk ({e.strerror or e}): a power loss '
                     'may undo it') from e


def fsync_dir(folder: str):
  """Flushes `folder`'s entries (a rename into it) to disk.

  A file system that cannot flush a folder (EINVAL: some network and FUSE
  mounts) is left as it is: it offers nothing better.
  """
  fd = os.open(folder, os.O_RDONLY)
  try:
    os.fsync(fd)
  except OSError as e:
    if e.errno not in (errno.EINVAL, errno.ENOTSUP):
      raise
  finally:
    os.close(fd)


def is_writer() -> bool:
  """Whether this process writes result files: JAX's process 0.

  A process that never imported JAX (a report) is a job of its own, so it
  writes; importing JAX here would cost a report seconds and a backend.
  """
  jax = sys.modules.get('jax')
  return jax is None or jax.process_index() == 0


def write_json(path: str, value: Any):
  if is_writer():
    with atomic_open(path) as f:
      json.dump(value, f, indent=2, sort_keys=True, default=str)
      f.write('\n')


def append_jsonl(path: str, record: Mapping[str, Any]):
  if is_writer():
    with open(path, 'a') as f:
      f.write(json.dumps(record, sort_keys=True) + '\n')


def write_jsonl(path: str, records: Sequence[Mapping[str, Any]]):
  """Rewrites `path` with one JSON line per record (atomically)."""
  if is_writer():
    with atomic_open(path) as f:
      for record in records:
        f.write(json.dumps(record, sort_keys=True) + '\n')


def read_jsonl(path: str) -> list[dict[str, Any]]:
  with open(path) as f:
    return [json.loads(line) for line in f if line.strip()]


def markdown_table(rows: Sequence[Mapping[str, Any]],
                   columns: Sequence[str]) -> str:
  """A GitHub-style table; floats shown with 4 significant digits."""

  def cell(v):
    return f'{v:.4g}' if isinstance(v, float) else str(v)

  lines = ['| ' + ' | '.join(columns) + ' |',
           '|' + '---|' * len(columns)]
  lines += ['| ' + ' | '.join(cell(r.get(c, '')) for c in columns) + ' |'
            for r in rows]
  return '\n'.join(lines) + '\n'


def write_text(path: str, text: str):
  if is_writer():
    with atomic_open(path, encoding='utf-8') as f:
      f.write(text)


def write_csv(path: str, rows: Sequence[Mapping[str, Any]],
              columns: Sequence[str]):
  """Rewrites `path` with a header and one line per row (atomically)."""
  if is_writer():
    with atomic_open(path, newline='') as f:
      writer = csv.DictWriter(f, fieldnames=list(columns))
      writer.writeheader()
      for row in rows:
        writer.writerow({c: row.get(c, '') for c in columns})


def to_jsonable(value: Any) -> Any:
  """`value` as it reads back from JSON (tuples become lists, and so on)."""
  return json.loads(json.dumps(value, default=str))


def read_json(path: str) -> Any:
  with open(path) as f:
    return json.load(f)


def differing_keys(a: Any, b: Any, prefix: str = '') -> list[str]:
  """Dotted keys at which two nested dicts differ."""
  if not (isinstance(a, dict) and isinstance(b, dict)):
    return [] if a == b else [prefix or '<root>']
  keys = sorted(set(a) | set(b))
  return [d for k in keys
          for d in differing_keys(a.get(k), b.get(k),
                                  f'{prefix}.{k}' if prefix else k)]


def read_csv(path: str) -> list[dict[str, Any]]:
  """Rows of a CSV written by write_csv, numbers parsed back to float."""

  def parse(value):
    try:
      return float(value)
    except ValueError:
      return value

  with open(path, newline='') as f:
    return [{k: parse(v) for k, v in row.items()} for row in csv.DictReader(f)]
