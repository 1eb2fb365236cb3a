"""Result files a person can read: JSON, JSON lines and Markdown tables.

Only process 0 writes, so multi-host runs produce one copy of each file.
"""

from collections.abc import Mapping, Sequence
import json
import os
from typing import Any

import jax


def is_writer() -> bool:
  return jax.process_index() == 0


def write_json(path: str, value: Any):
  if is_writer():
    os.makedirs(os.path.dirname(path) or '.', exist_ok=True)
    tmp = path + '.tmp'
    with open(tmp, 'w') as f:
      json.dump(value, f, indent=2, sort_keys=True, default=str)
      f.write('\n')
    os.replace(tmp, path)  # Never leave a half-written file behind.


def append_jsonl(path: str, record: Mapping[str, Any]):
  if is_writer():
    with open(path, 'a') as f:
      f.write(json.dumps(record, sort_keys=True) + '\n')


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
    with open(path, 'w') as f:
      f.write(text)
