"""The CPU speed-ups this process uses: chosen once, applied on the CPU only.

Two choices; the mechanisms live in svp_jax.cpu.

  cpu_conv            auto    oneDNN convolutions if the kernels build, else
                              XLA's own with one warning;
                      onednn  oneDNN, and an error if the kernels cannot be
                              built;
                      xla     the models' own convolutions (XLA's).
                      From --cpu_conv, else $SVP_JAX_CPU_CONV, else auto.
                      On GPU and TPU every choice gives XLA's convolutions:
                      svp_jax.cpu.conv checks the backend when a model is
                      traced.
  retain_host_memory  auto    keep freed host memory in the process
                              (svp_jax.cpu.host_memory) on a CPU-only run;
                      on      the same, and an error where the run is not
                              known to be CPU-only or libc is not glibc;
                      off     never.

Freed host memory must be kept before JAX starts its threads, so before any
backend exists to ask; the run counts as CPU-only when
  1. jax_platforms ($JAX_PLATFORMS) lists only 'cpu', or
  2. it is unset and no accelerator plugin is installed: none of
     ACCELERATOR_MODULES is importable, no package registers a 'jax_plugins'
     entry point, and $TPU_LIBRARY_PATH is unset.
A machine with an accelerator plugin that should train on the CPU sets
JAX_PLATFORMS=cpu. (main.py's --cpu_devices_per_process selects the CPU only
later, when the run joins its processes.)

Entry points (main.py, the benchmarks) call configure() once, first thing;
code that builds a model passes it current().conv_general_dilated. Without
configure() (library use, tests) current() reads $SVP_JAX_CPU_CONV each time
and keeps no host memory.
"""

from collections.abc import Callable
import dataclasses
import functools
import importlib.metadata
import importlib.util
import os
from typing import Any

from absl import logging
import jax

from svp_jax.cpu import conv
from svp_jax.cpu import host_memory

CONV_ENV = 'SVP_JAX_CPU_CONV'
# Raised where oneDNN was asked for (onednn) and cannot be built.
BuildError = conv.BuildError
CONV_MODES = ('auto', 'onednn', 'xla')
MEMORY_MODES = ('auto', 'on', 'off')

# Modules whose presence means JAX may pick an accelerator by itself:
# jax_plugins, the namespace package JAX scans, into which the GPU PJRT
# plugins (jax-cuda*-pjrt, jax-rocm*-pjrt) install; libtpu, which JAX imports
# to find the TPU; and the CUDA plugins by name. GPU plugins also register
# 'jax_plugins' entry points, which platform_facts() reads too.
ACCELERATOR_MODULES = ('jax_plugins', 'libtpu', 'jax_cuda12_plugin',
                       'jax_cuda13_plugin')

# What a model is given per mode; one object per mode, so that models built
# apart still compare (and hash, as jit's static arguments) equal.
_CONVOLUTIONS = {
    'auto': conv.conv_general_dilated,
    'onednn': functools.partial(conv.conv_general_dilated, required=True),
    'xla': None,
}


@dataclasses.dataclass(frozen=True)
class Runtime:
  """What was chosen: the convolution mode and whether memory is retained."""

  cpu_conv: str
  retain_host_memory: bool

  @property
  def conv_general_dilated(self) -> Callable[..., Any] | None:
    """For svp_jax.models.create_model: None means the models' own."""
    return convolution(self.cpu_conv)

  def onednn_enabled(self) -> bool:
    """Whether convolutions traced now go to oneDNN (for reports)."""
    return self.cpu_conv != 'xla' and conv.onednn_enabled(
        required=self.cpu_conv == 'onednn')


def convolution(mode: str) -> Callable[..., Any] | None:
  """What a model convolves through under `mode` (None: its own, XLA's)."""
  return _CONVOLUTIONS[mode]


def conv_mode(chosen: str | None = None) -> str:
  """`chosen`, else $SVP_JAX_CPU_CONV, else 'auto'; checked."""
  source, value = '--cpu_conv', chosen
  if value is None:
    source, value = CONV_ENV, os.environ.get(CONV_ENV, 'auto')
  if value not in CONV_MODES:
    raise ValueError(f'{source}={value!r} is not one of '
                     f'{", ".join(CONV_MODES)}')
  return value


