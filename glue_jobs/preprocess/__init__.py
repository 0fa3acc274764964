"""The preprocessing Glue job: raw CSV -> validated, deduplicated, split, curated CSV + baseline statistics.

Modules, each named for what it holds:

* :mod:`~glue_jobs.preprocess.rows` parses one raw line against the header and the dataset schema (pure Python).
* :mod:`~glue_jobs.preprocess.split` assigns a record to train, validation or test from a hash of its id.
* :mod:`~glue_jobs.preprocess.stats` computes the baseline statistics with Beam combiners.
* :mod:`~glue_jobs.preprocess.transforms` composes the steps as PTransforms (PCollection in, PCollections out).
* :mod:`~glue_jobs.preprocess.files` holds the pipeline's only I/O: read numbered lines, write whole files.
* :mod:`~glue_jobs.preprocess.pipeline` wires it all up: ``run(argv) -> summary``.

Nothing here imports Beam at package import time, so the pure parts stay cheap to import.
"""
