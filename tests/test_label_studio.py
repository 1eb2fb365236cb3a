"""The Label Studio round trip (svp_jax.label_studio): tasks and labeling
config written as documented, JSON and CSV exports read, and every malformed
export one error naming the file and the task or line.

The exports below have the exact shape Label Studio 1.23.2 writes (taken
from its server's output; tests/test_label_studio_server.py checks the
round trip against a real server).
"""

import copy
import csv
import io
import json
import os
from xml.etree import ElementTree

import pytest

from svp_jax import label_studio
from svp_jax import validation

CLASSES = ('cat', 'dog', 'bird & <fish> "x"')


def png(path):
  os.makedirs(os.path.dirname(path), exist_ok=True)
  with open(path, 'wb') as f:
    f.write(b'\x89PNG\r\n\x1a\n')  # Only its existence matters here.
  return str(path)


# ----------------------------------------------------------------------------
# Tasks and the labeling config.


def test_image_tasks_carry_id_round_url_and_prediction(tmp_path):
  root = tmp_path / 'root'
  a = png(root / 'pets' / 'cat' / 'a b&c#ü.png')
  b = png(root / 'pets' / 'dog' / 'b.png')
  rows = [{'id': 7, 'example': a, 'predicted': 'dog', 'confidence': '0.5312',
           'answer': ''},
          {'id': 3, 'example': b, 'predicted': CLASSES[2],
           'confidence': 0.9, 'answer': ''}]
  got = label_studio.tasks(rows, CLASSES, 'image', 2, root=str(root))
  assert got == [
      {'data': {'pool_id': 7, 'round': 2, 'image': '/data/local-files/?d='
                'pets/cat/a%20b%26c%23%C3%BC.png'},
       'predictions': [{'model_version': 'svp_jax round 2', 'score': 0.5312,
                        'result': [{'from_name': 'label', 'to_name': 'image',
                                    'type': 'choices',
                                    'value': {'choices': ['dog']}}]}]},
      {'data': {'pool_id': 3, 'round': 2,
                'image': '/data/local-files/?d=pets/dog/b.png'},
       'predictions': [{'model_version': 'svp_jax round 2', 'score': 0.9,
                        'result': [{'from_name': 'label', 'to_name': 'image',
                                    'type': 'choices',
                                    'value': {'choices': [CLASSES[2]]}}]}]}]


def test_round_0_text_tasks_have_no_prediction():
  rows = [{'id': 4, 'example': 'a "quoted",\nmultiline review',
           'predicted': '', 'confidence': '', 'answer': ''}]
  assert label_studio.tasks(rows, CLASSES, 'text', 0) == [
      {'data': {'pool_id': 4, 'round': 0,
                'text': 'a "quoted",\nmultiline review'}}]


def test_document_root_is_read_as_label_studio_reads_it():
  assert label_studio.document_root({}) == os.path.abspath(os.sep)
  assert label_studio.document_root(
      {'LOCAL_FILES_DOCUMENT_ROOT': '/b',
       'LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT': '/a'}) == '/a'
  assert label_studio.document_root(
      {'LOCAL_FILES_DOCUMENT_ROOT': '/b'}) == '/b'


def test_default_root_is_the_environments(tmp_path, monkeypatch):
  image = png(tmp_path / 'data' / 'x.png')
  monkeypatch.setenv('LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT', str(tmp_path))
  rows = [{'id': 0, 'example': image, 'predicted': ''}]
  assert label_studio.tasks(rows, CLASSES, 'image', 0)[0]['data'][
      'image'] == '/data/local-files/?d=data/x.png'


@pytest.mark.parametrize('example, message', [
    ('outside', 'is not below the Label Studio document root'),
    ('missing', 'is not an image file'),
    ('x.npz[3]', 'is not an image file')])
def test_image_label_studio_cannot_serve_is_one_error(tmp_path, example,
                                                      message):
  paths = {'outside': png(tmp_path / 'elsewhere' / 'x.png'),
           'missing': str(tmp_path / 'root' / 'gone.png')}
  rows = [{'id': 0, 'example': paths.get(example, example), 'predicted': ''}]
  with pytest.raises(label_studio.LabelStudioError, match=message):
    label_studio.tasks(rows, CLASSES, 'image', 0,
                       root=str(tmp_path / 'root'))


