"""Analytic FLOPs of a model's forward pass, counted from its jaxpr.

Only convolutions and dense layers are counted (BatchNorm, ReLU, pooling and
the optimizer are a few per cent of a ResNet's arithmetic and memory-bound):

  conv:  MACs = N * H_out * W_out * C_out * K_h * K_w * C_in / groups
         (lax's, or svp_jax.cpu.conv's oneDNN kernel on the CPU)
  dense: MACs = (product of the output shape) * (contracted size)
  forward FLOPs = 2 * MACs
  training FLOPs ~= 3 * forward FLOPs (forward, gradient w.r.t. the input,
                    gradient w.r.t. the weights: each one conv/matmul's worth)

The shapes come from tracing the real model (jax.make_jaxpr, nothing runs),
so the count follows svp_jax.models exactly rather than a hand-kept table.
"""

import math
from typing import Any

import jax
import jax.numpy as jnp
from jax.extend import core as jax_core

from svp_jax.cpu import conv

# The ratio of a training step's FLOPs to its forward pass's (see docstring).
TRAIN_TO_FORWARD = 3


def _subjaxprs(eqn) -> list[Any]:
  """The jaxprs nested in an equation's parameters (pjit, custom_vjp, ...)."""
  found = []
  for value in eqn.params.values():
    values = value if isinstance(value, (list, tuple)) else [value]
    for v in values:
      if isinstance(v, jax_core.ClosedJaxpr):
        found.append(v.jaxpr)
      elif isinstance(v, jax_core.Jaxpr):
        found.append(v)
  return found


def _conv_macs(eqn) -> int:
  lhs, rhs = (v.aval for v in eqn.invars[:2])
  out = eqn.outvars[0].aval
  dims = eqn.params['dimension_numbers']
  # rhs_spec = (out feature dim, in feature dim, spatial dims...).
  rhs_spec = dims.rhs_spec
  kernel_spatial = math.prod(rhs.shape[i] for i in rhs_spec[2:])
  cin_per_group = rhs.shape[rhs_spec[1]]
  del lhs
  # Every output element is a dot of length K_h * K_w * C_in / groups.
  return math.prod(out.shape) * kernel_spatial * cin_per_group


def _dot_macs(eqn) -> int:
  lhs = eqn.invars[0].aval
  out = eqn.outvars[0].aval
  (lhs_contract, _), _ = eqn.params['dimension_numbers']
  return math.prod(out.shape) * math.prod(lhs.shape[i] for i in lhs_contract)


def _onednn_conv_macs(eqn) -> int:
  # svp_jax.cpu.conv's forward kernel: NHWC output, HWIO weights.
  kh, kw, cin, _ = eqn.invars[1].aval.shape
  return math.prod(eqn.outvars[0].aval.shape) * kh * kw * cin


def count_macs(jaxpr) -> int:
  """Multiply-accumulates of every conv and dot in `jaxpr`, nested included."""
  macs = 0
  for eqn in jaxpr.eqns:
    name = eqn.primitive.name
    if name == 'conv_general_dilated':
      macs += _conv_macs(eqn)
    elif name == 'dot_general':
      macs += _dot_macs(eqn)
    elif (name == 'ffi_call' and
          eqn.params['target_name'] == conv.FORWARD_TARGET):
      macs += _onednn_conv_macs(eqn)
    for sub in _subjaxprs(eqn):
      macs += count_macs(sub)
  return macs


def forward_flops_per_image(model: Any, image_shape=(32, 32, 3)) -> int:
  """2 * MACs of one image's forward pass (eval mode) through `model`."""
  x = jnp.zeros((1, *image_shape), jnp.float32)
  variables = jax.eval_shape(
      lambda: model.init(jax.random.key(0), x, train=False))
  closed = jax.make_jaxpr(
      lambda v, x: model.apply(v, x, train=False))(variables, x)
  return 2 * count_macs(closed.jaxpr)


def train_flops_per_image(model: Any, image_shape=(32, 32, 3)) -> int:
  """TRAIN_TO_FORWARD x the forward FLOPs (see the module docstring)."""
  return TRAIN_TO_FORWARD * forward_flops_per_image(model, image_shape)
