"""The Model quality section's thresholds, per-class PQ and PQ table."""

import html.parser

import numpy as np
import tensorflow_model_analysis as tfma

from schemas import load_categories
from tfx_pipeline import eval_config
from tfx_pipeline.report import quality_section


class _TextParser(html.parser.HTMLParser):
  """The text pieces of an HTML fragment."""

  @classmethod
  def of(cls, fragment: str):
    parser = cls()
    parser.pieces = []
    parser.feed(fragment)
    return parser.pieces

  def handle_data(self, data):
    self.pieces.append(data)


def test_threshold_lines_state_the_eval_config_bounds():
  lines = quality_section.threshold_lines(eval_config.eval_config(0.3, 0.001))
  assert 'pq ≥ 0.3' in lines
  assert any(line.startswith('pq (candidate) − pq (baseline) ≥ -0.001')
             for line in lines)
  assert len(lines) == 2


def test_threshold_lines_read_metrics_spec_thresholds_too():
  config = tfma.EvalConfig(metrics_specs=[tfma.MetricsSpec(
      metrics=[tfma.MetricConfig(class_name='ExampleCount')],
      thresholds={'example_count': tfma.MetricThreshold(
          value_threshold=tfma.GenericValueThreshold(
              lower_bound={'value': 2}, upper_bound={'value': 10}))})])
  assert quality_section.threshold_lines(config) == ['example_count ≥ 2',
                                            'example_count ≤ 10']


def test_per_class_pq_is_sorted_and_named_from_the_category_file():
  categories = load_categories()
  rng = np.random.default_rng(1)
  values = {f'pq_class_{c["id"]}': float(rng.choice([0.0, 0.25, 0.5, 0.9]))
            for c in categories}
  rows = quality_section.per_class_pq({**values, 'pq': 0.4, 'sq_things': 0.7})
  expected = sorted(
      ((c['name'], c['isthing'] == 1, values[f'pq_class_{c["id"]}'])
       for c in categories), key=lambda row: (-row[2], row[0]))
  assert rows == expected


def test_quality_table_shows_baseline_and_difference():
  candidate = {'pq': 0.4, 'sq': 0.75, 'rq': 0.5, 'pq_things': 0.3,
               'sq_things': 0.7, 'rq_things': 0.4, 'pq_stuff': 0.5,
               'sq_stuff': 0.8, 'rq_stuff': 0.6}
  baseline = {name: value - 0.0625 for name, value in candidate.items()}
  text = ' '.join(' '.join(_TextParser.of(
      quality_section.quality_table(candidate, baseline))).split())
  for name, value in candidate.items():
    assert f'{value:.4f} baseline {baseline[name]:.4f}, Δ +0.0625' in text
  # It says which PQ it is: the gate's, not COCO's.
  assert "gate's PQ" in text and 'crowd regions are void' in text
  assert 'evaluate-coco' in text


def _run_with_push(tmp_path, pushed_properties):
  from tfx_pipeline.report import run_record

  def artifact(name, properties):
    return run_record.ArtifactRecord(1, name, str(tmp_path / name),
                                     properties)

  evaluator = run_record.NodeRun(
      'Evaluator', 'COMPLETE', {}, {}, {'blessing': [artifact('blessing', {'blessed': 1})],
           'evaluation': [artifact('evaluation', {})]})
  pusher = run_record.NodeRun(
      'Pusher', 'COMPLETE', {}, {},
      {'pushed_model': [artifact('pushed', pushed_properties)]})
  return run_record.PipelineRun(None, 'maskformer', 'run-1', None,
                                {'Evaluator': evaluator, 'Pusher': pusher})


def test_gate_names_the_registry_version_and_endpoint(tmp_path,
                                                      monkeypatch):
  monkeypatch.setattr(quality_section, '_eval_config',
                      lambda run: eval_config.eval_config(0.3))
  version = 'projects/p/locations/us-central1/models/7@3'
  endpoint = 'projects/p/locations/us-central1/endpoints/2'
  text = ''.join(_TextParser.of(quality_section._gate_html(
      _run_with_push(tmp_path, {'pushed': 1, 'pushed_destination': version,
                                'vertex_endpoint': endpoint}))))
  assert f'Pushed to {version}, deployed to endpoint {endpoint}.' in text
  text = ''.join(_TextParser.of(quality_section._gate_html(
      _run_with_push(tmp_path, {'pushed': 0,
                                'already_pushed_as': version}))))
  assert f'nothing pushed, this model was already pushed as {version}.' in (
      text)
