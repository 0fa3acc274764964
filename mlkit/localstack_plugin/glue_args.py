"""How Glue hands arguments to a job script, and where it finds the script's libraries (no LocalStack imports)."""

from __future__ import annotations

from collections.abc import Mapping


def merge_arguments(
    default_arguments: Mapping[str, str] | None,
    run_arguments: Mapping[str, str] | None,
    non_overridable: Mapping[str, str] | None,
    *,
    job_name: str,
    run_id: str,
    temp_dir: str,
) -> dict[str, str]:
    """Merge a job's arguments the way Glue does for one run.

    Run arguments override the job's defaults, non-overridable arguments override both, and Glue's own
    (``--JOB_ID``, ``--JOB_RUN_ID``, ``--JOB_NAME``, ``--TempDir``...) are added. Every key keeps its ``--``.

    Returns:
        Argument name to value, in the order they are passed to the script.
    """
    merged: dict[str, str] = {
        "--JOB_ID": f"j_{run_id[3:]}",
        "--JOB_RUN_ID": run_id,
        "--JOB_NAME": job_name,
        "--job-bookmark-option": "job-bookmark-disable",
        "--TempDir": temp_dir,
    }
    for source in (default_arguments, run_arguments, non_overridable):
        for key, value in (source or {}).items():
            merged[key if key.startswith("--") else f"--{key}"] = str(value)
    return merged


def script_argv(arguments: Mapping[str, str]) -> list[str]:
    """Return ``--name value`` pairs as Glue passes them to the script (Glue passes all, its own included)."""
    argv: list[str] = []
    for key, value in arguments.items():
        argv += [key, value]
    return argv


def extra_py_files(arguments: Mapping[str, str]) -> list[str]:
    """Return the S3 URIs of ``--extra-py-files`` (comma-separated; archives or single ``.py`` files)."""
    raw = arguments.get("--extra-py-files", "")
    return [uri.strip() for uri in raw.split(",") if uri.strip()]
