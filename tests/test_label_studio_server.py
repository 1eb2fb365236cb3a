"""The Label Studio round trip against a real server on loopback.

Starts the pinned Label Studio of .venv-label-studio
(scripts/setup_label_studio.sh) on 127.0.0.1 with a fresh data folder,
creates projects with svp_jax's labeling config through its HTTP API,
imports svp_jax's task files, posts a person's annotations (answers, a
second opinion, a correction, skips), exports JSON and CSV and reads them
back with svp_jax.label_studio.read_export.

Slow (about 35 s, most of it the server's first start): the only proof that
our files are what a real Label Studio takes and gives.
"""

import json
import os
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request

import numpy as np
from PIL import Image
import pytest

from svp_jax import label_studio

pytestmark = pytest.mark.slow

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
LABEL_STUDIO = os.path.join(REPO, '.venv-label-studio', 'bin', 'label-studio')
TOKEN = 'svp-jax-test-token-0123456789'
CLASSES = ('cat', 'dog', 'bird & <fish> "x"')
START_SECONDS = 120  # First start: database migrations, on 2 busy cores.


class Server:
  """Label Studio's HTTP API, with the test user's token."""

  def __init__(self, url: str):
    self.url = url

  def call(self, method, path, body=None, raw=False):
    data = None if body is None else json.dumps(body).encode()
    headers = {'Authorization': f'Token {TOKEN}'}
    if data is not None:
      headers['Content-Type'] = 'application/json'
    request = urllib.request.Request(self.url + path, data=data,
                                     method=method, headers=headers)
    try:
      with urllib.request.urlopen(request, timeout=60) as response:
        content = response.read()
    except urllib.error.HTTPError as e:
      pytest.fail(f'{method} {path}: HTTP {e.code}: {e.read()[:2000]!r}')
    return content if raw else json.loads(content)


def free_port() -> int:
  with socket.socket() as s:
    s.bind(('127.0.0.1', 0))
    return s.getsockname()[1]


@pytest.fixture(scope='module')
def server(tmp_path_factory):
  if not os.access(LABEL_STUDIO, os.X_OK):
    pytest.fail(f'{LABEL_STUDIO} is missing: run bash '
                'scripts/setup_label_studio.sh (scripts/setup.sh --dev runs '
                'it)')
  base = tmp_path_factory.mktemp('label_studio')
  root = base / 'root'
  root.mkdir()
  port = free_port()
  env = dict(
      os.environ,
      LABEL_STUDIO_BASE_DATA_DIR=str(base / 'data'),
      LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED='true',
      LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT=str(root),
      # Loopback only: no error reports, version checks or analytics.
      SENTRY_DSN='', FRONTEND_SENTRY_DSN='', LATEST_VERSION_CHECK='false',
      COLLECT_ANALYTICS='false')
  log_path = base / 'server.log'
  with open(log_path, 'wb') as log:
    process = subprocess.Popen(
        [LABEL_STUDIO, 'start', '--no-browser', '--data-dir',
         str(base / 'data'), '--internal-host', '127.0.0.1', '--port',
         str(port), '--username', 'svp@example.com', '--password',
         'svp-jax-test-password', '--user-token', TOKEN,
         '--enable-legacy-api-token'],
        env=env, stdin=subprocess.DEVNULL, stdout=log,
        stderr=subprocess.STDOUT, cwd=base)
  url = f'http://127.0.0.1:{port}'
  try:
    deadline = time.monotonic() + START_SECONDS
    while True:
      try:
        with urllib.request.urlopen(url + '/health', timeout=5) as r:
          if r.status == 200:
            break
      except OSError:
        pass
      if process.poll() is not None or time.monotonic() > deadline:
        pytest.fail(f'Label Studio did not start on {url} (exit code '
                    f'{process.poll()}); its log, {log_path}:\n'
                    f'{log_path.read_text(errors="replace")[-3000:]}')
      time.sleep(0.5)
    yield Server(url), root
  finally:
    process.terminate()
    try:
      process.wait(timeout=30)
    except subprocess.TimeoutExpired:
      process.kill()
      process.wait()


def new_project(api, title, config):
  return api.call('POST', '/api/projects',
                  {'title': title, 'label_config': config})['id']


def import_tasks(api, project, path):
  with open(path, encoding='utf-8') as f:
    tasks = json.load(f)
  imported = api.call('POST', f'/api/projects/{project}/import', tasks)
  assert imported['task_count'] == len(tasks)
  listed = api.call('GET', f'/api/tasks?project={project}&page_size=1000')
  return {t['data'][label_studio.ID_KEY]: t['id'] for t in listed['tasks']}


def choose(classes, modality):
  return [{'from_name': label_studio.CHOICES_NAME, 'to_name': modality,
           'type': 'choices', 'value': {'choices': list(classes)}}]


def annotate(api, task_id, answer, modality='image'):
  """An annotation choosing `answer`; None: a skip."""
  body = ({'result': [], 'was_cancelled': True} if answer is None else
          {'result': choose([answer], modality)})
  return api.call('POST', f'/api/tasks/{task_id}/annotations', body)['id']


