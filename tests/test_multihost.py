"""Multi-process runs: 2 JAX processes with 2 CPU devices each, on loopback.

Each test starts real processes (tests/multiprocess.py) joined by
jax.distributed with gloo collectives, bounds them in time and kills them
(whole process groups) if they overrun.
"""

import os
import signal
import subprocess
import sys
import time

import jax
import numpy as np
import pytest

import multiprocess
import multihost_selection_worker
from svp_jax import preemption
from svp_jax import sharding
from test_active import read_indices

TIMEOUT = 600


def tiny_active_args(data_dir, method='kcenters'):
  """A 600-image pool, 50 then +50, +100, +100 labels, 1-2 epoch models.

  Images are decoded on demand (`in_memory=False`), so each process reads
  only the rows it feeds.
  """
  return [f'--config=configs/fashion_mnist_svp.py:{method},quick',
          f'--config.data.data_dir={data_dir}',
          '--config.data.max_train_examples=600',
          '--config.data.max_test_examples=200',
          '--config.data.in_memory=False',
          '--config.selection.initial_subset=50.0',
          '--config.selection.rounds=(50.0, 100.0, 100.0)',
          '--config.target.model.name=preact8',
          '--config.target.train.lr_schedule=((2, 0.05),)']


def test_processes_select_what_one_process_selects(tmp_path):
  """Same pool scores, features and selections on every process, bit for
  bit, and the selections of a single process over as many devices (4)."""
  port = multiprocess.free_port()
  worker = os.path.join(multiprocess.REPO, 'tests',
                        'multihost_selection_worker.py')
  processes = multiprocess.start(
      [[sys.executable, worker, str(tmp_path),
        *multiprocess.distributed_flags(port, 2, i)] for i in range(2)],
      str(tmp_path))
  codes = multiprocess.wait(processes, TIMEOUT)
  assert codes == [0, 0], multiprocess.log(str(tmp_path), 0)[-3000:]
  got = [np.load(tmp_path / f'process_{process}.npz') for process in range(2)]
  for name in got[0].files:
    np.testing.assert_array_equal(got[1][name], got[0][name],
                                  err_msg=f'processes differ: {name}')
  # A single process over as many devices selects the same points. Its
  # floats may differ by an ulp: on some CPUs (this AMD EPYC) XLA:CPU
  # compiles the multi-process program's convolutions differently.
  expected = multihost_selection_worker.compute(
      sharding.make_mesh(jax.devices()[:4]))
  for name in ('top_k', 'kcenters'):
    np.testing.assert_array_equal(got[0][name], expected[name],
                                  err_msg=name)
  for name in ('scores', 'features'):
    np.testing.assert_allclose(got[0][name], expected[name], rtol=1e-6,
                               atol=1e-7, err_msg=name)


@pytest.fixture(scope='module')
def two_process_run(fashion_mnist_dir, tmp_path_factory):
  """An uninterrupted 2-process k-centers run: (workdir, log dir)."""
  logs = tmp_path_factory.mktemp('two_process_logs')
  workdir = tmp_path_factory.mktemp('two_process') / 'run'
  codes = multiprocess.run_main(tiny_active_args(fashion_mnist_dir),
                                str(workdir), 2, str(logs), TIMEOUT)
  assert codes == [0, 0], multiprocess.log(str(logs), 0)[-3000:]
  return workdir, logs


@pytest.mark.slow
def test_two_process_run_matches_one_process(two_process_run,
                                             fashion_mnist_dir, tmp_path):
  workdir, logs = two_process_run
  assert 'Process 1 of 2 joined: 2 local and 4 global devices' in (
      multiprocess.log(str(logs), 1))
  env = dict(os.environ, XLA_FLAGS=sharding.simulated_cpu_devices_flags(4))
  one = tmp_path / 'one'
  result = subprocess.run(
      [sys.executable, 'main.py', *tiny_active_args(fashion_mnist_dir),
       f'--workdir={one}'], cwd=multiprocess.REPO, env=env,
      capture_output=True, text=True, timeout=TIMEOUT)
  assert result.returncode == 0, result.stderr[-3000:]
  two_sets, one_sets = read_indices(workdir), read_indices(one)
  assert sorted(two_sets) == sorted(one_sets) == [
      'initial_subset_50.index', 'labeled_100.index', 'labeled_200.index',
      'labeled_300.index']
  # The random start is the same by construction. Later rounds select from
  # models trained on 4 devices in 1 or 2 processes, whose float sums may
  # differ in the last bits (the exact check on equal scores is the test
  # above); they must still agree almost everywhere.
  np.testing.assert_array_equal(two_sets['initial_subset_50.index'],
                                one_sets['initial_subset_50.index'])
  for name in two_sets:
    shared = np.intersect1d(two_sets[name], one_sets[name])
    assert len(shared) >= 0.9 * len(one_sets[name]), name
  # One process wrote the tables; both logged the same selections.
  assert (workdir / 'target.csv').exists()


