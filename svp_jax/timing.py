"""How much of a timed phase was JAX compiling (tracing, lowering, compiling).

JAX reports each compile phase as a time span ('/jax/core/compile/...'
events of jax.monitoring: tracing a jaxpr, lowering it to MLIR, the backend
compile). `install` registers one listener that keeps those spans; `timed`
runs a phase and splits its wall time into compiling and running, so run
files can show compile seconds as their own column and the phases' own
seconds as what the arithmetic cost (issue 23). Spans nest (tracing an outer
function traces the inner ones), so a phase's compile seconds are the length
of the union of its spans, never their sum.

A persistent-cache hit still reports a (short) backend-compile span: it is
the time spent reading the executable, and counts as compiling.
"""

from collections.abc import Callable, Iterable
import collections
import dataclasses
import threading
import time
from typing import Any, TypeVar

import jax

COMPILE_EVENT_PREFIX = '/jax/core/compile/'

_lock = threading.Lock()
_spans: list[tuple[float, float]] = []  # (start, end), time.time() seconds.
_counts: collections.Counter = collections.Counter()
_compiled: collections.Counter = collections.Counter()  # By function name.
BACKEND_COMPILE = 'backend_compile_duration'
_installed = False

T = TypeVar('T')


def _on_span(event: str, start: float, end: float, **kwargs):
  if event.startswith(COMPILE_EVENT_PREFIX):
    name = event[len(COMPILE_EVENT_PREFIX):]
    with _lock:
      _spans.append((start, end))
      _counts[name] += 1
      if name == BACKEND_COMPILE:
        _compiled[str(kwargs.get('fun_name'))] += 1


def install():
  """Starts recording compile spans (once per process; idempotent)."""
  global _installed
  with _lock:
    if _installed:
      return
    _installed = True
  jax.monitoring.register_event_time_span_listener(_on_span)


def compile_counts() -> dict[str, int]:
  """Compile events so far, by name (e.g. 'backend_compile_duration')."""
  with _lock:
    return dict(_counts)


def compiled_functions() -> dict[str, int]:
  """Backend compiles so far, by the compiled function's name."""
  with _lock:
    return dict(_compiled)


def union_seconds(spans: Iterable[tuple[float, float]]) -> float:
  """Total length of the union of (start, end) intervals."""
  total, reach = 0.0, float('-inf')
  for start, end in sorted(spans):
    if end <= reach:
      continue
    total += end - max(start, reach)
    reach = end
  return total


def compile_seconds_between(start: float, end: float) -> float:
  """Seconds of [start, end] (time.time()) during which JAX compiled."""
  with _lock:
    spans = [(max(s, start), min(e, end)) for s, e in _spans
             if e > start and s < end]
  return union_seconds(spans)


@dataclasses.dataclass(frozen=True)
class Timed:
  """A phase's wall seconds, split into compiling and the rest."""

  seconds: float
  compile_seconds: float

  @property
  def run_seconds(self) -> float:
    return max(self.seconds - self.compile_seconds, 0.0)


def timed(fn: Callable[..., T], *args: Any, **kwargs: Any) -> tuple[T, Timed]:
  """Calls fn(*args, **kwargs); returns its result and how long it took.

  The caller makes sure the result is ready (on the host) when `fn`
  returns, or the split measures dispatch, not work.
  """
  install()
  start = time.time()
  perf_start = time.perf_counter()
  result = fn(*args, **kwargs)
  seconds = time.perf_counter() - perf_start
  compiling = compile_seconds_between(start, time.time())
  return result, Timed(seconds, min(compiling, seconds))