@dataclasses.dataclass(frozen=True)
class PlatformFacts:
  """What is known about the platform before a JAX backend starts."""

  platforms: str | None  # jax_platforms, e.g. 'cpu' or 'cuda,cpu'; None: unset
  accelerator_plugins: tuple[str, ...]  # installed plugins JAX would load


def _jax_platforms() -> str | None:
  # jax_platforms starts as $JAX_PLATFORMS and may be set in code since; the
  # variable itself where a JAX release reads its options differently.
  value = getattr(jax.config, 'jax_platforms', None)
  return value or os.environ.get('JAX_PLATFORMS') or None


def platform_facts() -> PlatformFacts:
  """Reads the facts without initialising a backend or importing plugins."""
  found = [name for name in ACCELERATOR_MODULES
           if importlib.util.find_spec(name) is not None]
  found += [f'entry point {e.name}'
            for e in importlib.metadata.entry_points(group='jax_plugins')]
  if os.environ.get('TPU_LIBRARY_PATH'):
    found.append('TPU_LIBRARY_PATH')
  return PlatformFacts(_jax_platforms(), tuple(found))


def cpu_only(facts: PlatformFacts) -> tuple[bool, str]:
  """Whether the run is known to use only the CPU (module doc), and why."""
  if facts.platforms:
    listed = [p.strip() for p in facts.platforms.split(',') if p.strip()]
    return (all(p == 'cpu' for p in listed),
            f'jax_platforms={facts.platforms!r}')
  if facts.accelerator_plugins:
    return False, ('jax_platforms is unset and accelerator plugins are '
                   f'installed ({", ".join(facts.accelerator_plugins)})')
  return True, 'jax_platforms is unset and no accelerator plugin is installed'


def retains_host_memory(mode: str, facts: PlatformFacts) -> tuple[bool, str]:
  """Whether `mode` keeps freed host memory given `facts`, and why."""
  if mode not in MEMORY_MODES:
    raise ValueError(f'--retain_host_memory={mode!r} is not one of '
                     f'{", ".join(MEMORY_MODES)}')
  if mode == 'off':
    return False, '--retain_host_memory=off'
  on_cpu, why = cpu_only(facts)
  if mode == 'on' and not on_cpu:
    raise ValueError('--retain_host_memory=on keeps freed host memory only '
                     f'on a CPU-only run, and this one may not be: {why} '
                     '(set JAX_PLATFORMS=cpu to run on the CPU)')
  return on_cpu, why


# The first configure() call's (modes, result): the process's runtime.
_configured: tuple[tuple[str, str], Runtime] | None = None


def configure(cpu_conv: str | None = None,
              retain_host_memory: str = 'auto') -> Runtime:
  """Chooses the process's runtime once, before JAX starts its threads.

  Args:
    cpu_conv: one of CONV_MODES; None: $SVP_JAX_CPU_CONV, else 'auto'.
    retain_host_memory: one of MEMORY_MODES (see the module docstring).

  Returns:
    The runtime; a later call with the same choices returns it again.

  Raises:
    ValueError: an unknown mode, or 'on' where the run may not be CPU-only.
    RuntimeError: a second call choosing differently, or 'on' where libc
      has no mallopt.
  """
  global _configured
  modes = (conv_mode(cpu_conv), retain_host_memory)
  if _configured is not None:
    if _configured[0] != modes:
      raise RuntimeError(f'the runtime was already configured with {modes}')
    return _configured[1]
  retain, why = retains_host_memory(retain_host_memory, platform_facts())
  if retain and not host_memory.retain_freed_memory():
    if retain_host_memory == 'on':
      raise RuntimeError('--retain_host_memory=on, but this libc has no '
                         'mallopt (glibc only)')
    retain, why = False, 'this libc has no mallopt'
  runtime = Runtime(modes[0], retain)
  logging.info('CPU speed-ups: convolutions %s (on the CPU only); freed host '
               'memory %s (%s)', runtime.cpu_conv,
               'kept' if retain else "left to glibc's defaults", why)
  _configured = (modes, runtime)
  return runtime


def current() -> Runtime:
  """The configured runtime; else conv mode from the environment, no memory."""
  if _configured is not None:
    return _configured[1]
  return Runtime(conv_mode(), retain_host_memory=False)
