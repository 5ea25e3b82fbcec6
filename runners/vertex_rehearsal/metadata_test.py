"""Tests of the ML Metadata stand-in that the resolver tasks query."""

import pytest

from runners.vertex_rehearsal import metadata
from runners.vertex_rehearsal.spec import RehearsalError

_BLESSING = {'instanceSchema': 'title: tfx.ModelBlessing\ntype: object\n'}
_MODEL = {'instanceSchema': 'title: tfx.Model\ntype: object\n'}
_BLESSED_QUERY = ('schema_title="tfx.ModelBlessing" AND state=LIVE AND '
                  'metadata.blessed.number_value=1')


def test_first_rehearsal_finds_no_baseline(tmp_path):
  store = metadata.MetadataStore(str(tmp_path / 'metadata.json'))
  assert store.query(_BLESSED_QUERY, 'resolver') is None


def test_queries_return_the_newest_match_across_rehearsals(tmp_path):
  path = str(tmp_path / 'metadata.json')
  store = metadata.MetadataStore(path)
  model_1, model_2 = store.new_name(), store.new_name()
  store.record([{'name': model_1, 'type': _MODEL, 'uri': '/m1'},
                {'name': model_2, 'type': _MODEL, 'uri': '/m2'}])
  store.record([{'name': store.new_name(), 'type': _BLESSING, 'uri': '/b1',
                 'metadata': {'blessed': 1.0, 'current_model_id': model_1}},
                {'name': store.new_name(), 'type': _BLESSING, 'uri': '/b2',
                 'metadata': {'blessed': 0.0, 'current_model_id': model_2}}])
  reopened = metadata.MetadataStore(path)   # A later rehearsal.
  assert reopened.new_name().endswith('/artifacts/5')
  blessing = reopened.query(_BLESSED_QUERY, 'resolver')
  assert blessing['uri'] == '/b1'
  model = reopened.query(
      f'schema_title="tfx.Model" AND state=LIVE AND name="{model_1}"', 'r')
  assert model['uri'] == '/m1'
  assert reopened.query('schema_title="tfx.Model" AND name="nope"', 'r') is None


def test_an_unknown_filter_clause_is_named(tmp_path):
  store = metadata.MetadataStore(str(tmp_path / 'metadata.json'))
  with pytest.raises(RehearsalError, match="resolver X.*'create_time>5'"):
    store.query('state=LIVE AND create_time>5', 'resolver X')


def test_schema_titles_come_from_either_form():
  assert metadata.schema_title(_MODEL) == 'tfx.Model'
  assert metadata.schema_title({'schemaTitle': 'system.Model'}) == 'system.Model'
