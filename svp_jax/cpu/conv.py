"""2-D convolutions on the CPU through oneDNN, as XLA FFI custom calls.

XLA:CPU runs 3x3 convolutions through a generic kernel at about half the rate
of oneDNN, the library PyTorch's CPU convolutions use, and that kernel is most
of a ResNet training step (docs/performance.md). `conv_general_dilated`
takes lax.conv_general_dilated's arguments, as flax's nn.Conv passes them, and
on the CPU computes the convolution and both its gradients with oneDNN
(svp_jax/cpu/csrc/conv.cc); everywhere else, and for anything the kernels do
not cover (dilation, groups, dtypes other than float32), it calls its
`fallback`. Both compute the same sums; only the order of the float32
additions differs.

The kernels are compiled on first use with the system C++ compiler against
the oneDNN wheel in requirements.txt, into a cache directory
($SVP_JAX_CACHE_DIR, default ~/.cache/svp_jax); `python -m svp_jax.cpu.conv`
builds them ahead (scripts/setup.sh does). If they cannot be built,
convolutions fall back with one warning, or raise BuildError when oneDNN was
required; svp_jax.runtime decides which (--cpu_conv, SVP_JAX_CPU_CONV).

Under jit with the batch sharded over devices, each device convolves its own
examples (custom partitioning keeps the batch split); the weight gradient is
summed over devices, as XLA's own convolution's is.
"""

import ctypes
import fcntl
import functools
import hashlib
import os
import pathlib
import shutil
import site
import subprocess
import sys

from absl import app
from absl import logging
import jax
from jax.experimental.custom_partitioning import custom_partitioning
import jax.numpy as jnp
import numpy as np

_SOURCE = pathlib.Path(__file__).with_name('csrc') / 'conv.cc'
FORWARD_TARGET = 'SvpConvForward'
_TARGETS = {'forward': FORWARD_TARGET,
            'backward_data': 'SvpConvBackwardData',
            'backward_weights': 'SvpConvBackwardWeights'}


class BuildError(RuntimeError):
  """The oneDNN kernels could not be built or loaded."""


class MissingDependency(BuildError):
  """No C++ compiler or no oneDNN: the machine cannot build the kernels.

  Set apart from other build errors, which are bugs to fix, so that tests
  can skip where the tools are missing and fail where the build is broken.
  """


def _onednn_prefix() -> pathlib.Path:
  """The install prefix holding the oneDNN wheel's headers and library."""
  for prefix in (sys.prefix, sys.base_prefix, site.getuserbase()):
    prefix = pathlib.Path(prefix)
    if ((prefix / 'include/oneapi/dnnl/dnnl.hpp').exists() and
        (prefix / 'lib/libdnnl.so.3').exists()):
      return prefix
  raise MissingDependency(
      'oneDNN is not installed (pip install -r requirements.txt installs '
      'onednn-cpu-gomp and onednn-devel-cpu-gomp)')


def _compiler() -> str:
  compiler = os.environ.get('CXX') or shutil.which('g++') or shutil.which(
      'c++')
  if not compiler:
    raise MissingDependency('no C++ compiler found (install g++, or set CXX)')
  return compiler


def _cache_dir() -> pathlib.Path:
  root = os.environ.get('SVP_JAX_CACHE_DIR') or os.path.join(
      os.path.expanduser('~'), '.cache', 'svp_jax')
  return pathlib.Path(root)


def build() -> pathlib.Path:
  """Compiles the kernels once per source, jaxlib and oneDNN; returns the .so.

  Safe to call from several processes at once (a file lock serialises them).
  """
  prefix = _onednn_prefix()
  include = jax.ffi.include_dir()
  key = hashlib.sha256(b'\0'.join([
      _SOURCE.read_bytes(), jax.__version__.encode(), str(include).encode(),
      str(prefix).encode()])).hexdigest()[:16]
  out = _cache_dir() / f'cpu_conv-{key}.so'
  if out.exists():
    return out
  out.parent.mkdir(parents=True, exist_ok=True)
  with open(out.with_suffix('.lock'), 'w') as lock:
    fcntl.flock(lock, fcntl.LOCK_EX)
    if out.exists():  # Another process built it while we waited.
      return out
    tmp = out.with_suffix(f'.{os.getpid()}.tmp')
    command = [
        _compiler(), '-O2', '-std=c++17', '-shared', '-fPIC', '-fopenmp',
        '-w', f'-I{include}', f'-I{prefix / "include"}', str(_SOURCE),
        '-o', str(tmp), f'-L{prefix / "lib"}', '-l:libdnnl.so.3',
        f'-Wl,-rpath,{prefix / "lib"}']
    logging.info('building the oneDNN convolution kernels: %s',
                 ' '.join(command))
    try:
      result = subprocess.run(command, capture_output=True, text=True,
                              check=False)
    except FileNotFoundError as e:
      raise MissingDependency(f'no C++ compiler at {command[0]}: {e}') from e
    except OSError as e:
      raise BuildError(f'running the C++ compiler failed: {e}') from e
    if result.returncode != 0:
      first_error = next(
          (line for line in result.stderr.splitlines() if 'error' in line),
          result.stderr.strip()[:300])
      raise BuildError(f'compiling {_SOURCE} failed: {first_error}\n'
                       f'{result.stderr[-3000:]}')
    os.replace(tmp, out)
  return out


