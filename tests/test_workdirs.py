"""Workdirs: one process at a time (svp_jax.workdir_lock), one config
(experiment.claim_workdir), files durable once written (results.atomic_open).
"""

import dataclasses
import fcntl
import json
import os
import signal
import subprocess
import sys

import ml_collections
import numpy as np
import pytest

import multiprocess
from configs import fashion_mnist_resnet20
from configs import fashion_mnist_svp
from configs import own_images
from svp_jax import data
from svp_jax import experiment
from svp_jax import jobs
from svp_jax import labeling
from svp_jax import results
from svp_jax import run_files
from svp_jax import train_job
from svp_jax import validation
from svp_jax import workdir_lock

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Holds WORKDIR's lock as a job would, says so, then waits to be killed.
_HOLDER = r'''
import sys, time
from svp_jax import workdir_lock
with workdir_lock.hold(sys.argv[1], 'label'):
  print('held', flush=True)
  time.sleep(600)
'''


@pytest.fixture
def holder(tmp_path):
  """A second process holding tmp_path/'run' (SIGKILLed at the end)."""
  workdir = str(tmp_path / 'run')
  process = subprocess.Popen([sys.executable, '-c', _HOLDER, workdir],
                             cwd=REPO, stdout=subprocess.PIPE, text=True)
  try:
    assert process.stdout.readline().strip() == 'held'
    yield workdir, process
  finally:
    process.kill()
    process.wait()


def test_a_second_process_is_refused_naming_the_holder(holder):
  workdir, process = holder
  with pytest.raises(workdir_lock.WorkdirError) as error:
    with workdir_lock.hold(workdir, 'label'):
      pass
  message = str(error.value)
  assert '\n' not in message
  assert f'pid {process.pid} on host ' in message
  assert 'mode label' in message and 'Nothing was changed' in message
  # claim_workdir, the lock's other way in, is refused too, writing nothing.
  with pytest.raises(workdir_lock.WorkdirError, match=f'pid {process.pid}'):
    experiment.claim_workdir(workdir, fashion_mnist_svp.get_config('quick'))
  assert os.listdir(workdir) == [workdir_lock.LOCK_FILE]


def test_a_killed_holder_leaves_no_stale_lock(holder):
  workdir, process = holder
  process.send_signal(signal.SIGKILL)
  process.wait()
  with workdir_lock.hold(workdir, 'active'):
    holder_record = json.loads(
        open(workdir_lock.lock_path(workdir)).read())
  assert holder_record['pid'] == os.getpid()
  assert holder_record['mode'] == 'active'


def _locked_by_someone(workdir):
  """Whether another open file description of the lock file is refused."""
  with open(workdir_lock.lock_path(workdir)) as f:
    try:
      fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
      return True
    fcntl.flock(f, fcntl.LOCK_UN)
    return False


def test_the_lock_is_reentrant_and_released_after_the_outer_hold(tmp_path):
  workdir = str(tmp_path / 'run')
  os.makedirs(workdir)
  with workdir_lock.hold(workdir, 'label'):
    with workdir_lock.hold(workdir, 'label'):
      workdir_lock.acquire(workdir, 'label')  # claim_workdir's: a no-op.
    assert _locked_by_someone(workdir)
  assert not _locked_by_someone(workdir)
  assert not workdir_lock.is_held(workdir)


def test_a_job_that_fails_its_checks_leaves_no_workdir(tmp_path):
  workdir = tmp_path / 'new'
  with pytest.raises(validation.ConfigError):
    with workdir_lock.hold(str(workdir), 'train'):
      raise validation.ConfigError('config.seed=-1 is not allowed')
  assert not workdir.exists()


def test_a_workdir_that_is_a_file_is_one_error(tmp_path):
  path = tmp_path / 'results.txt'
  path.write_text('mine')
  config = fashion_mnist_svp.get_config('quick')
  with pytest.raises(workdir_lock.WorkdirError,
                     match=r"^--workdir='.*results.txt' is a file, not a "
                     'folder'):
    jobs.run(config, str(path))
  assert path.read_text() == 'mine'


