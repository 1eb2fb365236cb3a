"""Small text helpers shared by the report's Markdown writers."""

from svp_jax import results


def write_text(path: str, content: str):
  # UTF-8 whatever the locale: the tables hold ±, ×, ✓ and —.
  with results.atomic_open(path, encoding='utf-8') as f:
    f.write(content)


def count(n: int, noun: str) -> str:
  """'1 run', '3 runs'."""
  return f'{n} {noun}' + ('' if n == 1 else 's')


def percent(size: int, pool: int) -> str:
  return f'{100.0 * size / pool:.3g}%'


def notes(lines: list[str]) -> str:
  """Paragraphs after a table, one per note."""
  return ''.join(f'{n}\n\n' for n in lines)
