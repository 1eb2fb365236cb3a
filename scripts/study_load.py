"""How busy the machine was while a study ran, and which runs shared it.

  python scripts/study_load.py monitor OUT.csv [--interval=S]
  python scripts/study_load.py summarize OUT.csv STUDY.log [--busy=CORES]

`monitor` samples the CPU until it is killed, appending one CSV row per
interval: the time, the 1-minute load average, and the cores busy in that
interval split into those used by the monitor's own process group (the study
script that started it, with every run it launches) and by everything else.
`summarize` reads a study log's `<time> start NAME` / `<time> done NAME`
lines and prints, per run, the mean and the peak of the other work's cores;
a run whose mean exceeds --busy (default 0.25 of a core) shared the machine,
so its seconds are not a quiet machine's. Linux only (/proc).
"""

import argparse
import csv
import datetime
import os
import sys
import time

COLUMNS = ('time', 'load1', 'busy_cores', 'study_cores', 'other_cores')


def cpu_busy_ticks(proc_stat: str) -> int:
  """Busy clock ticks of all CPUs (total less idle and iowait)."""
  for line in proc_stat.splitlines():
    if line.startswith('cpu '):
      ticks = [int(v) for v in line.split()[1:]]
      return sum(ticks) - ticks[3] - ticks[4]
  raise ValueError('no aggregate cpu line in /proc/stat')


def group_ticks(pgid: int, proc: str = '/proc') -> int:
  """CPU ticks of the live processes of group `pgid` and of their waited
  children (a finished run's ticks stay counted in its parent's)."""
  total = 0
  for name in os.listdir(proc):
    if not name.isdigit():
      continue
    try:
      with open(os.path.join(proc, name, 'stat')) as f:
        stat = f.read()
    except OSError:  # Gone since listed.
      continue
    # The command name is in parentheses and may hold spaces.
    fields = stat[stat.rindex(')') + 2:].split()
    if int(fields[2]) == pgid:
      total += sum(int(v) for v in fields[11:15])  # utime stime cutime cstime
  return total


def monitor(out: str, interval: float):
  ticks_per_second = os.sysconf('SC_CLK_TCK')
  pgid = os.getpgid(0)
  new_file = not os.path.exists(out)
  with open(out, 'a', newline='') as f:
    writer = csv.writer(f)
    if new_file:
      writer.writerow(COLUMNS)
    with open('/proc/stat') as s:
      busy = cpu_busy_ticks(s.read())
    study, start = group_ticks(pgid), time.monotonic()
    while True:
      time.sleep(interval)
      with open('/proc/stat') as s:
        now_busy = cpu_busy_ticks(s.read())
      now_study, now = group_ticks(pgid), time.monotonic()
      seconds = (now - start) * ticks_per_second
      busy_cores = (now_busy - busy) / seconds
      # A process of the group that exited unwaited takes its ticks along.
      study_cores = min(max(now_study - study, 0) / seconds, busy_cores)
      with open('/proc/loadavg') as s:
        load1 = float(s.read().split()[0])
      writer.writerow([_utc_now(), load1, round(busy_cores, 3),
                       round(study_cores, 3),
                       round(busy_cores - study_cores, 3)])
      f.flush()
      busy, study, start = now_busy, now_study, now


def _utc_now() -> str:
  return datetime.datetime.now(datetime.timezone.utc).strftime(
      '%Y-%m-%dT%H:%M:%SZ')


def _parse_time(text: str) -> datetime.datetime:
  return datetime.datetime.strptime(text, '%Y-%m-%dT%H:%M:%SZ')


def run_spans(log_lines) -> list[tuple[str, datetime.datetime,
                                       datetime.datetime | None]]:
  """(name, start, end or None) of each run, from `<time> start|done NAME`
  lines; a run started again (resumed) gets one span per attempt."""
  spans, open_runs = [], {}
  for line in log_lines:
    parts = line.split(maxsplit=2)
    if len(parts) != 3 or parts[1] not in ('start', 'done'):
      continue
    try:
      when = _parse_time(parts[0])
    except ValueError:
      continue
    name = parts[2].strip()
    if parts[1] == 'start':
      if name in open_runs:  # Killed before it was done.
        spans.append((name, open_runs.pop(name), None))
      open_runs[name] = when
    elif name in open_runs:
      spans.append((name, open_runs.pop(name), when))
  spans.extend((name, start, None) for name, start in open_runs.items())
  return spans


def summarize(samples: list[dict[str, str]], spans, busy: float
              ) -> list[dict[str, object]]:
  rows = []
  for name, start, end in spans:
    inside = [float(s['other_cores']) for s in samples
              if start <= _parse_time(s['time'])
              and (end is None or _parse_time(s['time']) <= end)]
    mean = sum(inside) / len(inside) if inside else float('nan')
    rows.append({
        'run': name, 'start': start.strftime('%Y-%m-%dT%H:%M:%SZ'),
        'minutes': round((end - start).total_seconds() / 60, 1) if end
                   else '(not done)',
        'other_cores_mean': round(mean, 2) if inside else '',
        'other_cores_max': round(max(inside), 2) if inside else '',
        'shared': ('yes' if mean > busy else 'no') if inside else 'unknown',
    })
  return rows


def main(argv):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  commands = parser.add_subparsers(dest='command', required=True)
  watch = commands.add_parser('monitor')
  watch.add_argument('out')
  watch.add_argument('--interval', type=float, default=15.0)
  report = commands.add_parser('summarize')
  report.add_argument('samples')
  report.add_argument('log')
  report.add_argument('--busy', type=float, default=0.25)
  args = parser.parse_args(argv)
  if args.command == 'monitor':
    monitor(args.out, args.interval)
    return
  with open(args.samples) as f:
    samples = list(csv.DictReader(f))
  with open(args.log) as f:
    spans = run_spans(f)
  rows = summarize(samples, spans, args.busy)
  columns = ('run', 'start', 'minutes', 'other_cores_mean', 'other_cores_max',
             'shared')
  print('| ' + ' | '.join(columns) + ' |')
  print('|' + '---|' * len(columns))
  for row in rows:
    print('| ' + ' | '.join(str(row[c]) for c in columns) + ' |')


if __name__ == '__main__':
  main(sys.argv[1:])
