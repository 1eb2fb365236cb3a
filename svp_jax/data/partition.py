"""How examples are split: among hosts (processes), and into train and test."""

import jax
import numpy as np


def process_slice(num_examples: int, process_index: int | None = None,
                  process_count: int | None = None) -> slice:
  """This process's contiguous share of `range(num_examples)`.

  Shares differ in size by at most one and, in process order, tile the range
  exactly, so the processes together see every example once.

  Args:
    num_examples: size of the range to split.
    process_index: which share (default `jax.process_index()`).
    process_count: number of shares (default `jax.process_count()`).
  """
  if process_index is None:
    process_index = jax.process_index()
  if process_count is None:
    process_count = jax.process_count()
  if num_examples < 0 or process_count < 1:
    raise ValueError(f'num_examples={num_examples} must be >= 0 and '
                     f'process_count={process_count} >= 1')
  if not 0 <= process_index < process_count:
    raise ValueError(f'process_index={process_index} is not in '
                     f'[0, {process_count})')
  # Rounded-down boundaries i * n / p: consecutive, and no two shares differ
  # by more than one example.
  return slice(process_index * num_examples // process_count,
               (process_index + 1) * num_examples // process_count)


def stratified_split(classes: np.ndarray, test_fraction: float,
                     seed: int) -> tuple[np.ndarray, np.ndarray]:
  """Sorted train and test indices; each class split at `test_fraction`."""
  rng = np.random.default_rng(seed)
  test = []
  for c in np.unique(classes):
    members = np.flatnonzero(classes == c)
    num_test = int(round(len(members) * test_fraction))
    test.append(rng.permutation(members)[:num_test])
  test = np.sort(np.concatenate(test))
  train = np.setdiff1d(np.arange(len(classes)), test)
  return train, test