def test_write_tasks_writes_the_tasks_or_nothing(tmp_path):
  root = tmp_path / 'root'
  rows = [{'id': 1, 'example': png(root / 'i' / 'a.png'), 'predicted': 'cat',
           'confidence': '0.25'}]
  path = str(tmp_path / 'queries' / 'round_1.label_studio.json')
  label_studio.write_tasks(path, rows, CLASSES, 'image', 1, root=str(root))
  with open(path, encoding='utf-8') as f:
    assert json.load(f) == label_studio.tasks(rows, CLASSES, 'image', 1,
                                              root=str(root))
  assert os.listdir(tmp_path / 'queries') == ['round_1.label_studio.json']
  bad = str(tmp_path / 'round_2.label_studio.json')
  with pytest.raises(label_studio.LabelStudioError):
    label_studio.write_tasks(bad, rows + [{'id': 2, 'example': 'gone.png',
                                           'predicted': ''}],
                             CLASSES, 'image', 2, root=str(root))
  assert not os.path.exists(bad)


@pytest.mark.parametrize('modality', ['image', 'text'])
def test_labeling_config_names_match_the_tasks(tmp_path, modality):
  path = str(tmp_path / 'label_studio_config.xml')
  label_studio.write_labeling_config(path, CLASSES, modality)
  view = ElementTree.parse(path).getroot()
  shown, choices = list(view)
  assert view.tag == 'View'
  assert (shown.tag, shown.get('name'), shown.get('value')) == (
      modality.capitalize(), modality, f'${modality}')
  assert (choices.tag, choices.get('name'), choices.get('toName'),
          choices.get('choice')) == ('Choices', 'label', modality, 'single')
  assert tuple(c.get('value') for c in choices) == CLASSES
  # The prediction answers the same question about the same object.
  example = png(tmp_path / 'd' / 'x.png') if modality == 'image' else 'hi'
  task, = label_studio.tasks([{'id': 0, 'example': example, 'predicted': 'cat',
                               'confidence': 0.5}], CLASSES, modality, 1,
                             root=str(tmp_path))
  result, = task['predictions'][0]['result']
  assert (result['from_name'], result['to_name']) == (
      choices.get('name'), shown.get('name'))
  assert shown.get('value') == '$' + next(k for k in task['data']
                                          if k == modality)


# ----------------------------------------------------------------------------
# Exports, as Label Studio 1.23.2 writes them.


def annotation(number, choices, created, updated=None, cancelled=False):
  return {
      'id': number, 'completed_by': 1,
      'result': [] if choices is None else [
          {'from_name': 'label', 'to_name': 'image', 'type': 'choices',
           'value': {'choices': choices}}],
      'was_cancelled': cancelled, 'ground_truth': False,
      'created_at': created, 'updated_at': updated or created,
      'draft_created_at': None, 'lead_time': None,
      'prediction': {
          'id': 1, 'result': [{'from_name': 'label', 'to_name': 'image',
                               'type': 'choices',
                               'value': {'choices': ['cat']}}],
          'model_version': 'svp_jax round 1', 'created_ago': '0 minutes',
          'score': 0.5, 'cluster': None, 'neighbors': None,
          'mislabeling': 0.0, 'created_at': '2026-12-08T04:04:06.190133Z',
          'updated_at': '2026-12-08T04:04:06.190147Z', 'model': None,
          'model_run': None, 'task': 1, 'project': 1},
      'result_count': 0 if choices is None else 1,
      'unique_id': '1818b4dc-cb3c-468a-a923-f8f8efd0ea24', 'import_id': None,
      'last_action': None, 'bulk_created': False, 'task': 1, 'project': 1,
      'updated_by': 1, 'parent_prediction': None, 'parent_annotation': None,
      'last_created_by': None}


def task(number, pool_id, annotations):
  return {
      'id': number, 'annotations': annotations, 'drafts': [],
      'predictions': [number],
      'data': {'pool_id': pool_id, 'round': 1,
               'image': f'/data/local-files/?d=pets/{pool_id}.png'},
      'meta': {}, 'created_at': '2026-12-08T04:04:06.188586Z',
      'updated_at': '2026-12-08T04:04:06.563009Z', 'allow_skip': True,
      'inner_id': number, 'total_annotations': len(annotations),
      'cancelled_annotations': sum(a['was_cancelled'] for a in annotations),
      'total_predictions': 1, 'comment_count': 0,
      'unresolved_comment_count': 0, 'last_comment_updated_at': None,
      'project': 1, 'updated_by': 1, 'comment_authors': []}


