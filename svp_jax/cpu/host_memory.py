"""Keep freed host memory in the process, so XLA:CPU steps reuse warm pages.

XLA:CPU takes every step's buffers from malloc and frees them after the step.
By default glibc gives large blocks back to the kernel (blocks above its mmap
threshold are unmapped on free; the heaps of per-thread arenas are trimmed),
so the next step faults in freshly zeroed pages all over again. Training
preact20 for 30 s on this project's 2-core benchmark machine took 4.4 million
minor page faults and 9.5 s of system time; with the settings below, 0.28
million and 1.6 s, and 1.4x the training throughput (docs/performance.md).

`retain_freed_memory()` tells glibc to serve all threads from one arena grown
with brk, never to mmap, and not to trim: freed memory stays with the process
for the next step. The process's peak memory stays about the same (training
preact164: 5.4-6.2 GB resident, against a 5.5 GB peak with glibc's
defaults); it just does not shrink after the peak.

Only for runs on the CPU: one arena serialises the malloc calls of every
thread, which a GPU or TPU host decoding images on a thread pool would feel,
and there the step buffers live on the device anyway. svp_jax.runtime
decides (--retain_host_memory) and calls this before JAX starts its
threads. It does nothing where libc is not glibc.
"""

import ctypes
import functools

# mallopt() parameters, from glibc's malloc.h.
_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_M_ARENA_MAX = -8
# A trim threshold of -1 reads as SIZE_MAX: never trim. (2**31 - 1 was not
# enough: preact164's 4.6 GB step buffer was still handed back every step.)
_SETTINGS = ((_M_ARENA_MAX, 1), (_M_MMAP_MAX, 0), (_M_TRIM_THRESHOLD, -1))


@functools.cache
def retain_freed_memory() -> bool:
  """Applies the glibc settings once; False if this libc has no mallopt."""
  try:
    mallopt = ctypes.CDLL('libc.so.6').mallopt
  except (OSError, AttributeError):
    return False
  mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
  return all(mallopt(param, value) == 1 for param, value in _SETTINGS)