def _start_two(args, workdir, log_dir):
  """`main.py ARGS --workdir=WORKDIR` as 2 processes (not waited for)."""
  port = multiprocess.free_port()
  command = [sys.executable, 'main.py', *args, f'--workdir={workdir}']
  return multiprocess.start(
      [command + multiprocess.distributed_flags(port, 2, i)
       for i in range(2)], str(log_dir))


def _wait_until(condition, processes, what):
  deadline = time.monotonic() + TIMEOUT
  while not condition():
    assert all(p.poll() is None for p in processes), (
        f'run ended before it could be {what}')
    assert time.monotonic() < deadline
    time.sleep(0.05)


def _resume_and_compare(args, workdir, log_dir, straight):
  """Runs the 2-process run to its end; its selections must be straight's."""
  codes = multiprocess.run_main(args, str(workdir), 2, str(log_dir), TIMEOUT)
  assert codes == [0, 0], multiprocess.log(str(log_dir), 0)[-3000:]
  a, b = read_indices(straight), read_indices(workdir)
  assert sorted(a) == sorted(b)
  for name in a:
    np.testing.assert_array_equal(a[name], b[name], err_msg=name)


@pytest.mark.slow
def test_killed_two_process_run_resumes_to_the_same_selections(
    two_process_run, fashion_mnist_dir, tmp_path):
  straight, _ = two_process_run
  resumed, args = tmp_path / 'resumed', tiny_active_args(fashion_mnist_dir)
  processes = _start_two(args, resumed, tmp_path)
  try:
    _wait_until((resumed / 'checkpoints' / '2').exists, processes, 'killed')
    for p in processes:
      os.killpg(p.pid, signal.SIGKILL)
  finally:
    multiprocess.kill(processes)
  assert not (resumed / 'proxy' / '300').exists(), 'killed too late'
  _resume_and_compare(args, resumed, tmp_path, straight)
  assert 'Resuming' in multiprocess.log(str(tmp_path), 0)


@pytest.mark.slow
def test_a_hung_collective_aborts_and_the_run_resumes(
    two_process_run, fashion_mnist_dir, tmp_path):
  # Freezing one process leaves the other waiting in a collective that never
  # completes, as the 2-device hang seen on this CPU did; its watchdog must
  # turn that into an abort naming the phase, and a restart must resume.
  straight, _ = two_process_run
  resumed, args = tmp_path / 'resumed', tiny_active_args(fashion_mnist_dir)
  processes = _start_two(args + ['--config.preemption.hang_minutes=0.5'],
                         resumed, tmp_path)
  try:
    _wait_until((resumed / 'checkpoints' / '2').exists, processes, 'frozen')
    os.killpg(processes[1].pid, signal.SIGSTOP)
    status = processes[0].wait(timeout=TIMEOUT)
  finally:
    multiprocess.kill(processes)
  log = multiprocess.log(str(tmp_path), 0)
  assert status == preemption.HUNG_STATUS, log[-3000:]
  errors = [l for l in log.splitlines() if l.startswith('error: no progress')]
  assert len(errors) == 1 and ' while ' in errors[0], log[-3000:]
  assert not (resumed / 'proxy' / '300').exists(), 'froze too late'
  _resume_and_compare(args, resumed, tmp_path, straight)


