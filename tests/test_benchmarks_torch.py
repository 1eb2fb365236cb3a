"""The PyTorch twins of the preact ResNets (benchmarks/torch_preact.py).

Skipped where torch is absent: it lives in .venv-bench (requirements-bench.txt),
never in the project's own requirements.
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

torch = pytest.importorskip('torch')

# pylint: disable=g-import-not-at-top,wrong-import-position
from benchmarks import torch_preact
from svp_jax import models


def jax_param_count(name, classes):
  model = models.create_model(name, classes)
  variables = jax.eval_shape(lambda: model.init(
      jax.random.key(0), jnp.zeros((1, 32, 32, 3)), train=False))
  return models.count_params(variables['params'])


@pytest.mark.parametrize('classes', [10, 100])
@pytest.mark.parametrize('name', ['preact20', 'preact56', 'preact110',
                                  'preact164', 'preact8'])
def test_parameter_count_matches_svp_jax(name, classes):
  model = torch_preact.create_model(name, classes)
  assert torch_preact.count_params(model) == jax_param_count(name, classes)


@pytest.mark.parametrize('name', ['preact8', 'preact164'])
def test_conv_and_dense_shapes_match_svp_jax(name):
  # Same multiset of kernel shapes, so the FLOPs match too, not just counts.
  model = models.create_model(name, 10)
  params = jax.eval_shape(lambda: model.init(
      jax.random.key(0), jnp.zeros((1, 32, 32, 3)), train=False))['params']
  jax_shapes = sorted(
      tuple(leaf.shape) for path, leaf in
      jax.tree_util.tree_leaves_with_path(params)
      if 'kernel' in jax.tree_util.keystr(path))
  torch_shapes = []
  for module in torch_preact.create_model(name, 10).modules():
    if isinstance(module, torch.nn.Conv2d):
      out, cin, kh, kw = module.weight.shape
      torch_shapes.append((kh, kw, cin, out))  # Flax's HWIO.
    elif isinstance(module, torch.nn.Linear):
      torch_shapes.append(tuple(module.weight.shape[::-1]))
  assert sorted(torch_shapes) == jax_shapes


def test_crop_flip_returns_shifted_windows_of_the_padded_image():
  images = torch.arange(3 * 6 * 6 * 2, dtype=torch.float32).reshape(3, 6, 6, 2)
  generator = torch.Generator().manual_seed(0)
  out = torch_preact.random_crop_flip(images, padding=2, generator=generator)
  assert out.shape == images.shape
  padded = np.pad(images.numpy(), ((0, 0), (2, 2), (2, 2), (0, 0)))
  for i in range(3):
    windows = [padded[i, t:t + 6, l:l + 6] for t in range(5) for l in range(5)]
    windows += [w[:, ::-1] for w in windows]
    assert any(np.array_equal(out[i].numpy(), w) for w in windows)


def test_steps_run_and_learn_nothing_strange():
  torch.manual_seed(0)
  model = torch_preact.create_model('preact8', 10)
  step = torch_preact.make_train_step(model, (0.5,) * 3, (0.25,) * 3)
  images = torch.randint(0, 256, (8, 32, 32, 3), dtype=torch.uint8)
  labels = torch.randint(0, 10, (8,))
  losses = [float(step(images, labels)) for _ in range(5)]
  assert all(np.isfinite(losses))
  assert losses[-1] < losses[0]  # Memorising 8 images.
  logits = torch_preact.make_predict_step(model, (0.5,) * 3,
                                          (0.25,) * 3)(images)
  assert logits.shape == (8, 10)
  assert not logits.requires_grad
