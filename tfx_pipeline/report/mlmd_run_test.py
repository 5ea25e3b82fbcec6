"""Tests of reading a local run from ML Metadata: an execution left RUNNING
by a process that died is reported as interrupted."""

import pathlib

from ml_metadata.metadata_store import metadata_store
from ml_metadata.proto import metadata_store_pb2

from tfx_pipeline import run_lock
from tfx_pipeline.report import mlmd_run
from tfx_pipeline.report import run_record


def _store_with_a_running_trainer(root: pathlib.Path, run_id: str) -> None:
  """ML Metadata as a run killed during training leaves it: the Trainer's
  execution still RUNNING in the run's context."""
  config = metadata_store_pb2.ConnectionConfig()
  config.sqlite.filename_uri = str(root / mlmd_run.METADATA_FILE)
  store = metadata_store.MetadataStore(config)
  context_ids = {}
  for type_name, name in ((mlmd_run.PIPELINE_CONTEXT, 'p'),
                          (mlmd_run.PIPELINE_RUN_CONTEXT, run_id),
                          (mlmd_run.NODE_CONTEXT, 'p.Trainer')):
    type_id = store.put_context_type(
        metadata_store_pb2.ContextType(name=type_name))
    context_ids[type_name], = store.put_contexts(
        [metadata_store_pb2.Context(type_id=type_id, name=name)])
  execution_type = store.put_execution_type(
      metadata_store_pb2.ExecutionType(name='tfx.components.Trainer'))
  execution_id, = store.put_executions([metadata_store_pb2.Execution(
      type_id=execution_type,
      last_known_state=metadata_store_pb2.Execution.RUNNING)])
  store.put_attributions_and_associations([], [
      metadata_store_pb2.Association(context_id=context_id,
                                     execution_id=execution_id)
      for context_id in context_ids.values()])


def test_a_running_execution_of_a_run_no_process_holds_is_interrupted(
    tmp_path):
  _store_with_a_running_trainer(tmp_path, 'killed-run')

  trainer = mlmd_run.load_run(str(tmp_path), 'killed-run').nodes['Trainer']
  assert trainer.state == run_record.INTERRUPTED
  # Another run holds the root: the killed run is still over.
  with run_lock.hold(str(tmp_path), 'next-run'):
    run = mlmd_run.load_run(str(tmp_path), 'killed-run')
    assert run.nodes['Trainer'].state == run_record.INTERRUPTED
    assert 'Trainer was interrupted' in run.why_missing('Trainer')
  # The run itself holds the root: it is still running.
  with run_lock.hold(str(tmp_path), 'killed-run'):
    trainer = mlmd_run.load_run(str(tmp_path), 'killed-run').nodes['Trainer']
    assert trainer.state == 'RUNNING'