def _record_config(workdir, config):
  with workdir_lock.hold(workdir, config.mode):
    experiment.claim_workdir(workdir, config)


def test_a_damaged_config_json_is_one_error_naming_it(tmp_path):
  workdir = str(tmp_path)
  config = fashion_mnist_svp.get_config('quick')
  _record_config(workdir, config)
  path = os.path.join(workdir, run_files.CONFIG_JSON)
  with open(path, 'rb') as f:
    truncated = f.read()[:100]
  with open(path, 'wb') as f:
    f.write(truncated)
  with pytest.raises(validation.ConfigError) as error:
    _record_config(workdir, config)
  message = str(error.value)
  assert message.startswith(f'{path} is not valid JSON (')
  assert 'Restore it from a copy' in message and '\n' not in message
  with open(path, 'rb') as f:
    assert f.read() == truncated


def _active_config(rounds):
  config = fashion_mnist_svp.get_config('quick')
  config.selection.rounds = rounds
  return config


def test_rounds_added_to_a_schedule_are_accepted_and_recorded(tmp_path):
  workdir = str(tmp_path)
  _record_config(workdir, _active_config((50.0,)))
  extended = _active_config((50.0, 100.0))
  _record_config(workdir, extended)
  recorded = results.read_json(os.path.join(workdir, run_files.CONFIG_JSON))
  assert recorded['selection']['rounds'] == [50.0, 100.0]
  _record_config(workdir, extended)  # Resuming the extended run.
  labeling = _active_config((50.0, 100.0, 100.0))
  labeling.mode = 'label'
  for changed in (_active_config((50.0,)),  # Fewer rounds than were run.
                  _active_config((60.0, 100.0, 100.0)),  # A run round changed.
                  labeling):  # Another mode.
    with pytest.raises(validation.ConfigError, match='different config'):
      _record_config(workdir, changed)
  assert results.read_json(os.path.join(workdir, run_files.CONFIG_JSON)) == (
      recorded)


def test_only_selection_runs_extend_their_schedule():
  recorded = {'mode': 'coreset', 'selection': {'rounds': [1]}}
  wanted = {'mode': 'coreset', 'selection': {'rounds': [1, 2]}}
  assert not experiment.extends_schedule(recorded, wanted)
  for mode in ('active', 'label'):
    assert experiment.extends_schedule(
        dict(recorded, mode=mode), dict(wanted, mode=mode))


def test_a_train_job_refuses_an_active_runs_workdir(fashion_mnist_dir,
                                                    tmp_path):
  workdir = str(tmp_path)
  _record_config(workdir, fashion_mnist_svp.get_config('quick'))
  metrics = os.path.join(workdir, run_files.METRICS_JSONL)
  with open(metrics, 'w') as f:
    f.write('{"epoch": 1}\n')
  before = _contents(workdir)
  config = fashion_mnist_resnet20.get_config('quick')
  config.data.data_dir = fashion_mnist_dir
  config.data.max_train_examples = 32
  config.data.max_test_examples = 16
  with pytest.raises(validation.ConfigError,
                     match=r'holds a run of a different config'):
    train_job.run(config, workdir)
  assert _contents(workdir) == before


def _contents(workdir):
  """Each file's bytes but the lock's (who holds it changes)."""
  return {name: open(os.path.join(workdir, name), 'rb').read()
          for name in os.listdir(workdir) if name != workdir_lock.LOCK_FILE}


def _fsynced(monkeypatch):
  """The paths os.fsync is called on, in order."""
  calls = []
  real = os.fsync

  def recording(fd):
    calls.append(os.readlink(f'/proc/self/fd/{fd}'))
    return real(fd)

  monkeypatch.setattr(os, 'fsync', recording)
  return calls


