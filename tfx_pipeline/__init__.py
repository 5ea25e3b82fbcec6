"""maskformer-tfx: the TFX pipeline for MaskFormer (its definition, its
components and the review report)."""

from schemas.keras_env import ensure_legacy_keras

ensure_legacy_keras()


def __getattr__(name: str):
  """`tfx_pipeline.ReviewReportPage` and `tfx_pipeline.DriftReport`, the
  custom artifact types, loaded on first use (they import TFX): Vertex
  containers import custom artifact types by their type name
  (`tfx_pipeline.report.component`, `tfx_pipeline.drift.validator`)."""
  if name == 'ReviewReportPage':
    from tfx_pipeline.report.component import ReviewReportPage
    return ReviewReportPage
  if name == 'DriftReport':
    from tfx_pipeline.drift.validator import DriftReport
    return DriftReport
  raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
