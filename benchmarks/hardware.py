"""What the machine can do: facts, fp32 matmul peak, bandwidth, memory use.

These are the ceilings the other benchmarks are compared with:

* matmul peak: C = A @ B for square float32 n x n matrices, 2 n^3 FLOPs, the
  best time over repetitions (a ceiling, so best rather than median), with
  NumPy (its BLAS), jax.jit and, when installed, PyTorch;
* memory bandwidth: a float32 array of `mib` MiB (far larger than the caches)
  summed by jax.jit (multi-threaded, reads every byte once: exactly the
  access pattern of a greedy k-centers step) and by NumPy (one thread), and
  copied by NumPy (read + write, counted as 2x the bytes); best over
  repetitions. The k-centers floor uses the best read bandwidth.

Peak memory is read from /proc/self/status: VmHWM after writing 5 to
/proc/self/clear_refs resets the high-water mark to the current RSS, so a
phase's peak can be measured after its inputs were built (Linux >= 4.0;
otherwise the whole-process ru_maxrss).
"""

import json
import os
import platform
import resource
import subprocess
import sys
import time
from typing import Any

import numpy as np


def cpu_model() -> str:
  """The CPU's model name from /proc/cpuinfo (or platform's guess)."""
  try:
    with open('/proc/cpuinfo') as f:
      for line in f:
        if line.startswith('model name'):
          return line.split(':', 1)[1].strip()
  except OSError:
    pass
  return platform.processor() or 'unknown'


def _version(module_name: str) -> str | None:
  try:
    module = __import__(module_name)
  except ImportError:
    return None
  return getattr(module, '__version__', 'unknown')


def machine_facts() -> dict[str, Any]:
  """CPU, cores, memory, library versions and XLA_FLAGS of this process."""
  mem_gib = None
  try:
    with open('/proc/meminfo') as f:
      for line in f:
        if line.startswith('MemTotal:'):
          mem_gib = round(int(line.split()[1]) / 2**20, 1)
  except OSError:
    pass
  import jax  # pylint: disable=g-import-not-at-top
  import jaxlib  # pylint: disable=g-import-not-at-top
  return {
      'cpu_model': cpu_model(),
      'cores': os.cpu_count(),
      'memory_gib': mem_gib,
      'python': platform.python_version(),
      'numpy': np.__version__,
      'jax': jax.__version__,
      'jaxlib': jaxlib.__version__,
      'flax': _version('flax'),
      'torch': _version('torch'),
      'jax_devices': jax.device_count(),
      'XLA_FLAGS': os.environ.get('XLA_FLAGS', ''),
      'load_average': os.getloadavg(),
      'date_utc': time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime()),
  }


def _best_seconds(fn, repeats: int) -> float:
  fn()  # Warm up (and compile).
  best = float('inf')
  for _ in range(repeats):
    start = time.perf_counter()
    fn()
    best = min(best, time.perf_counter() - start)
  return best


def matmul_peak(n: int = 2048, repeats: int = 5) -> dict[str, float]:
  """fp32 matmul GFLOP/s (2 n^3 / best time) per library."""
  import jax  # pylint: disable=g-import-not-at-top
  rng = np.random.default_rng(0)
  a = rng.standard_normal((n, n), dtype=np.float32)
  b = rng.standard_normal((n, n), dtype=np.float32)
  gflop = 2 * n**3 / 1e9
  result = {'n': n,
            'numpy_gflops': gflop / _best_seconds(lambda: a @ b, repeats)}
  ja, jb = jax.device_put(a), jax.device_put(b)
  matmul = jax.jit(lambda x, y: x @ y)
  result['jax_gflops'] = gflop / _best_seconds(
      lambda: matmul(ja, jb).block_until_ready(), repeats)
  try:
    import torch  # pylint: disable=g-import-not-at-top
  except ImportError:
    return result
  ta, tb = torch.from_numpy(a), torch.from_numpy(b)
  result['torch_gflops'] = gflop / _best_seconds(lambda: ta @ tb, repeats)
  return result