@functools.cache
def kernel_error() -> BuildError | None:
  """Builds, loads and registers the kernels once per process.

  Returns why that failed, or None; a failure is remembered too, so a
  missing compiler is not retried at every convolution traced.
  """
  try:
    library = ctypes.cdll.LoadLibrary(str(build()))
  except OSError as e:
    return BuildError(f'loading the oneDNN kernels failed: {e}')
  except BuildError as e:
    return e
  for target in _TARGETS.values():
    jax.ffi.register_ffi_target(
        target, jax.ffi.pycapsule(getattr(library, target)), platform='cpu')
  return None


@functools.cache
def _warn_fallback(reason: str) -> None:
  logging.warning('oneDNN convolutions unavailable (%s); using XLA\'s own '
                  'CPU convolution, about half as fast (--cpu_conv=xla or '
                  'SVP_JAX_CPU_CONV=xla silences this)', reason)


def onednn_enabled(required: bool = False) -> bool:
  """Whether convolutions traced now go to oneDNN: on the CPU, if they build.

  Raises BuildError if they do not build and `required`; else warns once.
  """
  if jax.default_backend() != 'cpu':
    return False
  error = kernel_error()
  if error is None:
    return True
  if required:
    raise type(error)(str(error))  # A fresh one: `error` is cached.
  _warn_fallback(str(error).splitlines()[0])
  return False


