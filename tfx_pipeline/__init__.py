"""maskformer-tfx: the TFX pipeline for MaskFormer (its definition, its
components and the review report)."""

from schemas.keras_env import ensure_legacy_keras

ensure_legacy_keras()


def __getattr__(name: str):
  """`tfx_pipeline.ReviewReportPage`, the ReviewReport artifact type, loaded
  on first use (it imports TFX): Vertex containers import custom artifact
  types by their type name (`tfx_pipeline.report.component`)."""
  if name == 'ReviewReportPage':
    from tfx_pipeline.report.component import ReviewReportPage
    return ReviewReportPage
  raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
