# maskformer-tfx container images. Build from the repository root:
#
#   docker build --target pipeline    -t "$IMAGE" .          # every pipeline step, Dataflow
#   docker build --target tpu-trainer -t "$TRAINER_IMAGE" .  # Vertex AI Training on TPU VMs
#   docker build --target gpu-trainer -t "$TRAINER_IMAGE" .  # Vertex AI Training on GPUs
#
# `pipeline` (also the default target) runs every Vertex AI Pipelines step
# (the compiled pipeline gives the command) and is the Dataflow SDK container
# (`--sdk_container_image`), so its entrypoint stays Beam's boot program.
# The trainer images add the TensorFlow build the accelerator needs.

ARG PYTHON_VERSION=3.10
# Must equal apache-beam in requirements.lock: Dataflow workers run this
# image's Beam SDK with this image's boot program. 2.59.0 is the Beam that
# TFX 1.16 (and its tfx-bsl, TFT, TFDV, TFMA) was released and tested with.
ARG BEAM_VERSION=2.59.0

# The Beam SDK image is python:3.10-slim plus Beam's worker boot program, at
# the lock's Beam version; requirements.lock is installed over it.
FROM apache/beam_python${PYTHON_VERSION}_sdk:${BEAM_VERSION} AS pipeline

# Must equal runners.vertex.settings.IMAGE_PACKAGE_DIR: the compiled
# pipeline reads the raw schema from PIPELINE_DIR/schemas/raw_schema.pbtxt.
ARG PIPELINE_DIR=/pipeline

# TF must see this before it is imported: tf.keras = Keras 2 (tf_keras).
ENV TF_USE_LEGACY_KERAS=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR ${PIPELINE_DIR}

# The same installer versions as the Makefile's virtualenv.
RUN python -m pip install "pip==26.3" "setuptools==84.2.1" "wheel==0.48.0"

# Every dependency at its locked version (a layer of its own: it changes
# rarely, the code often).
COPY requirements.lock ./
RUN python -m pip install --no-deps -r requirements.lock

# This package, editable as in the Makefile (compat mode: PIPELINE_DIR on
# sys.path), so its installed files are the ones under PIPELINE_DIR, at fixed
# paths whatever the Python layout.
COPY pyproject.toml README.md ./
COPY schemas/ schemas/
COPY tfx_pipeline/ tfx_pipeline/
COPY transform_module/ transform_module/
COPY panoptic_data/ panoptic_data/
COPY trainer_module/ trainer_module/
COPY runners/ runners/
RUN python -m pip install --no-deps --no-build-isolation \
      --config-settings editable_mode=compat -e . \
 && python -c "import schemas; \
assert schemas.schema_path(schemas.RAW_SCHEMA_FILE) == '${PIPELINE_DIR}/schemas/raw_schema.pbtxt'" \
 && python -c "import tensorflow as tf, trainer_module.registry_imports, transform_module, tfx_pipeline.pipeline; \
assert tf.keras.__name__.startswith('tf_keras'), tf.keras.__name__"

ENTRYPOINT ["/opt/apache/beam/boot"]


# Vertex AI Training on TPU VMs (v5e: ct5lp-hightpu-*, v4: ct4p-hightpu-4t).
# TPU VMs need TensorFlow's TPU build (`tensorflow-tpu`, the same version as
# the lock's tensorflow) and its libtpu, which pip finds on the
# libtpu-tf-releases index (LIBTPU_FIND_LINKS). The trainer addresses the
# chips as the 'local' TPU (runtime.tpu: local); TF reaches them through
# libtpu's PJRT C API (NEXT_PLUGGABLE_DEVICE_USE_C_API,
# TF_PLUGGABLE_DEVICE_LIBRARY_PATH), which v5e requires.
FROM pipeline AS tpu-trainer
ARG PYTHON_VERSION
ARG TENSORFLOW_TPU_VERSION=2.16.2
ARG LIBTPU_FIND_LINKS=https://storage.googleapis.com/libtpu-tf-releases/index.html
RUN python -m pip uninstall -y tensorflow \
 && python -m pip install "tensorflow-tpu==${TENSORFLOW_TPU_VERSION}" \
      --find-links "${LIBTPU_FIND_LINKS}"
ENV TPU_NAME=local \
    NEXT_PLUGGABLE_DEVICE_USE_C_API=true \
    TF_PLUGGABLE_DEVICE_LIBRARY_PATH=/usr/local/lib/python${PYTHON_VERSION}/site-packages/libtpu/libtpu.so
RUN test -f "${TF_PLUGGABLE_DEVICE_LIBRARY_PATH}" \
 || { echo "libtpu.so is not at ${TF_PLUGGABLE_DEVICE_LIBRARY_PATH}:" \
      "$(python -c 'import libtpu, os; print(os.path.dirname(libtpu.__file__))')"; exit 1; }


# Vertex AI Training on NVIDIA GPUs (MirroredStrategy): TensorFlow with the
# CUDA/cuDNN libraries it was built against, from PyPI.
FROM pipeline AS gpu-trainer
ARG TENSORFLOW_VERSION=2.16.2
RUN python -m pip install "tensorflow[and-cuda]==${TENSORFLOW_VERSION}"


# `docker build .` without --target builds the pipeline image.
FROM pipeline