def _numpy_bandwidth(count: int, repeats: int) -> dict[str, float]:
  a = np.ones(count, np.float32)
  b = np.empty_like(a)
  gb = a.nbytes / 1e9
  return {
      'numpy_sum_read_gbs': gb / _best_seconds(a.sum, repeats),
      'numpy_copy_gbs': 2 * gb / _best_seconds(lambda: np.copyto(b, a),
                                               repeats),
  }


def _jax_bandwidth(count: int, repeats: int) -> dict[str, float]:
  import jax  # pylint: disable=g-import-not-at-top
  import jax.numpy as jnp  # pylint: disable=g-import-not-at-top
  a = jax.device_put(np.ones(count, np.float32))
  total = jax.jit(jnp.sum)
  seconds = _best_seconds(lambda: total(a).block_until_ready(), repeats)
  return {'jax_sum_read_gbs': a.nbytes / 1e9 / seconds}


def memory_bandwidth(mib: int = 1024, repeats: int = 5) -> dict[str, float]:
  """GB/s (1e9 bytes/s) of large reads and copies; see the module docstring."""
  count = mib * 2**20 // 4
  # One array set at a time: each helper's arrays are freed when it returns.
  result = {'mib': mib, **_numpy_bandwidth(count, repeats),
            **_jax_bandwidth(count, repeats)}
  result['read_gbs'] = max(result['numpy_sum_read_gbs'],
                           result['jax_sum_read_gbs'])
  return result


# ----------------------------------------------------------------------------
# Memory of the current process.


def _status_kib(field: str) -> int | None:
  try:
    with open('/proc/self/status') as f:
      for line in f:
        if line.startswith(field + ':'):
          return int(line.split()[1])
  except OSError:
    pass
  return None


def rss_gib() -> float:
  """Current resident set size."""
  kib = _status_kib('VmRSS')
  return (kib or 0) / 2**20


def reset_peak_rss() -> bool:
  """Resets the high-water mark to the current RSS; False if unsupported."""
  try:
    with open('/proc/self/clear_refs', 'w') as f:
      f.write('5')
    return True
  except OSError:
    return False


def peak_rss_gib() -> float:
  """High-water RSS since the last reset_peak_rss (else since start)."""
  kib = _status_kib('VmHWM')
  if kib is None:  # ru_maxrss is in KiB on Linux.
    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
  return kib / 2**20


def ratio(a: float | None, b: float | None) -> float | None:
  """a / b, or None where either is missing (or b is zero)."""
  return a / b if a is not None and b else None


def run_json_subprocess(args: list[str], env: dict[str, str] | None = None,
                        cwd: str | None = None) -> Any:
  """Runs `python args...` (this interpreter); returns its last stdout line
  parsed as JSON. Raises RuntimeError with the end of stderr if it fails."""
  proc = subprocess.run([sys.executable, *args], env=env, cwd=cwd,
                        capture_output=True, text=True, check=False)
  if proc.returncode != 0:
    raise RuntimeError(f'{" ".join(args)} failed ({proc.returncode}):\n'
                       f'{proc.stderr[-3000:]}')
  return json.loads(proc.stdout.strip().splitlines()[-1])


class PeakMemory:
  """Peak memory of a `with` block above the resident size at its start.

  `working_gib`: the block's high-water RSS minus the RSS at entry (what the
  block itself allocated at most); `process_peak_gib`: the whole process's
  high-water mark, before or during the block. Linux updates the high-water
  mark lazily, so memory allocated and freed again inside the block can be
  missed: `working_gib` is a lower bound.
  """

  def __enter__(self) -> 'PeakMemory':
    self._before_peak = peak_rss_gib()
    self._baseline = rss_gib()
    self.reset_supported = reset_peak_rss()
    return self

  def __exit__(self, *exc) -> None:
    peak = peak_rss_gib()
    self.working_gib = peak - self._baseline
    self.process_peak_gib = max(peak, self._before_peak)
