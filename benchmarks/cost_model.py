r"""A cost model of data selection at the paper's scale, to plan a run.

  python -m benchmarks.cost_model [--out=benchmarks/results/cost_model.md]

Per round r of the paper's schedule (L_r points labeled before it, a_r picked
in it, pool N), the selector's share of the work is

  train_r  = E * L_r * F_train / R          (E epochs from scratch)
  score_r  = (N - L_r) * F_fwd / R          (one forward pass over the pool)
  rank_r   = a_r * N * d * 4 B / W          (k-centers only: every pick reads
                                             all features once)

and the data-selection runtime is the sum over rounds 1.. (round 0 is a
random draw). F_fwd is counted exactly from the traced model
(benchmarks/flops.py), F_train = 3 F_fwd. R (FLOP/s) and W (bytes/s) are a
device's effective rates: the table's profiles say where each comes from.
Greedy k-centers needs the N x d float32 features, split over the devices,
plus O(N) per device (min distances and mask): no N x N or (s+b) x N matrix.

What the model leaves out: input pipelines, evaluation of the target, and
compile time. fastText is not FLOP-bound (a gather and scatter of a few table
rows per example), so it is given by its measured step time instead.
"""

import dataclasses
import pathlib

from absl import app
from absl import flags

from benchmarks import flops
from svp_jax import model_registry
from svp_jax import text_models

_OUT = flags.DEFINE_string('out', 'benchmarks/results/cost_model.md',
                           'Markdown file to write.')


@dataclasses.dataclass(frozen=True)
class Device:
  name: str
  train_flops: float  # Effective FLOP/s of training (and scoring).
  bandwidth: float  # Bytes/s of memory read, summed over chips.
  chips: int
  source: str


# The paper's GPU, calibrated from docs/reference.md: ResNet164 trains 181
# epochs on 50,000 CIFAR images in 4 h, ResNet20 in 30 min; each gets its own
# rate.
# Used for CIFAR only: it checks the model against the paper's speed-ups.
# Bandwidth: 900 GB/s (a V100's HBM2).
_RESNET50_FWD = 8.178368512e9
_PREACT164_FWD = 0.49529344e9
_PREACT20_FWD = 0.081626368e9
PAPER_GPU_LARGE = 181 * 50_000 * 3 * _PREACT164_FWD / (4 * 3600)
PAPER_GPU_SMALL = 181 * 50_000 * 3 * _PREACT20_FWD / (30 * 60)
# One A100, calibrated from a published order of magnitude: ResNet-50 v1.5
# trains at about 1,000 images/s in TF32 (JAX's default float32 matmul
# precision there), i.e. about 16% of the 156 TFLOP/s TF32 peak.
A100 = 1_000 * 3 * _RESNET50_FWD
# A TPU v4-32 slice (16 chips): an assumed 30% of 275 TFLOP/s per chip (bf16
# passes, the TPU default for float32 matmuls); not measured here.
TPU_V4_32 = 0.3 * 16 * 275e12

DEVICES = (
    Device('paper GPU', PAPER_GPU_LARGE, 900e9, 1,
           f'{PAPER_GPU_LARGE / 1e12:.2f} TFLOP/s from the paper\'s ResNet164 '
           f'time ({PAPER_GPU_SMALL / 1e12:.2f} for ResNet20), 900 GB/s; '
           'CIFAR rows only'),
    Device('1x A100', A100, 1.6e12, 1,
           f'{A100 / 1e12:.1f} TFLOP/s (about 1,000 ResNet-50 images/s in '
           'TF32, published order of magnitude), 1.6 TB/s'),
    Device('TPU v4-32', TPU_V4_32, 16 * 1.2e12, 16,
           f'16 chips, {TPU_V4_32 / 1e12:.0f} TFLOP/s (an assumed 30% of '
           'the bf16 peak), 16 x 1.2 TB/s'),
)


@dataclasses.dataclass(frozen=True)
class Selector:
  name: str
  forward_flops: float  # Per example; 0 for fastText (see step_seconds).
  epochs: int
  feature_dim: int
  small: bool = False  # Uses PAPER_GPU_SMALL on the paper's GPU.
  # fastText: measured seconds per example on this CPU (sparse step).
  example_seconds: float = 0.0


@dataclasses.dataclass(frozen=True)
class Dataset:
  name: str
  pool: int
  schedule: tuple[int, ...]  # Labeled in round 0, picked in rounds 1, 2...
  selectors: tuple[Selector, ...]


def _forward(name, num_classes, shape):
  model = model_registry.create_default(name, num_classes)
  return flops.forward_flops_per_image(model, shape)


# fastText: 1.44 ms per 16-example step at 10M buckets on this CPU
# (benchmarks/fasttext_buckets.py; BUILD.md), 5 epochs, 10-d features.
FASTTEXT_EXAMPLE_SECONDS = 1.44e-3 / 16


