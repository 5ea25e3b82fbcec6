"""Import of the original (PyTorch, detectron2) MaskFormer's checkpoints.

* `detectron2_pickle`: reads detectron2 `.pkl` checkpoints and normalises the
  two key spellings of MaskFormer checkpoints.
* `detectron2_config`: a detectron2 `config.yaml` → our model config.
* `detectron2_mapping`: PyTorch tensor names ↔ our model's variables, strict
  coverage in both directions.
* `differential`: element-wise comparison with the reference's intermediates.
* `writer`: the converted TF checkpoint, `params.yaml` and SavedModel.
* `import_weights`: the whole import (`maskformer-tfx import-weights`) and
  the comparison with a reference forward (`maskformer-tfx diff-test`).
"""
