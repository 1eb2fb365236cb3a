"""svp_jax.runtime: which CPU speed-ups a process uses, decided from facts.

The platform facts are monkeypatched: the rule must say "no retained host
memory" for GPU and TPU runs without any such machine, and configure() must
not touch this process's allocator.
"""

import importlib.metadata
import importlib.util
import types

import pytest

from svp_jax import model_registry
from svp_jax import models
from svp_jax import runtime
from svp_jax.cpu import conv as cpu_conv
from svp_jax.cpu import host_memory

CPU = runtime.PlatformFacts(platforms=None, accelerator_plugins=())
GPU_PLUGIN = runtime.PlatformFacts(None, ('jax_cuda12_plugin',))


@pytest.fixture
def fresh(monkeypatch):
  """An unconfigured runtime whose configure() records mallopt calls."""
  monkeypatch.setattr(runtime, '_configured', None)
  calls = []
  monkeypatch.setattr(host_memory, 'retain_freed_memory',
                      lambda: calls.append('mallopt') or True)
  return calls


def test_flag_then_environment_then_auto(monkeypatch):
  monkeypatch.delenv(runtime.CONV_ENV, raising=False)
  assert runtime.conv_mode() == 'auto'
  monkeypatch.setenv(runtime.CONV_ENV, 'xla')
  assert runtime.conv_mode() == 'xla'
  assert runtime.conv_mode('onednn') == 'onednn'


def test_bad_modes_are_named(monkeypatch):
  monkeypatch.setenv(runtime.CONV_ENV, 'fast')
  with pytest.raises(ValueError, match="SVP_JAX_CPU_CONV='fast' is not one "
                     'of auto, onednn, xla'):
    runtime.conv_mode()
  with pytest.raises(ValueError, match="--cpu_conv='fast'"):
    runtime.conv_mode('fast')
  with pytest.raises(ValueError, match="--retain_host_memory='yes'"):
    runtime.retains_host_memory('yes', CPU)


def test_convolution_per_mode():
  assert runtime.convolution('xla') is None  # The models' own.
  assert runtime.convolution('auto') is cpu_conv.conv_general_dilated
  assert runtime.convolution('onednn').keywords == {'required': True}


def test_models_built_apart_are_equal():
  # jit takes the model as a static argument: equal models share a compile.
  for mode in runtime.CONV_MODES:
    a, b = (models.create_model('preact8', 10, runtime.convolution(mode))
            for _ in range(2))
    assert a == b and hash(a) == hash(b)


@pytest.mark.parametrize('platforms,plugins,cpu_only', [
    (None, (), True),
    ('cpu', (), True),
    ('cpu', ('jax_cuda12_plugin',), True),  # Asked for the CPU.
    (None, ('jax_cuda12_plugin',), False),  # JAX would take the GPU.
    (None, ('libtpu',), False),
    ('cuda', (), False),
    ('tpu', (), False),
    ('cuda,cpu', (), False),
])
def test_cpu_only_rule(platforms, plugins, cpu_only):
  facts = runtime.PlatformFacts(platforms, plugins)
  assert runtime.cpu_only(facts)[0] == cpu_only
  assert runtime.retains_host_memory('auto', facts)[0] == cpu_only
  assert not runtime.retains_host_memory('off', facts)[0]
  if cpu_only:
    assert runtime.retains_host_memory('on', facts)[0]
  else:
    with pytest.raises(ValueError, match='JAX_PLATFORMS=cpu'):
      runtime.retains_host_memory('on', facts)


def test_platform_facts_find_plugins_without_importing_them(monkeypatch):
  real_find_spec = importlib.util.find_spec
  monkeypatch.setattr(
      importlib.util, 'find_spec',
      lambda name: object() if name == 'libtpu' else real_find_spec(name))
  monkeypatch.setattr(runtime, '_jax_platforms', lambda: None)
  facts = runtime.platform_facts()
  assert 'libtpu' in facts.accelerator_plugins
  assert not runtime.cpu_only(facts)[0]

  monkeypatch.setattr(importlib.util, 'find_spec', lambda name: None)
  monkeypatch.setattr(importlib.metadata, 'entry_points',
                      lambda group: [importlib.metadata.EntryPoint(
                          'xla_cuda12', 'jax_plugins.xla_cuda12', group)])
  facts = runtime.platform_facts()
  assert facts.accelerator_plugins == ('entry point xla_cuda12',)

  monkeypatch.setattr(importlib.metadata, 'entry_points', lambda group: [])
  monkeypatch.setenv('TPU_LIBRARY_PATH', '/lib/libtpu.so')
  assert runtime.platform_facts().accelerator_plugins == ('TPU_LIBRARY_PATH',)
  monkeypatch.delenv('TPU_LIBRARY_PATH')
  assert runtime.platform_facts() == CPU


def test_configure_keeps_memory_on_cpu_only(fresh, monkeypatch):
  monkeypatch.setattr(runtime, 'platform_facts', lambda: CPU)
  chosen = runtime.configure('xla', 'auto')
  assert chosen == runtime.Runtime('xla', retain_host_memory=True)
  assert fresh == ['mallopt']
  assert runtime.current() is chosen
  assert runtime.configure('xla', 'auto') is chosen  # Once per process.
  assert fresh == ['mallopt']
  with pytest.raises(RuntimeError, match='already configured'):
    runtime.configure('onednn', 'auto')


@pytest.mark.parametrize('memory_mode', ['auto', 'off'])
def test_configure_never_touches_malloc_on_an_accelerator(fresh, monkeypatch,
                                                          memory_mode):
  monkeypatch.setattr(runtime, 'platform_facts', lambda: GPU_PLUGIN)
  assert not runtime.configure('auto', memory_mode).retain_host_memory
  assert not fresh


def test_configure_on_without_glibc_fails(fresh, monkeypatch):
  del fresh
  monkeypatch.setattr(runtime, 'platform_facts', lambda: CPU)
  monkeypatch.setattr(host_memory, 'retain_freed_memory', lambda: False)
  with pytest.raises(RuntimeError, match='mallopt'):
    runtime.configure('auto', 'on')
  assert not runtime.configure('auto', 'auto').retain_host_memory


def test_unconfigured_runtime_reads_the_environment(fresh, monkeypatch):
  del fresh
  # What model_registry.create_model reads of a dataset's info and model
  # section.
  info = types.SimpleNamespace(modality='image', num_classes=10)
  section = types.SimpleNamespace(name='preact8')
  for mode in runtime.CONV_MODES:
    monkeypatch.setenv(runtime.CONV_ENV, mode)
    assert runtime.current() == runtime.Runtime(mode, False)
    model = model_registry.create_model(section, info)
    assert model.conv_general_dilated is runtime.convolution(mode)


def test_platforms_read_from_the_environment_without_the_option(monkeypatch):
  # A JAX release without `jax.config.jax_platforms` as an attribute.
  monkeypatch.setattr(runtime, 'jax', types.SimpleNamespace(
      config=types.SimpleNamespace()))
  monkeypatch.setenv('JAX_PLATFORMS', 'tpu')
  assert runtime._jax_platforms() == 'tpu'
  monkeypatch.delenv('JAX_PLATFORMS')
  assert runtime._jax_platforms() is None