T = '2026-12-08T04:05:1{}.000000Z'.format
EXPORT = [
    task(1, 11, [annotation(1, ['dog'], T(0))]),
    # Two annotations: the later one.
    task(2, 12, [annotation(2, ['cat'], T(0)),
                 annotation(3, [CLASSES[2]], T(1))]),
    # The older annotation corrected last: the correction.
    task(3, 13, [annotation(4, ['dog'], T(0), updated=T(3)),
                 annotation(5, ['cat'], T(1))]),
    # Skipped after an answer, or submitted empty: the answer stands.
    task(4, 14, [annotation(6, ['cat'], T(0)),
                 annotation(7, None, T(1), cancelled=True),
                 annotation(8, None, T(2))]),
    task(5, 15, [annotation(9, None, T(0), cancelled=True)]),  # Skipped.
    task(6, 16, []),  # Not annotated; its prediction is no answer.
    task(7, '17', [annotation(10, ['nope'], T(0))]),  # The loop refuses.
]
ANSWERS = [('11', 'dog'), ('12', CLASSES[2]), ('13', 'dog'), ('14', 'cat'),
           ('15', ''), ('16', ''), ('17', 'nope')]


def write_json(path, tasks):
  with open(path, 'w', encoding='utf-8') as f:
    json.dump(tasks, f, ensure_ascii=False, separators=(',', ':'))
  return str(path)


def csv_rows(tasks):
  """The CSV rows Label Studio's exporter writes for `tasks`: one per
  annotation that is not cancelled (the newest first), one per task with no
  annotation at all; the task data's columns beside its own id."""
  rows = []
  for t in tasks:
    if not t['annotations']:
      rows.append({'annotation_id': '', 'annotator': '', 'created_at': '',
                   'id': t['id'], **t['data'], 'lead_time': '',
                   'updated_at': ''})
    kept = [a for a in t['annotations'] if not a['was_cancelled']]
    for a in sorted(kept, key=lambda a: a['created_at'], reverse=True):
      row = {'annotation_id': a['id'], 'annotator': '1',
             'created_at': a['created_at'], 'id': t['id'], **t['data'],
             'lead_time': '', 'updated_at': a['updated_at']}
      choices = [c for r in a['result'] for c in r['value']['choices']]
      if choices:
        row['label'] = (choices[0] if len(choices) == 1 else json.dumps(
            {'choices': choices}, ensure_ascii=False, separators=(',', ':')))
      rows.append(row)
  return rows


def write_csv(path, rows, bom=False):
  columns = sorted({c for r in rows for c in r})
  with open(path, 'w', encoding='utf-8-sig' if bom else 'utf-8') as f:
    writer = csv.DictWriter(f, fieldnames=columns,
                            quoting=csv.QUOTE_NONNUMERIC)
    writer.writeheader()
    writer.writerows(rows)
  return str(path)


def answers(found):
  return [(raw, answer) for raw, answer, _ in found]


def test_json_export_gives_the_latest_answer_per_task(tmp_path):
  found = label_studio.read_export(write_json(tmp_path / 'export.json',
                                              EXPORT))
  assert answers(found) == ANSWERS
  assert found[0][2] == 'task 1 (Label Studio ID 1)'


def test_csv_export_gives_the_same_answers(tmp_path):
  path = write_csv(tmp_path / 'export.csv', csv_rows(EXPORT))
  with open(path, encoding='utf-8') as f:
    assert f.readline() == ('"annotation_id","annotator","created_at","id",'
                            '"image","label","lead_time","pool_id","round",'
                            '"updated_at"\n')
  found = label_studio.read_export(path)
  # A task whose only annotation was skipped has no row in the CSV.
  assert answers(found) == [a for a in ANSWERS if a[0] != '15']
  where = dict((raw, w) for raw, _, w in found)
  assert where['11'] == 'line 2'  # The line of the chosen annotation.


def test_csv_export_from_a_spreadsheet_and_with_texts(tmp_path):
  rows = [{'annotation_id': 3, 'annotator': '1', 'created_at': T(0),
           'id': 9, 'label': 'cat', 'lead_time': 2.5, 'pool_id': 4,
           'round': 0, 'text': 'a "quoted",\nmultiline review',
           'updated_at': T(0)}]
  path = write_csv(tmp_path / 'answers.txt', rows, bom=True)
  assert label_studio.read_export(path) == [('4', 'cat', 'line 3')]


def test_raw_ids_are_returned_as_written(tmp_path):
  tasks = [task(1, 3.0, []), task(2, ' 5', []), task(3, True, [])]
  assert [raw for raw, _, _ in label_studio.read_export(
      write_json(tmp_path / 'e.json', tasks))] == ['3.0', ' 5', 'true']


def malformed_json(case):
  tasks = copy.deepcopy(EXPORT[:2])
  second = tasks[1]
  if case == 'no pool_id':
    del second['data']['pool_id']
  elif case == 'pool_id an object':
    second['data']['pool_id'] = {'id': 12}
  elif case == 'several choices':
    second['annotations'][1]['result'][0]['value']['choices'] = ['cat', 'dog']
  elif case == 'several regions':
    second['annotations'][1]['result'] *= 2
  elif case == 'another question':
    for r in second['annotations'][1]['result']:
      r['from_name'] = 'quality'
  elif case == 'bad time':
    second['annotations'][1]['updated_at'] = 'yesterday'
  elif case == 'json-min':
    tasks[1] = {'image': '/data/local-files/?d=x.png', 'id': 2,
                'label': 'cat', 'annotator': 'a@b.c', 'annotation_id': 2,
                'created_at': T(0), 'updated_at': T(0), 'lead_time': 1.0}
  return tasks