@functools.cache
def _threads_per_device() -> int:
  """oneDNN threads per call: the process's cores shared by its CPU devices.

  Each XLA CPU device runs its own calls at the same time, so more threads
  than this would oversubscribe the cores.
  """
  return max(1, len(os.sched_getaffinity(0)) // jax.local_device_count())


# ---------------------------------------------------------------------------
# The three kernels, each split over the batch by custom partitioning.
#
# `geometry` is static: (result shape, strides, padding pairs, threads).


def _ffi(target: str, a: jax.Array, b: jax.Array, geometry) -> jax.Array:
  shape, (sh, sw), ((phl, phh), (pwl, pwh)), threads = geometry
  result = jax.ShapeDtypeStruct(shape, jnp.float32)
  return jax.ffi.ffi_call(target, result)(
      a, b, stride_h=np.int64(sh), stride_w=np.int64(sw),
      pad_h_lo=np.int64(phl), pad_h_hi=np.int64(phh), pad_w_lo=np.int64(pwl),
      pad_w_hi=np.int64(pwh), threads=np.int64(threads))


def _batch_axes(*shardings):
  """The mesh axes the first batch-split sharding splits dimension 0 over."""
  for sharding in shardings:
    spec = getattr(sharding, 'spec', ())
    if len(spec) and spec[0] is not None:
      return spec[0]
  return None


def _sharding(mesh, batch_axes=None):
  return jax.sharding.NamedSharding(mesh,
                                    jax.sharding.PartitionSpec(batch_axes))


def _split_count(mesh, batch_axes) -> int:
  if batch_axes is None:
    return 1
  axes = batch_axes if isinstance(batch_axes, tuple) else (batch_axes,)
  return int(np.prod([mesh.shape[a] for a in axes]))


def _batched_op(target: str, rule: str):
  """A kernel whose first operand and result are split over the batch.

  The batch split is taken from the first operand, else from what the result
  is wanted as; the second operand (the weights) is replicated.
  """
  op = custom_partitioning(
      lambda a, b, geometry: _ffi(target, a, b, geometry),
      static_argnums=(2,))

  def infer(geometry, mesh, arg_shapes, result_shape):
    del geometry, result_shape
    return _sharding(mesh, _batch_axes(arg_shapes[0].sharding))

  def partition(geometry, mesh, arg_shapes, result_shape):
    axes = _batch_axes(arg_shapes[0].sharding, result_shape.sharding)
    shape, *rest = geometry
    local_batch = shape[0] // _split_count(mesh, axes)
    local = ((local_batch, *shape[1:]), *rest)
    split = _sharding(mesh, axes)
    return (mesh, lambda a, b: _ffi(target, a, b, local), split,
            (split, _sharding(mesh)))

  op.def_partition(partition, infer_sharding_from_operands=infer,
                   sharding_rule=rule)
  return op


def _weight_gradient_op():
  """The weight gradient: per-device partial sums, then summed over devices."""
  target = _TARGETS['backward_weights']
  op = custom_partitioning(
      lambda x, dy, geometry: _ffi(target, x, dy, geometry),
      static_argnums=(2,))

  def infer(geometry, mesh, arg_shapes, result_shape):
    del geometry, arg_shapes, result_shape
    return _sharding(mesh)

  def partition(geometry, mesh, arg_shapes, result_shape):
    del result_shape
    axes = _batch_axes(*(a.sharding for a in arg_shapes))

    def lower(x, dy):  # the weight shape does not depend on the batch
      partial = _ffi(target, x, dy, geometry)
      return partial if axes is None else jax.lax.psum(partial, axes)

    split = _sharding(mesh, axes)
    return mesh, lower, _sharding(mesh), (split, split)

  op.def_partition(partition, infer_sharding_from_operands=infer,
                   sharding_rule='b h w c, b y x o -> i j c o')
  return op


_forward = _batched_op(_TARGETS['forward'], rule='b h w c, i j c o -> b y x o')
_backward_data = _batched_op(_TARGETS['backward_data'],
                             rule='b y x o, i j c o -> b h w c')
_backward_weights = _weight_gradient_op()


@functools.partial(jax.custom_vjp, nondiff_argnums=(2, 3))
def _onednn_conv(x, w, strides, padding):
  return _forward(x, w, _geometry(x.shape, w.shape, strides, padding)[0])


def _geometry(x_shape, w_shape, strides, padding):
  """Static geometries of the forward kernel and of the two gradients."""
  n, h, wd, _ = x_shape
  kh, kw, _, o = w_shape
  (phl, phh), (pwl, pwh) = padding
  y_shape = (n, (h + phl + phh - kh) // strides[0] + 1,
             (wd + pwl + pwh - kw) // strides[1] + 1, o)
  threads = _threads_per_device()
  return ((y_shape, strides, padding, threads),
          (tuple(x_shape), strides, padding, threads),
          (tuple(w_shape), strides, padding, threads))


def _onednn_conv_fwd(x, w, strides, padding):
  return _onednn_conv(x, w, strides, padding), (x, w)


def _onednn_conv_bwd(strides, padding, residuals, dy):
  x, w = residuals
  _, dx_geometry, dw_geometry = _geometry(x.shape, w.shape, strides, padding)
  return (_backward_data(dy, w, dx_geometry),
          _backward_weights(x, dy, dw_geometry))


_onednn_conv.defvjp(_onednn_conv_fwd, _onednn_conv_bwd)


def _explicit_pairs(padding):
  """((lo, hi), (lo, hi)) for explicit 2-D padding; None for 'SAME' etc."""
  if isinstance(padding, str) or len(padding) != 2:
    return None
  return tuple((int(lo), int(hi)) for lo, hi in padding)


def _onednn_covers(lhs, rhs, pads, lhs_dilation, rhs_dilation,
                   dimension_numbers, feature_group_count) -> bool:
  """Whether the kernels compute this convolution (else `fallback` does)."""
  if (lhs.ndim != 4 or lhs.dtype != jnp.float32 or rhs.dtype != jnp.float32
      or feature_group_count != 1 or pads is None or
      any(d not in (None, (1, 1)) for d in (lhs_dilation, rhs_dilation))):
    return False
  nhwc_hwio = jax.lax.conv_dimension_numbers(lhs.shape, rhs.shape,
                                             ('NHWC', 'HWIO', 'NHWC'))
  given = jax.lax.conv_dimension_numbers(lhs.shape, rhs.shape,
                                         dimension_numbers)
  return given == nhwc_hwio


def conv_general_dilated(lhs: jax.Array, rhs: jax.Array, window_strides,
                         padding, lhs_dilation=None, rhs_dilation=None,
                         dimension_numbers=None, feature_group_count: int = 1,
                         precision=None, *,
                         fallback=jax.lax.conv_general_dilated,
                         required: bool = False) -> jax.Array:
  """lax.conv_general_dilated, through oneDNN on the CPU where it applies.

  oneDNN (see the module docstring) for float32 NHWC x HWIO convolutions
  with explicit padding and no dilation or groups; `fallback`, called with
  the same arguments, otherwise. `required`: raise BuildError, rather than
  fall back, if the kernels cannot be built.
  """
  pads = _explicit_pairs(padding)
  if (_onednn_covers(lhs, rhs, pads, lhs_dilation, rhs_dilation,
                     dimension_numbers, feature_group_count) and
      onednn_enabled(required)):
    return _onednn_conv(lhs, rhs, tuple(int(s) for s in window_strides), pads)
  return fallback(
      lhs, rhs, window_strides, padding, lhs_dilation=lhs_dilation,
      rhs_dilation=rhs_dilation, dimension_numbers=dimension_numbers,
      feature_group_count=feature_group_count, precision=precision)


def main(argv) -> None:
  """Builds the kernels ahead of first use (scripts/setup.sh runs this)."""
  del argv
  logging.info('oneDNN convolution kernels: %s', build())


if __name__ == '__main__':
  app.run(main)
