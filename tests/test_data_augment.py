"""svp_jax.data preprocessing and per-host slicing, against NumPy oracles."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from svp_jax import data


@pytest.mark.parametrize('num_examples, process_count', [
    (0, 1), (1, 4), (10, 3), (128, 8), (1000, 7), (49_999, 16), (5, 5)])
def test_process_slice_tiles_the_range_near_equally(num_examples,
                                                    process_count):
  slices = [data.process_slice(num_examples, i, process_count)
            for i in range(process_count)]
  covered = np.concatenate([np.arange(num_examples)[s] for s in slices])
  # In process order, the shares are consecutive and cover every index once.
  np.testing.assert_array_equal(covered, np.arange(num_examples))
  sizes = [s.stop - s.start for s in slices]
  assert max(sizes) - min(sizes) <= 1
  assert all(s.step is None for s in slices)


def test_process_slice_defaults_to_this_process():
  assert jax.process_count() == 1
  assert data.process_slice(17) == slice(0, 17)


def test_process_slice_rejects_bad_arguments():
  with pytest.raises(ValueError, match='process_index=3'):
    data.process_slice(10, 3, 3)
  with pytest.raises(ValueError, match='process_count=0'):
    data.process_slice(10, 0, 0)


def test_normalize_matches_numpy():
  rng = np.random.default_rng(0)
  images = rng.integers(0, 256, (4, 5, 6, 3), dtype=np.uint8)
  mean, std = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
  out = jax.jit(data.normalize, static_argnums=(1, 2))(images, mean, std)
  assert out.dtype == jnp.float32 and out.shape == images.shape
  want = (images / 255.0 - np.array(mean)) / np.array(std)
  np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-5)
  # Float pixels on the same [0, 255] scale give the same result.
  np.testing.assert_allclose(
      data.normalize(images.astype(np.float32), mean, std), out, atol=1e-6)
  # A zero-padded border pixel ends up at -mean / std.
  np.testing.assert_allclose(
      data.normalize(np.zeros((1, 1, 1, 3), np.uint8), mean, std)[0, 0, 0],
      -np.array(mean) / np.array(std), rtol=1e-6)


def _candidates(image, padding):
  """Every crop of the zero-padded image, with and without a flip."""
  height, width, _ = image.shape
  padded = np.pad(image, ((padding, padding), (padding, padding), (0, 0)))
  for top, left in itertools.product(range(2 * padding + 1), repeat=2):
    crop = padded[top:top + height, left:left + width]
    yield (top, left, False), crop
    yield (top, left, True), crop[:, ::-1]


@pytest.mark.parametrize('shape, padding, dtype', [
    ((64, 8, 6, 3), 4, np.uint8),
    ((32, 5, 7, 1), 2, np.float32),
    ((16, 4, 4, 2), 1, np.uint8),
])
def test_random_crop_flip_is_a_crop_of_the_zero_padded_image(shape, padding,
                                                             dtype):
  rng = np.random.default_rng(1)
  # Random nonzero pixels, so that a crop identifies its offset and flip
  # (the exactly-one-match assertion below checks that it does).
  images = rng.integers(1, 256, shape).astype(dtype)
  fn = jax.jit(data.random_crop_flip, static_argnums=2)
  out = np.asarray(fn(jax.random.key(0), images, padding))
  assert out.shape == images.shape and out.dtype == images.dtype
  seen = set()
  for image, result in zip(images, out):
    matches = [how for how, crop in _candidates(image, padding)
               if np.array_equal(crop, result)]
    assert len(matches) == 1
    seen.add(matches[0])
  # Offsets and flips vary across the batch (not one draw for all).
  assert len({how[:2] for how in seen}) > 1
  assert {how[2] for how in seen} == {False, True}


def test_random_crop_flip_is_deterministic_per_key():
  images = np.random.default_rng(2).integers(0, 256, (16, 8, 8, 3), np.uint8)
  first = data.random_crop_flip(jax.random.key(3), images)
  np.testing.assert_array_equal(
      first, data.random_crop_flip(jax.random.key(3), images))
  assert not np.array_equal(
      first, data.random_crop_flip(jax.random.key(4), images))


def test_random_crop_flip_without_padding_only_flips_half():
  images = np.random.default_rng(5).integers(0, 256, (400, 4, 6, 1),
                                             np.uint8)
  out = np.asarray(
      data.random_crop_flip(jax.random.key(6), images, padding=0))
  same = np.array([np.array_equal(a, b) for a, b in zip(out, images)])
  flipped = np.array([np.array_equal(a, b[:, ::-1])
                      for a, b in zip(out, images)])
  # Each output is the input or its mirror image, mirrored about half the
  # time (400 draws: 0.5 +- 0.1 is over 4 standard deviations).
  assert np.all(same | flipped)
  assert 0.4 < flipped.mean() < 0.6