def export(api, project, kind, path, all_tasks=True):
  query = f'exportType={kind}' + ('&download_all_tasks=true' if all_tasks
                                  else '')
  content = api.call('GET', f'/api/projects/{project}/export?{query}',
                     raw=True)
  path.write_bytes(content)
  return [(raw, answer) for raw, answer, _ in label_studio.read_export(
      str(path))]


def test_image_round_trip(server, tmp_path):
  api, root = server
  images = root / 'pets'  # The storage: a folder below the document root.
  examples = {}
  for pool_id, name in [(11, 'cat/a b&c#ü.png'), (12, 'dog/12.png'),
                        (13, 'cat/13.png'), (14, 'dog/14.png'),
                        (15, 'cat/15.png'), (16, 'dog/16.png')]:
    path = images / name
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((4, 4, 3), pool_id, np.uint8)).save(path)
    examples[pool_id] = str(path)
  rows = [{'id': i, 'example': p, 'predicted': CLASSES[i % 3],
           'confidence': f'{0.1 * (i - 10):.4f}', 'answer': ''}
          for i, p in examples.items()]
  queries = tmp_path / 'queries'
  tasks_path = str(queries / 'round_1.label_studio.json')
  config_path = str(queries / 'label_studio_config.xml')
  label_studio.write_tasks(tasks_path, rows, CLASSES, 'image', 1,
                           root=str(root))
  label_studio.write_labeling_config(config_path, CLASSES, 'image')
  with open(config_path, encoding='utf-8') as f:
    project = new_project(api, 'svp_jax images', f.read())
  api.call('POST', '/api/storages/localfiles',
           {'project': project, 'path': str(images), 'title': 'pets',
            'use_blob_urls': True})
  task_ids = import_tasks(api, project, tasks_path)
  assert sorted(task_ids) == sorted(examples)

  # Each task's image URL serves its file; its prediction carries a score.
  with open(tasks_path, encoding='utf-8') as f:
    for task in json.load(f):
      served = api.call('GET', task['data']['image'], raw=True)
      with open(examples[task['data']['pool_id']], 'rb') as image:
        assert served == image.read()
  predictions = api.call('GET', f'/api/predictions?project={project}')
  assert sorted((p['task'], p['score'], p['result'][0]['value']['choices'])
                for p in predictions) == sorted(
                    (task_ids[r['id']], float(r['confidence']),
                     [r['predicted']]) for r in rows)

  annotate(api, task_ids[11], 'dog')
  annotate(api, task_ids[12], 'cat')
  annotate(api, task_ids[12], CLASSES[2])  # A second opinion, later: it.
  annotate(api, task_ids[13], 'cat')
  annotate(api, task_ids[13], None)  # Skipped after answering: the answer.
  annotate(api, task_ids[14], None)  # Skipped.
  first = annotate(api, task_ids[16], 'dog')
  annotate(api, task_ids[16], 'cat')
  # The first annotation corrected after the second: the correction.
  api.call('PATCH', f'/api/annotations/{first}',
           {'result': choose([CLASSES[2]], 'image')})
  expected = {'11': 'dog', '12': CLASSES[2], '13': 'cat', '14': '',
              '15': '', '16': CLASSES[2]}

  assert sorted(export(api, project, 'JSON', tmp_path / 'export.json')) == (
      sorted(expected.items()))
  # The CSV has no row for a task whose only annotation is a skip.
  assert sorted(export(api, project, 'CSV', tmp_path / 'export.csv')) == (
      sorted((k, v) for k, v in expected.items() if k != '14'))
  # Label Studio's default export: the annotated tasks only.
  assert sorted(export(api, project, 'JSON', tmp_path / 'annotated.json',
                       all_tasks=False)) == sorted(
                           (k, v) for k, v in expected.items() if k != '15')


def test_text_round_trip_from_round_0(server, tmp_path):
  api, _ = server
  texts = {0: 'a "quoted", multiline\nreview', 1: 'plain', 2: 'ünïcode'}
  rows = [{'id': i, 'example': t, 'predicted': '', 'confidence': '',
           'answer': ''} for i, t in texts.items()]
  tasks_path = str(tmp_path / 'round_0.label_studio.json')
  label_studio.write_tasks(tasks_path, rows, CLASSES, 'text', 0)
  project = new_project(api, 'svp_jax texts',
                        label_studio.labeling_config(CLASSES, 'text'))
  task_ids = import_tasks(api, project, tasks_path)
  assert api.call('GET', f'/api/predictions?project={project}') == []
  annotate(api, task_ids[0], CLASSES[2], 'text')
  annotate(api, task_ids[2], 'dog', 'text')
  expected = [('0', CLASSES[2]), ('1', ''), ('2', 'dog')]
  assert sorted(export(api, project, 'JSON', tmp_path / 'e.json')) == expected
  assert sorted(export(api, project, 'CSV', tmp_path / 'e.csv')) == expected


