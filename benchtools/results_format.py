"""What a stored asv results file must look like for asv to read it.

The results branch holds asv's results tree: ``benchmarks.json`` at the top, and per
machine a ``machine.json`` and one ``<commit[:8]>-<environment>.json`` per benchmarked
commit. asv reads each with its own format version (``api_version``) and fails (``asv
run``) or skips it with only a printed error (``asv publish``) when it does not parse.
:func:`problem` says, before asv sees a file, why it would not read it: a truncated
write, an empty file, a leftover merge-conflict marker, another format version.

The versions are asv's (``asv.benchmarks.Benchmarks.api_version``,
``asv.machine.Machine.api_version``, ``asv.results.Results.api_version``), written here
so this module needs no asv; a test pins them to asv's, so an asv upgrade that changes a
format fails that test, not a published history.
"""

from __future__ import annotations

import json
import re

BENCHMARKS_VERSION = 2
MACHINE_VERSION = 1
RESULTS_VERSION = 2

_CONFLICT = re.compile(rb"^(<<<<<<<|=======|>>>>>>>)( |$)", re.MULTILINE)
#: ``<commit[:8]>-<environment>.json``: the benchmarked commit's prefix is in the name.
_RESULT_NAME = re.compile(r"([0-9a-f]{8})-[^/]+\.json")


def kind(path: str) -> str | None:
    """``benchmarks``, ``machine``, ``result`` for asv's files in a results tree, else None."""
    parts = path.split("/")
    if parts == ["benchmarks.json"]:
        return "benchmarks"
    if len(parts) != 2:
        return None
    if parts[1] == "machine.json":
        return "machine"
    return "result" if parts[1].endswith(".json") else None


def result_commit_prefix(path: str) -> str | None:
    """The benchmarked commit's first 8 hex digits, from a result file's name."""
    m = _RESULT_NAME.fullmatch(path.split("/")[-1])
    return m[1] if m and kind(path) == "result" else None


def problem(path: str, data: bytes) -> str | None:
    """Why asv would not read ``data`` as the file ``path`` of a results tree; None if fine.

    Files that are not asv's (:func:`kind` is None) are never a problem.
    """
    what = kind(path)
    if what is None:
        return None
    if not data.strip():
        return "is empty"
    if _CONFLICT.search(data):
        return "holds a merge-conflict marker"
    try:
        doc = json.loads(data)
    except ValueError as exc:
        return f"does not parse as JSON ({exc})"
    if not isinstance(doc, dict):
        return "is not a JSON object"
    expected = {
        "benchmarks": BENCHMARKS_VERSION,
        "machine": MACHINE_VERSION,
        "result": RESULTS_VERSION,
    }[what]
    if doc.get("version") != expected:
        return f"is asv format version {doc.get('version')!r}, not {expected}"
    if what == "result":
        if not isinstance(doc.get("commit_hash"), str):
            return "has no commit_hash"
        if not isinstance(doc.get("results"), dict):
            return "has no results"
        if not isinstance(doc.get("result_columns"), list):
            return "has no result_columns"
    return None
