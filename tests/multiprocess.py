"""Starts several JAX processes on loopback (CPU, gloo) and cleans them up."""

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port() -> int:
  with contextlib.closing(socket.socket()) as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


def environment() -> dict[str, str]:
  """This environment minus the simulated-device split (a flag per process
  sets the device count) but with the collective timeout kept."""
  flags = [f for f in os.environ.get('XLA_FLAGS', '').split()
           if not f.startswith('--xla_force_host_platform_device_count')]
  if not any('collective_call_terminate' in f for f in flags):
    flags.append('--xla_cpu_collective_call_terminate_timeout_seconds=86400')
  return dict(os.environ, XLA_FLAGS=' '.join(flags),
              PYTHONPATH=REPO + os.pathsep + os.environ.get('PYTHONPATH', ''))


def distributed_flags(port: int, count: int, index: int,
                      devices: int = 2) -> list[str]:
  return [f'--coordinator_address=127.0.0.1:{port}',
          f'--num_processes={count}', f'--process_id={index}',
          f'--cpu_devices_per_process={devices}']


def start(commands: list[list[str]], log_dir: str) -> list[subprocess.Popen]:
  """Starts one process per command, each in its own process group."""
  processes = []
  for i, command in enumerate(commands):
    log = open(os.path.join(log_dir, f'process_{i}.log'), 'w')
    processes.append(subprocess.Popen(
        command, env=environment(), cwd=REPO, stdout=log,
        stderr=subprocess.STDOUT, start_new_session=True))
  return processes


def kill(processes: list[subprocess.Popen]):
  for p in processes:
    if p.poll() is None:
      os.killpg(p.pid, signal.SIGKILL)
  for p in processes:
    p.wait()


def wait(processes: list[subprocess.Popen], timeout: float) -> list[int]:
  """Return codes; kills every process if any is still running at `timeout`."""
  deadline = time.monotonic() + timeout
  try:
    for p in processes:
      p.wait(timeout=max(0.0, deadline - time.monotonic()))
  except subprocess.TimeoutExpired:
    kill(processes)
    raise
  return [p.returncode for p in processes]


def run_main(args: list[str], workdir: str, count: int, log_dir: str,
             timeout: float = 600) -> list[int]:
  """`main.py ARGS` as `count` processes; returns their exit codes."""
  port = free_port()
  processes = start([[sys.executable, os.path.join(REPO, 'main.py'), *args,
                      f'--workdir={workdir}',
                      *distributed_flags(port, count, i)]
                     for i in range(count)], log_dir)
  return wait(processes, timeout)


def log(log_dir: str, index: int) -> str:
  with open(os.path.join(log_dir, f'process_{index}.log')) as f:
    return f.read()