def test_several_choices_in_one_annotation_is_refused(server, tmp_path):
  # The server stores them (its API does not check choice="single"); the
  # reader must not pick one of them.
  api, _ = server
  tasks_path = str(tmp_path / 'round_0.label_studio.json')
  label_studio.write_tasks(tasks_path, [{'id': 5, 'example': 'text'}],
                           CLASSES, 'text', 0)
  project = new_project(api, 'svp_jax several',
                        label_studio.labeling_config(CLASSES, 'text'))
  task_ids = import_tasks(api, project, tasks_path)
  api.call('POST', f'/api/tasks/{task_ids[5]}/annotations',
           {'result': choose(['cat', 'dog'], 'text')})
  for kind in ('JSON', 'CSV'):
    with pytest.raises(label_studio.LabelStudioError,
                       match='one annotation chose 2 classes'):
      export(api, project, kind, tmp_path / f'e.{kind.lower()}')


def test_a_person_labels_from_zero_through_label_studio(server, tmp_path,
                                                        monkeypatch):
  # Issue 32's whole story: a folder of unlabeled images and a classes.txt;
  # three rounds answered (round 1 in Label Studio, the others in the query
  # CSVs), one earlier answer corrected, the target trained, the labels
  # exported: every answer and the correction are in the export, and nothing
  # else is.
  from svp_jax import labeling  # pylint: disable=g-import-not-at-top
  from svp_jax import results  # pylint: disable=g-import-not-at-top
  import test_labeling  # pylint: disable=g-import-not-at-top
  api, root = server
  monkeypatch.setenv('LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT', str(root))
  # 24 images, 2 classes, below the server's document root.
  images, config = test_labeling.zero_label_loop(root / 'shades', (3.0, 3.0))
  config.data.data_dir = str(tmp_path / 'tfds')
  config.labeling.test_examples = 4
  loop = str(tmp_path / 'loop')

  def truth(example):
    return ('dark', 'light')[int(os.path.basename(example)[:2]) % 2]

  given = {}  # What the person answered last, per id.
  first = labeling.run(config, loop)
  wrong = int(first['picked'][0])
  rows = test_labeling.answer_truly(first['queries'], wrong={wrong})
  given.update({int(r['id']): r['answer'] for r in rows})
  second = labeling.run(config, loop)
  assert second['round'] == 1

  # Round 1 in Label Studio: the loop's config and task file, answered in
  # the browser's place through the API, exported as JSON.
  with open(os.path.join(loop, 'queries', labeling.LABEL_STUDIO_CONFIG),
            encoding='utf-8') as f:
    project = new_project(api, 'svp_jax from zero', f.read())
  api.call('POST', '/api/storages/localfiles',
           {'project': project, 'path': images, 'title': 'shades',
            'use_blob_urls': True})
  task_ids = import_tasks(api, project, labeling.tasks_path(loop, 1))
  examples = {int(r['id']): r['example']
              for r in results.read_csv(second['queries'])}
  assert sorted(task_ids) == sorted(examples)
  for pool_id, task_id in task_ids.items():
    annotate(api, task_id, truth(examples[pool_id]))
    given[pool_id] = truth(examples[pool_id])
  content = api.call('GET', f'/api/projects/{project}/export?exportType=JSON'
                     '&download_all_tasks=true', raw=True)
  (tmp_path / 'export.json').write_bytes(content)
  config.labeling.answers = str(tmp_path / 'export.json')
  third = labeling.run(config, loop)
  assert third['round'] == 2

  # The wrong round-0 answer corrected in its file; round 2 answered.
  rows = test_labeling.answer_truly(first['queries'])
  given[wrong] = next(r['answer'] for r in rows if int(r['id']) == wrong)
  rows = test_labeling.answer_truly(third['queries'])
  given.update({int(r['id']): r['answer'] for r in rows})
  config.labeling.action = 'train_target'
  test_ids = set(labeling.read_test_ids(loop).tolist())
  assert labeling.run(config, loop)['labeled'] == len(given) - len(test_ids)
  config.labeling.action = 'export'
  assert labeling.run(config, loop)['labeled'] == len(given) == 4 + 4 + 3 + 3
  exported = {int(r['id']): r for r in results.read_csv(
      os.path.join(loop, labeling.EXPORT_CSV))}
  assert {i: r['label'] for i, r in exported.items()} == given
  assert {i for i, r in exported.items() if r['split'] == 'test'} == test_ids
  assert exported[wrong]['origin'] == (
      'round 0, corrected in queries/round_0.csv')
  assert {exported[i]['origin'] for i in task_ids} == {
      'round 1, from queries/answers_1.json'}
  store = results.read_csv(os.path.join(loop, labeling.LABELS_CSV))
  assert [(r['label'], r['change']) for r in store if r['id'] == wrong] == [
      (('light', 'dark')[wrong % 2], 'answer'),
      (given[wrong], 'correction')]