@pytest.mark.parametrize('case, where, message', [
    ('no pool_id', 'task 2 (Label Studio ID 2)', 'no data.pool_id'),
    ('pool_id an object', 'task 2', 'data.pool_id is {"id": 12}'),
    ('several choices', 'task 2', 'one annotation chose 2 classes'),
    ('several regions', 'task 2', 'one annotation chose 2 classes'),
    ('another question', 'task 2', "choices of ['quality'] but none of "
     "'label'"),
    ('bad time', 'task 2', "time 'yesterday' is not an ISO 8601 time"),
    ('json-min', 'task 2', 'no data (a JSON-MIN export?')])
def test_malformed_json_export_is_one_error(tmp_path, case, where, message):
  path = write_json(tmp_path / 'export.json', malformed_json(case))
  with pytest.raises(label_studio.LabelStudioError) as e:
    label_studio.read_export(path)
  assert str(e.value).startswith(f'{path}, {where}')
  assert message in str(e.value)


def malformed_csv(case):
  rows = csv_rows(EXPORT[:3])
  if case == 'several choices':
    rows[1]['label'] = '{"choices":["cat","dog"]}'
  elif case == 'several regions':
    rows[1]['label'] = '["cat","dog"]'
  elif case == 'two pool ids':
    rows[2]['pool_id'] = 99
  elif case == 'empty pool_id':
    rows[1]['pool_id'] = ''
  elif case == 'no pool_id column':
    rows = [{k: v for k, v in r.items() if k != 'pool_id'} for r in rows]
  elif case == 'no label column':
    rows = [{k: v for k, v in r.items() if k != 'label'} for r in rows]
  return rows


@pytest.mark.parametrize('case, where, message', [
    ('several choices', 'line 3', 'one annotation chose 2 classes'),
    ('several regions', 'line 3', 'one annotation chose 2 classes'),
    ('two pool ids', 'line 4', 'Label Studio task 2 is pool_id 12 on line 3 '
     'and 99 here'),
    ('empty pool_id', 'line 3', "empty 'pool_id'"),
    ('no pool_id column', 'line 1', "no column 'pool_id'"),
    ('no label column', 'line 2', "annotation 1 and no column 'label'")])
def test_malformed_csv_export_is_one_error(tmp_path, case, where, message):
  path = write_csv(tmp_path / 'export.csv', malformed_csv(case))
  with pytest.raises(label_studio.LabelStudioError) as e:
    label_studio.read_export(path)
  assert str(e.value).startswith(f'{path}, {where}: {message}')


@pytest.mark.parametrize('name, content, message', [
    ('e.json', b'[{"id": 1, "data": {"pool_id": 1},\n', 'line 2: not JSON'),
    ('e.json', b'pool_id,label\n1,cat\n', 'line 1: not JSON'),
    ('e.json', b'{"id": 1}', 'top level: not a list of tasks'),
    ('e.json', b'[{"data": {"pool_id": 1}, "annotations": {}}]',
     'task 1: annotations is not a list'),
    ('e.json', b'[3]', 'task 1: no data'),
    ('e.csv', b'"pool_id","label"\n1,"cat"\n2,"caf\xe9"\n',
     'line 3: not UTF-8'),
    ('e.json', b'  \n', 'empty'),
    ('e.csv', b'"annotation_id","id","label","pool_id"\n1,1,"cat",1,9\n',
     'line 2: more cells than columns'),
    ('e.csv', b'"pool_id","label"\n1,"cat\n', 'after line 1: not a CSV file'),
])
def test_unreadable_export_is_one_error(tmp_path, name, content, message):
  path = str(tmp_path / name)
  with open(path, 'wb') as f:
    f.write(content)
  with pytest.raises(label_studio.LabelStudioError) as e:
    label_studio.read_export(path)
  assert str(e.value).startswith(f'{path}')
  assert message in str(e.value)


def test_missing_export_is_one_error(tmp_path):
  path = str(tmp_path / 'gone.json')
  with pytest.raises(label_studio.LabelStudioError,
                     match='cannot read the Label Studio export'):
    label_studio.read_export(path)


def test_label_studio_errors_are_config_errors():
  assert issubclass(label_studio.LabelStudioError, validation.ConfigError)
