"""maskformer-tfx: the TFX pipeline (definition, components, CLI) for MaskFormer."""

from schemas.keras_env import ensure_legacy_keras

ensure_legacy_keras()
