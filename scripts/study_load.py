"""How busy the machine was while a study ran, and which runs shared it.

  python scripts/study_load.py monitor OUT.csv [--interval=S]
  python scripts/study_load.py summarize OUT.csv STUDY.log [--busy=CORES]
  python scripts/study_load.py shared OUT.csv STUDY.log [--busy=CORES]

`monitor` samples the CPU until it is killed, appending one CSV row per
interval: the time, the 1-minute load average, and the cores busy in that
interval split into those used by the monitor's own process group (the study
script that started it, with every run it launches) and by everything else.
`summarize` reads a study log's `<time> start NAME` / `<time> done NAME`
lines and prints, per run (its attempts folded: a run killed and resumed,
or started again when already complete, starts more than once), its wall
minutes and the mean and the peak of the other work's cores; a run with an
attempt whose mean exceeds --busy (default 0.25 of a core) shared the
machine, so its seconds are not a quiet machine's. `shared` prints those
runs' names, comma-separated, for `python -m svp_jax.report --shared_runs=`.
Linux only (/proc).
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
                                       datetime.datetime | None, bool]]:
  """(name, start, end, done) of each attempt at a run, from `<time>
  start|done NAME` lines. A run started again (resumed, or skipped as
  complete) gets one span per attempt. An attempt killed before its `done`
  (done False) ends at the log's next line, or is open (end None) when
  nothing follows it."""
  events = []
  for line in log_lines:
    parts = line.split(maxsplit=2)
    if len(parts) != 3 or parts[1] not in ('start', 'done'):
      continue
    try:
      events.append((_parse_time(parts[0]), parts[1], parts[2].strip()))
    except ValueError:
      continue

  def next_line_after(index):
    return events[index + 1][0] if index + 1 < len(events) else None

  spans, open_runs = [], {}
  for index, (when, kind, name) in enumerate(events):
    if kind == 'start':
      if name in open_runs:  # Killed before it was done.
        start, at = open_runs.pop(name)
        spans.append((name, start, next_line_after(at), False))
      open_runs[name] = (when, index)
    elif name in open_runs:
      spans.append((name, open_runs.pop(name)[0], when, True))
  for name, (start, at) in open_runs.items():
    spans.append((name, start, next_line_after(at), False))
  return sorted(spans, key=lambda span: span[1])


def summarize(samples: list[dict[str, str]], spans, busy: float
              ) -> list[dict[str, object]]:
  """One row per run, its attempts folded together, in order of first
  start. An attempt without `done` (killed with the monitor, or still
  running) counts until its last sample. A run shared the machine when any
  attempt's mean of the other work's cores exceeds `busy`, since its
  recorded seconds may come from that attempt."""
  times = [_parse_time(s['time']) for s in samples]
  runs: dict[str, dict] = {}
  for name, start, end, done in spans:
    run = runs.setdefault(name, {'start': start, 'seconds': 0.0,
                                 'done': False, 'attempts': 0,
                                 'inside': [], 'shared': False})
    run['attempts'] += 1
    run['done'] = run['done'] or done
    inside_at = [i for i, t in enumerate(times)
                 if start <= t and (end is None or t <= end)]
    if not done:  # Killed or still running: it lasted while sampled.
      end = max((times[i] for i in inside_at), default=start)
    run['seconds'] += (end - start).total_seconds()
    inside = [float(samples[i]['other_cores']) for i in inside_at]
    run['inside'] += inside
    if inside and sum(inside) / len(inside) > busy:
      run['shared'] = True
  rows = []
  for name, run in runs.items():
    inside = run['inside']
    rows.append({
        'run': name, 'start': run['start'].strftime('%Y-%m-%dT%H:%M:%SZ'),
        'attempts': run['attempts'],
        'minutes': round(run['seconds'] / 60, 1),
        'done': 'yes' if run['done'] else 'no',
        'other_cores_mean': (round(sum(inside) / len(inside), 2)
                             if inside else ''),
        'other_cores_max': round(max(inside), 2) if inside else '',
        'shared': ('yes' if run['shared'] else 'no') if inside else 'unknown',
    })
  return rows


def main(argv):
  parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  commands = parser.add_subparsers(dest='command', required=True)
  watch = commands.add_parser('monitor')
  watch.add_argument('out')
  watch.add_argument('--interval', type=float, default=15.0)
  for name in ('summarize', 'shared'):
    report = commands.add_parser(name)
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
  if args.command == 'shared':
    print(','.join(row['run'] for row in rows if row['shared'] == 'yes'))
    return
  columns = ('run', 'start', 'attempts', 'minutes', 'done',
             'other_cores_mean', 'other_cores_max', 'shared')
  print('| ' + ' | '.join(columns) + ' |')
  print('|' + '---|' * len(columns))
  for row in rows:
    print('| ' + ' | '.join(str(row[c]) for c in columns) + ' |')


if __name__ == '__main__':
  main(sys.argv[1:])
