"""Artifact properties as the report reads them, locally and on Vertex."""

from ml_metadata.proto import metadata_store_pb2

from tfx_pipeline.report import run_record


def test_property_values_unwrap_vertex_struct_values():
  artifact = metadata_store_pb2.Artifact()
  properties = artifact.custom_properties
  properties['blessed'].int_value = 1  # Local ML Metadata.
  properties['pushed'].struct_value.fields['__value__'].number_value = 1.0
  properties['destination'].struct_value.fields[
      '__value__'].string_value = 'gs://bucket/models/1'
  properties['other'].struct_value.fields['a'].number_value = 2.0
  values = run_record.property_values(properties)
  assert values['blessed'] == 1
  assert values['pushed'] == 1.0 and int(values['pushed']) == 1
  assert values['destination'] == 'gs://bucket/models/1'
  assert 'number_value: 2.0' in values['other']