def test_an_atomic_write_flushes_the_file_then_its_folder(tmp_path,
                                                          monkeypatch):
  calls = _fsynced(monkeypatch)
  path = tmp_path / 'round' / 'labeled_5.index'
  experiment.write_index(str(path), [3, 1, 4])
  results.write_json(str(tmp_path / 'summary.json'), {'rounds': 1})
  assert calls == [f'{path}.{os.getpid()}.tmp', str(path.parent),
                   f'{tmp_path}/summary.json.{os.getpid()}.tmp',
                   str(tmp_path)]
  np.testing.assert_array_equal(experiment.read_index(str(path)), [3, 1, 4])


def test_an_unflushable_folder_is_a_write_error(tmp_path, monkeypatch):
  real = os.fsync

  def failing_on_folders(fd):
    if os.path.isdir(os.readlink(f'/proc/self/fd/{fd}')):
      raise OSError(5, 'Input/output error')
    return real(fd)

  monkeypatch.setattr(os, 'fsync', failing_on_folders)
  with pytest.raises(results.WriteError, match='a power loss may undo it'):
    results.write_text(str(tmp_path / 'a.txt'), 'x')


def test_a_test_split_without_labels_is_refused_before_training(
    monkeypatch):
  config = fashion_mnist_svp.get_config('quick')
  config.data.test_split = 'unlabelled'
  info = dataclasses.replace(data.dataset_info('fashion_mnist'),
                             test_split='unlabelled')
  monkeypatch.setattr(data, 'configured_info', lambda *a: info)
  loaded = {info.train_split: np.zeros(4, np.int32),
            'unlabelled': np.full(3, data.UNLABELED, np.int32)}
  monkeypatch.setattr(data, 'load_configured_split', lambda _, split, *a: (
      np.zeros((len(loaded[split]), 28, 28, 1), np.uint8), loaded[split]))
  monkeypatch.setattr(experiment, 'make_learner', None)  # Never reached.
  with pytest.raises(data.DataError) as error:
    experiment.load_job(config, '/nonexistent', {'target': config.target})
  message = str(error.value)
  assert message.startswith("config.data.test_split='unlabelled' of "
                            'fashion_mnist: 3 of its 3 examples have no label')
  assert 'Set config.data.test_split to a labeled split' in message


@pytest.mark.slow
def test_main_refuses_a_busy_workdir_and_a_file_in_one_line(holder,
                                                            tmp_path):
  # Two main.py starts (imports only, about 4 s each): nothing loads, since
  # the lock comes first.
  workdir, process = holder
  blocker = tmp_path / 'a_file'
  blocker.write_text('')
  for where, expected in ((workdir, f'pid {process.pid} on host'),
                          (str(blocker), 'is a file, not a folder')):
    out = subprocess.run(
        [sys.executable, 'main.py', '--config=configs/fashion_mnist_svp.py',
         f'--workdir={where}'], cwd=REPO, capture_output=True, text=True,
        timeout=120)
    assert out.returncode == 1, out.stderr
    errors = [l for l in out.stderr.splitlines() if l.startswith('error:')]
    assert len(errors) == 1 and expected in errors[0], out.stderr
    assert 'Traceback' not in out.stderr
  assert os.listdir(workdir) == [workdir_lock.LOCK_FILE]
  assert blocker.read_text() == ''


def _indices(workdir):
  return {os.path.relpath(os.path.join(root, name), workdir):
          np.loadtxt(os.path.join(root, name), dtype=np.int64).tolist()
          for root, _, names in os.walk(workdir) for name in names
          if name.endswith('.index')}


