"""Glue entry script of the preprocessing job.

Glue runs this file as a script; the ``glue_jobs`` and ``mlkit`` packages reach it through the
``--extra-py-files`` zip (``mlkit.packaging.build_glue_libs``), so imports are absolute. Locally::

    python glue_jobs/preprocess_job.py --input data/ai4i2020.csv --output work/curated

Arguments (Glue style, ``--name value``):

* ``--input``: the raw CSV, a local path or an ``s3://`` URI.
* ``--output``: the output directory or ``s3://`` prefix (layout: see ``glue_jobs.preprocess.pipeline``).
* ``--schema``: optional dataset schema JSON, path or URI; the packaged AI4I 2020 schema by default.

Glue adds its own arguments (``--JOB_NAME``, ``--JOB_RUN_ID``, ``--TempDir``, ...); they and any other
unknown ``--name [value]`` are ignored. With ``AWS_ENDPOINT_URL(_S3)`` set, ``s3://`` goes to that
endpoint (LocalStack). Exit status: 0 on success, 1 with one ``error:`` line on stderr otherwise.
"""

from __future__ import annotations

import argparse
import sys
import traceback
from collections.abc import Sequence
from typing import NoReturn

from glue_jobs.preprocess.pipeline import PreprocessError, run

PROG = "preprocess_job"


class _ArgumentParser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One clear line and exit status 1, like every other failure, instead of argparse's usage dump.
        raise PreprocessError(message)


def job_arguments(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    """Split command-line arguments into this job's own and the ignored rest (Glue's).

    Args:
        argv: The arguments after the script name.

    Returns:
        ``(job_argv, ignored)``: ``job_argv`` holds ``--input``, ``--output`` and ``--schema`` (when
        given) ready for :func:`glue_jobs.preprocess.pipeline.run`; ``ignored`` holds everything else.

    Raises:
        PreprocessError: If ``--input`` or ``--output`` is missing or has no value.
    """
    parser = _ArgumentParser(prog=PROG, allow_abbrev=False, add_help=False)
    parser.add_argument("--input", required=True)
    parser.add_argument("--output", required=True)
    parser.add_argument("--schema")
    args, ignored = parser.parse_known_args(list(argv))
    job_argv = ["--input", args.input, "--output", args.output]
    if args.schema:
        job_argv += ["--schema", args.schema]
    return job_argv, ignored


def main(argv: Sequence[str] | None = None) -> int:
    """Run the job and return the process exit status.

    Args:
        argv: Arguments after the script name (default: ``sys.argv[1:]``).
    """
    try:
        job_argv, ignored = job_arguments(sys.argv[1:] if argv is None else argv)
        names = [arg.split("=", 1)[0] for arg in ignored if arg.startswith("--")]
        if names:
            # Names only: Glue's values (buckets, run ids) add nothing here.
            print(f"{PROG}: ignoring arguments not meant for this job: {' '.join(names)}", flush=True)
        run(job_argv, echo=lambda line: print(line, flush=True))
    except PreprocessError as error:
        print(f"{PROG}: error: {error}", file=sys.stderr)
        return 1
    except Exception as error:  # an unexpected failure: keep the trace, but still end on one clear line
        traceback.print_exc()
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
        print(f"{PROG}: error: unexpected {type(error).__name__}: {first_line}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
