"""The review page of a real run of the tiny experiment (the ReviewReport
component's artifact), opened in headless Chromium: no console errors, no
network requests, every section, the PQ of the evaluation artifact, and a
screenshot kept as a test artifact."""

import pathlib
import re
import shutil
import sqlite3

import pytest
import tensorflow_model_analysis as tfma

from tests import chromium
from tests.pipeline_helpers import E2E_PQ_LOWER_BOUND, REPO_ROOT
from tfx_pipeline import report

SCREENSHOT_COPY = REPO_ROOT / 'outputs' / 'test-artifacts' / 'report.png'
LOCAL_URL_PREFIXES = ('file://', 'data:')


@pytest.fixture(scope='module')
def chromium_executable() -> str:
  return chromium.require_chromium()


def _evaluation_pq(pipeline_root: pathlib.Path) -> float:
  """The candidate's overall PQ, read from the latest evaluation artifact
  that ML Metadata's tables record (independently of the report's code)."""
  with sqlite3.connect(pipeline_root / 'metadata.sqlite') as connection:
    uris = [row[0] for row in connection.execute(
        'SELECT Artifact.uri FROM Artifact JOIN Type ON Artifact.type_id = '
        "Type.id WHERE Type.name = 'ModelEvaluation' ORDER BY Artifact.id")]
  assert uris
  values = []
  for metrics in tfma.load_metrics(uris[-1]):
    if metrics.slice_key.single_slice_keys:
      continue
    for key_and_value in metrics.metric_keys_and_values:
      key = key_and_value.key
      if key.name == 'pq' and not key.is_diff and key.model_name in (
          '', 'candidate'):
        values.append(key_and_value.value.double_value.value)
  assert len(values) == 1, values
  return values[0]


def _blessed(pipeline_root: pathlib.Path) -> bool:
  """The latest Evaluator blessing, from ML Metadata's tables."""
  with sqlite3.connect(pipeline_root / 'metadata.sqlite') as connection:
    values = [row[0] for row in connection.execute(
        'SELECT ArtifactProperty.int_value FROM ArtifactProperty JOIN '
        'Artifact ON ArtifactProperty.artifact_id = Artifact.id JOIN Type ON '
        "Artifact.type_id = Type.id WHERE Type.name = 'ModelBlessing' AND "
        "ArtifactProperty.name = 'blessed' ORDER BY Artifact.id")]
  assert values
  return values[-1] == 1


def test_page_opens_offline_with_every_section_and_the_evaluated_pq(
    chromium_executable, trained_run, tmp_path):
  pipeline_root, result = trained_run
  # The page the run's ReviewReport component wrote, as the run printed it.
  printed = re.findall(r'^Review report: (.+)$', result.stdout, re.MULTILINE)
  assert len(printed) == 1, result.stdout[-2000:]
  page = pathlib.Path(printed[0])
  assert page.name == 'report.html' and 'ReviewReport' in page.parts
  assert page.is_relative_to(pipeline_root)
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
    quality_text = browser.evaluate(
        'document.querySelector("#quality").innerText')
    gate_decision = browser.evaluate(
        'document.querySelector("#gate-decision").textContent')
    example_images = browser.evaluate(
        'document.querySelectorAll("#examples img.example").length')
    charts = browser.evaluate(
        'Array.from(document.querySelectorAll("img.chart"))'
        '.map(img => img.naturalWidth > 0)')
    drift_verdict = browser.evaluate(
        'document.querySelector("#drift-verdict").textContent')
    drift_bars = browser.evaluate(
        'Array.from(document.querySelectorAll("#drift svg.drift-bars rect"))'
        '.map(rect => rect.getBoundingClientRect().height)')
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
  assert gate_decision == ('BLESSED' if _blessed(pipeline_root)
                           else 'NOT BLESSED')
  assert f'pq ≥ {E2E_PQ_LOWER_BOUND:g}' in quality_text
  assert unavailable == []  # A successful run has every part of the page.
  assert example_images == 3 * 6  # Image, ground truth, prediction × 6.
  assert charts and all(charts)
  # The run's span against the blessed model before it (none on a root's
  # first run), its category bars drawn.
  assert drift_verdict in ('NO BASELINE', 'NO DRIFT')
  assert drift_bars and all(height > 0 for height in drift_bars)
  assert screenshot.stat().st_size > 10_000
