"""Pipeline-level and end-to-end tests."""
