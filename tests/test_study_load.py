"""scripts/study_load.py: which runs of a study shared the machine."""

import pytest


@pytest.fixture(scope='module')
def study_load(load_script):
  return load_script('study_load')


def sample(time, other):
  return {'time': time, 'load1': '1.0', 'busy_cores': '2.0',
          'study_cores': str(2.0 - other), 'other_cores': str(other)}


LOG = """\
2026-12-07T04:00:00Z start a_seed0
2026-12-07T04:10:00Z done a_seed0
2026-12-07T04:10:00Z start b_seed0
not a log line
2026-12-07T12:00:00Z start a_seed0
2026-12-07T12:00:06Z done a_seed0
2026-12-07T12:00:06Z start b_seed0
2026-12-07T12:05:00Z done b_seed0
2026-12-07T12:05:00Z start c_seed0
""".splitlines()

SAMPLES = [
    sample('2026-12-07T04:05:00Z', 0.0),   # a, first attempt: quiet.
    sample('2026-12-07T04:15:00Z', 1.0),   # b, killed attempt: busy...
    sample('2026-12-07T04:20:00Z', 1.0),   # ...its last sample before the kill.
    sample('2026-12-07T12:03:00Z', 0.0),   # b, resumed: quiet.
    sample('2026-12-07T12:06:00Z', 0.0),   # c, still running.
    sample('2026-12-07T12:07:00Z', 0.1),
]


def test_attempts_end_at_their_done_or_at_the_next_line(study_load):
  spans = study_load.run_spans(LOG)
  names = [(name, done) for name, _, _, done in spans]
  assert names == [('a_seed0', True), ('b_seed0', False), ('a_seed0', True),
                   ('b_seed0', True), ('c_seed0', False)]
  killed = spans[1]
  assert str(killed[2]) == '2026-12-07 12:00:00'  # The next line of the log.
  assert spans[-1][2] is None  # Nothing after it: still running, or killed.


def test_a_run_is_one_row_shared_when_any_attempt_was(study_load):
  rows = {row['run']: row for row in study_load.summarize(
      SAMPLES, study_load.run_spans(LOG), busy=0.25)}
  assert list(rows) == ['a_seed0', 'b_seed0', 'c_seed0']
  # a: 10 min, then 6 s when started again already complete.
  assert rows['a_seed0']['attempts'] == 2
  assert rows['a_seed0']['minutes'] == 10.1
  assert rows['a_seed0']['shared'] == 'no'
  # b: killed at its last sample (04:20, not at 12:00, the next log line),
  # then resumed for 4.9 min on a quiet machine; its first attempt was busy.
  assert rows['b_seed0']['minutes'] == round(10 + 294 / 60, 1)
  assert rows['b_seed0']['done'] == 'yes'
  assert rows['b_seed0']['other_cores_mean'] == 0.67
  assert rows['b_seed0']['shared'] == 'yes'
  # c: running, counted until its last sample.
  assert rows['c_seed0']['done'] == 'no'
  assert rows['c_seed0']['minutes'] == 2.0
  assert rows['c_seed0']['shared'] == 'no'


def test_a_run_without_samples_is_unknown(study_load):
  rows = study_load.summarize([], study_load.run_spans(LOG), busy=0.25)
  assert {row['shared'] for row in rows} == {'unknown'}
  assert {row['other_cores_mean'] for row in rows} == {''}


def test_shared_prints_the_names_for_the_report(study_load, tmp_path, capsys):
  samples, log = tmp_path / 'load.csv', tmp_path / 'study.log'
  with open(samples, 'w', newline='') as f:
    f.write(','.join(study_load.COLUMNS) + '\n')
    for s in SAMPLES:
      f.write(','.join(s[c] for c in study_load.COLUMNS) + '\n')
  log.write_text('\n'.join(LOG) + '\n')
  study_load.main(['shared', str(samples), str(log)])
  assert capsys.readouterr().out == 'b_seed0\n'
