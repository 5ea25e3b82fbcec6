"""Loaded by task processes of `rehearse-vertex` (on their PYTHONPATH):
installs the fake Vertex AI training client (see fake_vertex.py)."""

from runners.vertex_rehearsal import fake_vertex

fake_vertex.install_if_requested()
