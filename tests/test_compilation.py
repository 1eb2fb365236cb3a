"""Compile seconds kept apart (svp_jax.timing) and the persistent cache."""

import os
import subprocess
import sys
import time

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from svp_jax import compilation_cache
from svp_jax import timing

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.mark.parametrize('spans,expected', [
    ([], 0.0),
    ([(0.0, 1.0)], 1.0),
    ([(0.0, 1.0), (2.0, 3.5)], 2.5),
    ([(0.0, 3.0), (1.0, 2.0)], 3.0),  # Nested: tracing inside tracing.
    ([(1.0, 3.0), (0.0, 2.0), (2.5, 4.0)], 4.0),  # Overlapping, unsorted.
])
def test_union_seconds_counts_overlaps_once(spans, expected):
  assert timing.union_seconds(spans) == pytest.approx(expected)


def test_timed_splits_a_first_call_into_compiling_and_running():
  size = 257  # A shape no other test compiles.

  @jax.jit
  def work(x):
    for _ in range(20):
      x = jnp.sin(x) @ x
    return x

  x = np.eye(size, dtype=np.float32)
  first, cold = timing.timed(lambda: np.asarray(work(x)))
  second, warm = timing.timed(lambda: np.asarray(work(x)))
  np.testing.assert_array_equal(first, second)
  assert 0 < cold.compile_seconds <= cold.seconds
  assert warm.compile_seconds == 0.0
  assert warm.run_seconds == warm.seconds
  assert cold.run_seconds == pytest.approx(
      cold.seconds - cold.compile_seconds)


def test_timed_sees_no_compiling_in_plain_python():
  _, took = timing.timed(time.sleep, 0.05)
  assert took.compile_seconds == 0.0 and took.seconds >= 0.05


def test_cache_folder_choice(monkeypatch, tmp_path):
  monkeypatch.delenv(compilation_cache.CACHE_ENV, raising=False)
  monkeypatch.setenv('XDG_CACHE_HOME', str(tmp_path / 'xdg'))
  assert compilation_cache.chosen_dir(None) == str(
      tmp_path / 'xdg' / 'svp_jax' / 'jax')
  monkeypatch.setenv(compilation_cache.CACHE_ENV, str(tmp_path / 'env'))
  assert compilation_cache.chosen_dir(None) == str(tmp_path / 'env')
  assert compilation_cache.chosen_dir(str(tmp_path / 'flag')) == str(
      tmp_path / 'flag')  # The flag wins over the environment.
  assert compilation_cache.chosen_dir('off') is None
  assert compilation_cache.chosen_dir(' OFF ') is None
  monkeypatch.setenv(compilation_cache.CACHE_ENV, 'off')
  assert compilation_cache.chosen_dir(None) is None


def test_an_unusable_cache_folder_is_one_clear_error(tmp_path):
  blocker = tmp_path / 'a_file'
  blocker.write_text('not a folder')
  with pytest.raises(compilation_cache.CacheError,
                     match=r"--compilation_cache=.*a_file/jax.*cannot create"):
    compilation_cache.configure(str(blocker / 'jax'))


@pytest.mark.parametrize('mode,who', [(0o777, 'group and others'),
                                      (0o775, 'group'), (0o1757, 'others')])
def test_a_cache_folder_others_can_write_is_refused(tmp_path, mode, who):
  folder = tmp_path / 'shared'
  folder.mkdir()
  folder.chmod(mode)
  with pytest.raises(compilation_cache.CacheError) as error:
    compilation_cache.configure(str(folder))
  message = str(error.value)
  assert message.startswith(f"--compilation_cache='{folder}' is writable by "
                            f'{who} (mode {mode & 0o7777:04o})')
  assert f'chmod go-w {folder}' in message
  assert os.listdir(folder) == []  # Nothing written, nothing read.


def test_a_loose_subfolder_of_a_private_cache_is_refused(tmp_path):
  folder = tmp_path / 'cache'
  sub = folder / f'partitioning-{compilation_cache.partitioning_fingerprint()}'
  sub.mkdir(parents=True)
  folder.chmod(0o700)
  sub.chmod(0o777)
  with pytest.raises(compilation_cache.CacheError,
                     match=r'partitioning-.* is writable by group and others'):
    compilation_cache.configure(str(folder))


def test_cache_folders_made_here_are_private(tmp_path):
  folder = tmp_path / 'new' / 'jax'
  compilation_cache.make_private_dir(str(folder))
  assert folder.stat().st_mode & 0o777 == 0o700
  readable = tmp_path / 'readable'
  readable.mkdir()
  readable.chmod(0o755)  # Others may read, not write: accepted.
  compilation_cache.make_private_dir(str(readable))


_COMPILE_ONCE = r'''
import os, sys
import jax, jax.numpy as jnp, numpy as np
from svp_jax import compilation_cache, models, runtime, sharding, train
folder = compilation_cache.configure(sys.argv[1])
# Write every compile, however quick, so both processes write the same set.
jax.config.update('jax_persistent_cache_min_compile_time_secs', 0)
hits = []
jax.monitoring.register_event_listener(
    lambda event, **kw: hits.append(event) if 'cache_hits' in event else None)
# A model step as runs compile it: with the oneDNN convolutions where they
# build (custom_partitioning ops, whose callback address differs in every
# process), else XLA's.
model = models.create_model(
    'preact8', 10, conv_general_dilated=runtime.current().conv_general_dilated)
cfg = train.StepConfig(num_classes=10, mean=(0.5,), std=(0.25,))
mesh = sharding.make_mesh()
state = train.init_state(jax.random.key(0), model, (8, 8, 1), cfg, mesh)
images = jax.device_put(np.zeros((4, 8, 8, 1), np.uint8),
                        sharding.replicated(mesh))
np.asarray(train.predict_step(state, images, model=model, cfg=cfg)[0])
print(len(os.listdir(folder)), len(hits))
'''


def _compile_once_in_a_process(cache):
  env = dict(os.environ, JAX_PLATFORMS='cpu')
  out = subprocess.run([sys.executable, '-c', _COMPILE_ONCE, str(cache)],
                       cwd=REPO, env=env, capture_output=True, text=True,
                       check=True)
  entries, hits = out.stdout.split()
  return int(entries), int(hits)


@pytest.mark.slow
def test_a_second_process_reads_the_compiled_program_back(tmp_path):
  cache = tmp_path / 'cache'
  entries_first, hits_first = _compile_once_in_a_process(cache)
  entries_second, hits_second = _compile_once_in_a_process(cache)
  assert entries_first >= 2 and hits_first == 0  # init_state, predict_step...
  assert hits_second == entries_first  # Every entry read back...
  assert entries_second == entries_first  # ... and nothing new written.


def test_main_reports_an_unusable_cache_folder_in_one_line(tmp_path):
  blocker = tmp_path / 'a_file'
  blocker.write_text('')
  out = subprocess.run(
      [sys.executable, 'main.py', '--config=configs/fashion_mnist_svp.py',
       f'--compilation_cache={blocker}/jax', f'--workdir={tmp_path}/w'],
      cwd=REPO, capture_output=True, text=True,
      env=dict(os.environ, JAX_PLATFORMS='cpu'))
  assert out.returncode == 1
  last = out.stderr.strip().splitlines()[-1]
  assert last.startswith('error: --compilation_cache=') and 'a_file' in last
  assert 'Traceback' not in out.stderr
  assert not os.path.exists(tmp_path / 'w')
