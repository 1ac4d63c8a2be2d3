"""E-graph pictures."""
