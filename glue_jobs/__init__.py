"""Glue job scripts (thin entry points) and the Beam pipelines they run."""