@pytest.mark.slow
def test_a_finished_active_run_goes_on_with_added_rounds(fashion_mnist_dir,
                                                         tmp_path):
  # Random picks without trainings, the schedule's own mechanics: three
  # runs of data loading and checkpointing, about 10 s.
  def config(rounds):
    c = _active_config(rounds)
    c.data.data_dir = fashion_mnist_dir
    c.data.max_train_examples = 300
    c.data.max_test_examples = 10
    c.selection.method = 'random'
    c.selection.initial_subset = 20.0
    c.selection.train_target = False
    return c

  straight, extended = str(tmp_path / 'straight'), str(tmp_path / 'extended')
  jobs.run(config((10.0, 30.0)), straight)
  jobs.run(config((10.0,)), extended)
  assert len(_indices(extended)) == 2
  summary = jobs.run(config((10.0, 30.0)), extended)
  assert summary['rounds_completed'] == 3 and summary['complete']
  assert _indices(extended) == _indices(straight)


# Joins a 2-process CPU run, then holds WORKDIR as a job of it would.
_JOINED_HOLD = r'''
import sys
from svp_jax import distributed, workdir_lock
port, index, workdir = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
distributed.initialize(f'127.0.0.1:{port}', 2, index, cpu_devices=1,
                       timeout_seconds=60)
try:
  with workdir_lock.hold(workdir, 'active'):
    print('held', workdir_lock.is_held(workdir), flush=True)
except workdir_lock.WorkdirError as e:
  print(f'error: {e}', flush=True)
'''


def _two_processes_hold(workdir, log_dir):
  port = multiprocess.free_port()
  processes = multiprocess.start(
      [[sys.executable, '-c', _JOINED_HOLD, str(port), str(index), workdir]
       for index in range(2)], log_dir)
  assert multiprocess.wait(processes, 120) == [0, 0]
  return [[l for l in multiprocess.log(log_dir, i).splitlines()
           if l.startswith(('held', 'error'))] for i in range(2)]


@pytest.mark.slow
def test_process_0_of_a_multi_process_run_holds_the_lock_for_all(holder,
                                                                 tmp_path):
  # Two 2-process runs on loopback (JAX start and join, about 10 s): one in
  # a free workdir, one in the workdir `holder` holds.
  free = str(tmp_path / 'free')
  assert _two_processes_hold(free, str(tmp_path)) == [['held True']] * 2
  busy, process = holder
  first, second = _two_processes_hold(busy, str(tmp_path))
  assert len(first) == 1 and f'pid {process.pid} on host' in first[0]
  assert second == [f'error: process 0 could not lock workdir {busy!r} (its '
                    'error line says why); nothing was changed']


def test_a_labeling_loop_asks_again_once_its_rounds_are_extended(
    own_files, tmp_path, load_script):
  # The loop's own advice when its schedule is done. Random picks of tiny
  # images train nothing: four query commands in about 1.5 s.
  answer = load_script('answer_queries').answer
  config = own_images.get_config('random,quick,label')
  config.data.path = own_files['images']
  config.data.data_dir = str(tmp_path / 'tfds')
  config.selection.initial_subset = 4.0
  config.selection.rounds = (3.0,)
  config.labeling.ignore_file_labels = True
  loop = str(tmp_path / 'loop')
  for round_index in range(2):
    assert labeling.run(config, loop)['round'] == round_index
    answer(loop)
  assert labeling.run(config, loop)['round'] is None  # Schedule complete.
  config.selection.rounds = (3.0, 3.0)
  assert labeling.run(config, loop)['round'] == 2
  recorded = results.read_json(os.path.join(loop, run_files.CONFIG_JSON))
  assert recorded['selection']['rounds'] == [3.0, 3.0]


def test_every_job_holds_its_workdir_only_while_it_runs(tmp_path):
  # Called in-process (tests, scripts), a job frees its workdir when it
  # returns, as under main.py, and keeps no lock file open after it.
  assert all(hasattr(job, '__wrapped__') for job in jobs.JOBS.values())
  seen = []

  @workdir_lock.holds_workdir
  def job(config, workdir):
    seen.append(workdir_lock.is_held(workdir))
    return config.mode

  workdir = str(tmp_path / 'run')
  config = ml_collections.ConfigDict({'mode': 'active'})
  assert job(config, workdir) == 'active'
  assert seen == [True] and not workdir_lock.is_held(workdir)