def datasets() -> tuple[Dataset, ...]:
  cifar = (32, 32, 3)
  image = (224, 224, 3)
  chars = (text_models.DOCUMENT_LENGTH,)
  return (
      Dataset('CIFAR10', 50_000, (1_000, 4_000) + (5_000,) * 4, (
          Selector('ResNet164 (baseline)', _forward('preact164', 10, cifar),
                   181, 256),
          Selector('ResNet20 (proxy)', _forward('preact20', 10, cifar), 181,
                   64, small=True))),
      Dataset('ImageNet', 1_281_167, (25_623, 102_493) + (128_117,) * 4, (
          Selector('ResNet50 (baseline)', _forward('resnet50', 1000, image),
                   100, 2048),
          Selector('ResNet18 (proxy)', _forward('resnet18', 1000, image),
                   100, 512),
          Selector('ResNet18, 45 epochs', _forward('resnet18', 1000, image),
                   45, 512))),
      Dataset('Amazon polarity', 3_600_000,
              (72_000, 288_000) + (360_000,) * 4, (
                  Selector('VDCNN29 (baseline)',
                           _forward('vdcnn29-maxpool', 2, chars),
                           15, 2048),
                  Selector('VDCNN9 (proxy)',
                           _forward('vdcnn9-maxpool', 2, chars),
                           15, 2048),
                  Selector('fastText (proxy)', 0.0, 5, 10,
                           example_seconds=FASTTEXT_EXAMPLE_SECONDS))),
  )


def selection_seconds(dataset: Dataset, selector: Selector, device: Device,
                      rounds: int, kcenters: bool) -> dict[str, float]:
  """Seconds of selector training, scoring and k-centers over `rounds`."""
  rate = device.train_flops
  if selector.small and device.name.startswith('paper'):
    rate = PAPER_GPU_SMALL
  totals = {'train': 0.0, 'score': 0.0, 'rank': 0.0}
  labeled = dataset.schedule[0]
  for picked in dataset.schedule[1:rounds + 1]:
    if selector.example_seconds:  # fastText: measured, on this CPU.
      totals['train'] += selector.epochs * labeled * selector.example_seconds
      # Scoring is the forward third of a step.
      totals['score'] += (dataset.pool - labeled) * selector.example_seconds / 3
    else:
      totals['train'] += (selector.epochs * labeled * 3
                          * selector.forward_flops / rate)
      totals['score'] += ((dataset.pool - labeled) * selector.forward_flops
                          / rate)
    if kcenters:
      totals['rank'] += (picked * dataset.pool * selector.feature_dim * 4
                         / device.bandwidth)
    labeled += picked
  return totals


def kcenters_gib_per_chip(dataset: Dataset, selector: Selector,
                          device: Device) -> float:
  """Features split over the chips, plus min distance and mask per point."""
  per_point = selector.feature_dim * 4 / device.chips + 4 + 1
  return dataset.pool * per_point / 2**30


def _hours(seconds: float) -> str:
  return f'{seconds / 3600:.3g}'


def report() -> str:
  lines = ['# Data-selection cost model (benchmarks/cost_model.py)', '',
           'Predicted hours of data selection (selector training + pool '
           'scoring, + greedy k-centers where named) summed over the rounds '
           "of the paper's schedule, at 10% and 50% of the pool labeled, "
           'and k-centers memory per chip. Device profiles:', '']
  for device in DEVICES:
    lines.append(f'- **{device.name}**: {device.source}.')
  lines += ['', 'fastText rows use its measured step time on the 2-core CPU '
            '(BUILD.md, "Text datasets") on every device: it is memory- and '
            'host-bound, not FLOP-bound. Small CIFAR nets do not reach an '
            "accelerator's large-model rate, so their A100/TPU rows are "
            'lower bounds. Check against the paper: its ResNet20 proxy '
            'selected 7.2x faster than ResNet164 at 50% on CIFAR10; the '
            'model gives the ratio of the two paper-GPU rows below.', '']
  header = ('| dataset | selector | fwd GFLOP/ex | device | h to 10% | '
            'h to 50% | + k-centers h to 50% | k-centers GiB/chip |')
  lines += [header, '|' + '---|' * 8]
  for dataset in datasets():
    for selector in dataset.selectors:
      for device in DEVICES:
        if device.name == 'paper GPU' and dataset.name != 'CIFAR10':
          continue
        ten = selection_seconds(dataset, selector, device, 1, False)
        fifty = selection_seconds(dataset, selector, device, 5, True)
        lines.append(
            f'| {dataset.name} | {selector.name} | '
            f'{selector.forward_flops / 1e9:.3g} | {device.name} | '
            f"{_hours(ten['train'] + ten['score'])} | "
            f"{_hours(fifty['train'] + fifty['score'])} | "
            f"{_hours(fifty['rank'])} | "
            f'{kcenters_gib_per_chip(dataset, selector, device):.2f} |')
  return '\n'.join(lines) + '\n'


def main(argv):
  del argv
  text = report()
  path = pathlib.Path(_OUT.value)
  path.parent.mkdir(parents=True, exist_ok=True)
  path.write_text(text)
  print(text)


if __name__ == '__main__':
  app.run(main)
