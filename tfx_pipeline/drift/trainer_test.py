from tfx.types import standard_artifacts

from tfx_pipeline.drift import trainer
from tfx_pipeline.drift import validator


def _artifact(artifact_type, uri):
  artifact = artifact_type()
  artifact.uri = str(uri)
  return artifact


def test_the_statistics_are_stored_in_the_model(tmp_path):
  statistics = tmp_path / 'statistics'
  for split in ('train', 'eval'):
    (statistics / f'Split-{split}').mkdir(parents=True)
    (statistics / f'Split-{split}' / 'FeatureStats.pb').write_bytes(
        split.encode())
  model = tmp_path / 'model'
  trainer.store_statistics(
      {'statistics': [_artifact(standard_artifacts.ExampleStatistics,
                                statistics)]},
      {'model': [_artifact(standard_artifacts.Model, model)]})
  stored = model / 'Format-Serving/assets.extra/panoptic_statistics'
  assert sorted(p.name for p in stored.iterdir()) == ['Split-eval',
                                                      'Split-train']
  assert open(validator.baseline_statistics_path(str(model)),
              'rb').read() == b'train'
  assert not list(stored.rglob('*.partial'))


def test_without_statistics_nothing_is_stored(tmp_path):
  model = tmp_path / 'model'
  trainer.store_statistics(
      {}, {'model': [_artifact(standard_artifacts.Model, model)]})
  assert not model.exists()


def test_the_trainer_keeps_tfx_trainer_inputs_and_run_fn():
  from tfx import v1 as tfx
  examples = tfx.dsl.Channel(type=standard_artifacts.Examples)
  stats = tfx.dsl.Channel(type=standard_artifacts.ExampleStatistics)
  node = trainer.Trainer(
      examples=examples, run_fn='trainer_module.run_fn.run_fn',
      train_args=tfx.proto.TrainArgs(num_steps=1),
      eval_args=tfx.proto.EvalArgs(num_steps=1), custom_config={'a': 1},
      statistics=stats)
  assert node.inputs['statistics'] is stats
  assert node.exec_properties['run_fn'] == 'trainer_module.run_fn.run_fn'
  assert node.executor_spec.executor_class is trainer.Executor
  vertex = trainer.Trainer(
      examples=examples, run_fn='trainer_module.run_fn.run_fn',
      train_args=tfx.proto.TrainArgs(num_steps=1),
      eval_args=tfx.proto.EvalArgs(num_steps=1), custom_config={},
      on_vertex=True)
  assert vertex.executor_spec.executor_class is trainer.VertexExecutor