@pytest.mark.slow
def test_sigterm_to_one_process_stops_all_at_one_step_and_resumes(
    fashion_mnist_dir, tmp_path):
  # Targets of 2 epochs of 13 steps: a SIGTERM to process 1 during the
  # round-1 target's training stops both processes at the same step.
  recipe = ['--config.target.train.batch_size=8',
            '--config.target.train.lr_schedule=((2, 0.05),)']
  args = tiny_active_args(fashion_mnist_dir)[:-1] + recipe
  straight = tmp_path / 'straight'
  codes = multiprocess.run_main(args, str(straight), 2, str(tmp_path),
                                TIMEOUT)
  assert codes == [0, 0], multiprocess.log(str(tmp_path), 0)[-3000:]
  resumed, logs = tmp_path / 'resumed', tmp_path / 'logs'
  logs.mkdir()
  processes = _start_two(args, resumed, logs)
  try:
    _wait_until(lambda: 'target preact8 n=100 epoch 1/2:' in (
        multiprocess.log(str(logs), 1)), processes, 'stopped')
    processes[1].send_signal(signal.SIGTERM)
    codes = multiprocess.wait(processes, TIMEOUT)
  finally:
    multiprocess.kill(processes)
  assert codes == [preemption.PREEMPTED_STATUS] * 2, (
      multiprocess.log(str(logs), 0)[-3000:])
  where = [[l.split(' after saving')[0] for l in
            multiprocess.log(str(logs), i).splitlines()
            if l.startswith('stopped: ')] for i in range(2)]
  assert len(where[0]) == 1 and where[0] == where[1], where
  assert 'stopped in target' in where[0][0]
  _resume_and_compare(args, resumed, logs, straight)


def test_processes_with_different_configs_are_refused(fashion_mnist_dir,
                                                      tmp_path):
  port = multiprocess.free_port()
  processes = multiprocess.start(
      [[sys.executable, 'main.py', *tiny_active_args(fashion_mnist_dir),
        f'--config.seed={seed}', f'--workdir={tmp_path / "run"}',
        *multiprocess.distributed_flags(port, 2, seed)] for seed in (0, 1)],
      str(tmp_path))
  codes = multiprocess.wait(processes, TIMEOUT)
  assert codes == [1, 1]
  for process in range(2):
    assert ('error: processes [1] were started with a config different from '
            'process 0') in multiprocess.log(str(tmp_path), process)
  assert not (tmp_path / 'run').exists()


def test_unreachable_coordinator_fails_quickly(tmp_path):
  start = time.monotonic()
  processes = multiprocess.start(
      [[sys.executable, 'main.py', '--config=configs/fashion_mnist_svp.py',
        '--distributed_timeout=5', f'--workdir={tmp_path / "run"}',
        *multiprocess.distributed_flags(multiprocess.free_port(), 2, 1)]],
      str(tmp_path))
  assert multiprocess.wait(processes, TIMEOUT) == [1]
  assert time.monotonic() - start < 120
  assert 'error: could not join the distributed run' in multiprocess.log(
      str(tmp_path), 0)
  assert not (tmp_path / 'run').exists()


@pytest.mark.slow
def test_two_process_coreset_run(fashion_mnist_dir, tmp_path):
  """The core-set path too: one proxy, subsets agreed by both processes."""
  workdir = tmp_path / 'coreset'
  codes = multiprocess.run_main(
      ['--config=configs/fashion_mnist_coreset.py:kcenters,quick',
       f'--config.data.data_dir={fashion_mnist_dir}',
       '--config.data.max_train_examples=400',
       '--config.data.max_test_examples=200', '--config.data.in_memory=False',
       '--config.coreset.methods=("forgetting_events", "kcenters")',
       '--config.coreset.subset_size=100.0',
       '--config.coreset.kcenters_seeds=10'],
      str(workdir), 2, str(tmp_path), TIMEOUT)
  assert codes == [0, 0], multiprocess.log(str(tmp_path), 0)[-3000:]
  for method in ('forgetting_events', 'kcenters'):
    kept = np.loadtxt(workdir / method / 'coreset_100.index', dtype=np.int64)
    assert len(np.unique(kept)) == 100 and kept.max() < 400
    assert (workdir / method / 'target.csv').exists()
