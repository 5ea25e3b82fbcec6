"""Names of the registered MaskFormer experiments (`official.core.exp_factory`).

Standard library only: the CLI, `tfx_pipeline.config` and anything that only
needs a name import this module without loading TensorFlow or TF Model
Garden. The experiments themselves are registered by
`trainer_module.registry_imports` (`maskformer_experiments`,
`maskformer_detectron2`).
"""

# The reference COCO panoptic setup (R50 + 6 encoder layers, S = 640).
COCO_PANOPTIC = 'maskformer_coco_panoptic'
# The same at the reference's scale (S = 1344).
COCO_PANOPTIC_1344 = 'maskformer_coco_panoptic_1344'
# The same with detectron2's ResNet-50 (PyTorch convention).
COCO_PANOPTIC_D2 = 'maskformer_coco_panoptic_d2'
# The architecture scaled down to train on a CPU.
TINY = 'maskformer_tiny'

# The experiment that the Trainer runs when none is given (pipeline runs,
# `maskformer-tfx run`, tests): small enough to train on a CPU.
DEFAULT_EXPERIMENT = TINY

ALL = (COCO_PANOPTIC, COCO_PANOPTIC_1344, COCO_PANOPTIC_D2, TINY)
