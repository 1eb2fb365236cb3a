"""Benchmark building blocks checked against oracles (no timing asserted)."""

import numpy as np
import pytest

from benchmarks import cost_model
from benchmarks import flops
from benchmarks import hardware
from benchmarks import kcenters_numpy
from benchmarks import run_all
from benchmarks import side_by_side
from svp_jax import models
from svp_jax import selection


def test_flops_of_preact20_match_a_hand_count():
  # MACs by hand: the stem, 3 stages (with 1x1 stride-2 projections), dense.
  macs = 32 * 32 * 16 * 9 * 3  # Stem.
  macs += 6 * 32 * 32 * 16 * 9 * 16  # Stage 1: 3 blocks x 2 convs.
  for hw, planes in ((16, 32), (8, 64)):
    macs += hw * hw * planes * 9 * planes // 2  # First conv, stride 2.
    macs += hw * hw * planes * planes // 2  # Projection shortcut.
    macs += 5 * hw * hw * planes * 9 * planes  # The other 5 convs.
  macs += 64 * 10  # Dense.
  assert macs == 40_813_184
  model = models.create_model('preact20', 10)
  assert flops.forward_flops_per_image(model) == 2 * macs
  assert flops.train_flops_per_image(model) == 6 * macs


@pytest.mark.parametrize('labeled_count', [0, 7])
def test_numpy_and_reference_k_centers_match_the_library(labeled_count):
  features, labeled = kcenters_numpy.make_pool(500, 6, labeled_count, seed=3)
  k = 25
  expected = np.asarray(selection.greedy_k_centers(features, labeled, k))
  sq = np.einsum('ij,ij->i', features, features)
  min_d = kcenters_numpy.numpy_init(features, sq, labeled)
  picked, radii = kcenters_numpy.numpy_picks(features, sq, min_d, k)
  np.testing.assert_array_equal(picked, expected)
  assert np.all(np.diff(radii[1:]) <= 1e-5)
  pool, dist, mins = kcenters_numpy.reference_init(features, labeled, k)
  assert dist.shape == (labeled_count + k, 500 - labeled_count)
  picked, _ = kcenters_numpy.reference_picks(features, pool, dist, mins,
                                             labeled_count, k)
  np.testing.assert_array_equal(picked, expected)


def test_peak_memory_sees_an_allocation_inside_the_block():
  # The block stays alive until the `with` ends: Linux updates the
  # high-water mark lazily, so memory already freed inside the block was
  # seen in some runs and not in others (one CI run read -0.0002 GiB).
  with hardware.PeakMemory() as memory:
    block = np.ones(64 * 2**20 // 4, np.float32)  # 64 MiB, touched.
  del block
  if memory.reset_supported:
    assert memory.working_gib >= 60 / 1024
  assert memory.process_peak_gib >= memory.working_gib


def test_cost_model_reproduces_its_calibration_and_counts_kcenters_reads():
  cifar = cost_model.datasets()[0]
  baseline = cifar.selectors[0]
  paper_gpu = cost_model.DEVICES[0]
  # Calibrated on "ResNet164: 181 epochs of 50,000 images in 4 h", so one
  # round training on 50,000 labels takes 4 h.
  one_round = cost_model.Dataset('x', 100_000, (50_000, 1), (baseline,))
  seconds = cost_model.selection_seconds(one_round, baseline, paper_gpu, 1,
                                         kcenters=True)
  assert seconds['train'] == pytest.approx(4 * 3600)
  assert seconds['rank'] == pytest.approx(100_000 * 256 * 4 / 900e9)
  # Training on 1,000 + 5,000 + 10,000 + 15,000 + 20,000 labels over the
  # paper's five rounds: 51/50 of a full run.
  five = cost_model.selection_seconds(cifar, baseline, paper_gpu, 5, False)
  assert five['train'] == pytest.approx(4 * 3600 * 51_000 / 50_000)
  assert '| ImageNet | ResNet18 (proxy) |' in cost_model.report()


def test_interleaving_warms_up_both_orders_then_alternates():
  calls = []
  held = []
  runners = {'a': lambda: calls.append('a'),
             # 'b' keeps 64 MiB of freshly touched pages on every call.
             'b': lambda: (calls.append('b'),
                           held.append(np.ones(2**24, np.float32)))}
  times, faults, warmup = side_by_side.interleaved_seconds(runners, 3)
  # Two warm-up rounds, one in each order: 'b' grows the heap by 16,384
  # pages or fewer per call, under the threshold for another round.
  assert warmup == 2
  assert calls == ['a', 'b', 'b', 'a'] + ['a', 'b', 'b', 'a', 'a', 'b']
  assert [len(times[k]) for k in 'ab'] == [3, 3]
  # Fewer faults than 4 KiB pages where the kernel maps larger folios.
  assert max(faults['a']) < min(faults['b'])


def test_report_names_the_timed_calls_that_faulted_in_fresh_memory():
  row = {'model': 'preact110', 'jax_train_page_faults': [0, 300_000, 12],
         'torch_train_page_faults': [0, 0, 0], 'jax_eval_page_faults': None}
  note = run_all._fresh_memory_note  # pylint: disable=protected-access
  text = note([row])
  assert 'preact110 JAX train 1 of 3' in text and 'PyTorch' not in text
  row['jax_train_page_faults'] = [0, 99_999, 12]
  assert note([row]) == ''


def test_warm_up_continues_while_a_round_grows_the_heap(monkeypatch):
  faults = iter([0, 0, 0, 500_000, 0, 200_000, 0, 0] + [0] * 4)
  counter = [0]

  def fake_faults():
    return counter[0]

  def runner():
    counter[0] += next(faults)

  monkeypatch.setattr(side_by_side, 'minor_page_faults', fake_faults)
  _, timed, warmup = side_by_side.interleaved_seconds(
      {'a': runner, 'b': runner}, 2)
  assert warmup == 4 and timed == {'a': [0, 0], 'b': [0, 0]}
  faults = iter([300_000] * 100)
  _, _, warmup = side_by_side.interleaved_seconds(
      {'a': runner, 'b': runner}, 1, max_warmup_rounds=3)
  assert warmup == 3
