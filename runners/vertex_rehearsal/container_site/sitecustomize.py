"""Loaded by task processes of `rehearse-vertex` (on their PYTHONPATH):
installs the fake Vertex AI training client (see fake_vertex.py) and the
fake Model Registry and endpoint client (fake_registry.py)."""

from runners.vertex_rehearsal import fake_registry
from runners.vertex_rehearsal import fake_vertex

fake_vertex.install_if_requested()
fake_registry.install_if_requested()
