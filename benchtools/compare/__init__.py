"""Benchmark two revisions with asv and judge them: the review tool behind ``make compare``.

Run it as ``python tools/asv_compare.py`` (from the repository root; or
``python -m benchtools compare`` with ``tools`` on the path). Usage::

    python tools/asv_compare.py --base main --head HEAD                # exit 0, 1 or 2
    python tools/asv_compare.py --base main --head HEAD -b GuardedCall --rounds 8
    python tools/asv_compare.py --base main --head HEAD --no-run       # stored results only
    make compare BASE=v0.1 HEAD=my-branch FACTOR=1.1 COMPARE_ARGS="--markdown review.md"

Exit codes: 0 nothing regressed, 1 a regression beyond the threshold, 2 a benchmark
failed or could not run, or the comparison itself could not be made (the report still
lists every benchmark that did run). ``make compare`` reports 1 as make's own 2: CI
calls the script directly.

The package, one concept per module; only :mod:`~benchtools.compare.asvglue` imports asv:

* :mod:`~benchtools.compare.model`: results per round, verdicts, their vocabulary;
* :mod:`~benchtools.compare.verdicts`: the rules (quantiles, slow spells, the paired rule, the
  instruction-count rule, confirmation, exit codes);
* :mod:`~benchtools.compare.rounds`: the order of a comparison (rounds, then confirmation);
* :mod:`~benchtools.compare.calldiff`: the evidence of a change, the call-count diff of
  the operation behind it (profiled by ``benchtools/callprofile.py`` in asv's environment);
* :mod:`~benchtools.compare.report`: text, Markdown and JSON reports;
* :mod:`~benchtools.compare.gitrev`: revisions and uncommitted changes;
* :mod:`~benchtools.compare.asvglue`: asv's environment, builds, discovery, runner and results;
* :mod:`~benchtools.compare.cli`: the command line.

How it works (the reasoning, and the measurements behind it, are in docs/reviewing.md):

1. BASE and HEAD are resolved to commit hashes. asv builds commits, so uncommitted
   changes to the package are not measured (the report warns); ``benchmarks/`` is
   taken from the working tree, for both sides alike.
2. asv's own machinery, through its Python API: the virtualenv environment of
   ``asv.conf.json`` (created on first use), one wheel per commit built by asv's
   ``build_command`` (cached), benchmark discovery, and asv's benchmark runner
   (``asv/benchmark.py``), one fresh process per benchmark and side.
3. Paired rounds: in every round each benchmark runs for base and for head back to
   back (well under a second apart, the order alternating), so both sides of a pair
   see the same load on a shared machine. ``asv run`` rounds are whole-suite passes,
   tens of seconds apart, which on a busy 2-core box is enough for the machine's speed
   to change by 2x between base and head.
4. The verdict per benchmark (:func:`~benchtools.compare.verdicts.classify`): from every round
   the ratio head/base of the fastest sample of each side's process (rounds that ran
   through a slow spell of the machine set aside); a change counts when the median ratio
   is beyond ``--factor`` *and* the ratio's spread over the rounds (its interquartile
   range) lies entirely on the same side of 1, i.e. the two sides' spreads, once the
   load both sides of a round shared is divided out, do not overlap.
5. Benchmarks that look changed get ``--confirm-rounds`` more rounds; a change must
   hold on all rounds together and on the confirmation rounds alone. When only the
   latter fails, the benchmark gets one more batch before it is called unchanged.
6. Instruction counts (``track_`` benchmarks with ``unit = "instructions"``) are
   deterministic: measured once per side, never confirmed, and a change beyond
   ``--instructions-threshold`` (2%) either way is a verdict
   (:func:`~benchtools.compare.verdicts.classify_instructions`).

7. Each change found (a regression or an improvement) with an operation behind it gets
   its evidence: the call-count diff of that operation, base -> head
   (:func:`~benchtools.compare.calldiff.call_diffs`); nothing flagged, nothing profiled.

Nothing is written to ``.asv/results`` (the history ``make bench`` publishes is never
mixed with review runs). Per-commit package builds are cached in ``.asv/compare/``.
"""

from benchtools.compare.model import (
    DEFAULT_CONFIRM_ROUNDS,
    DEFAULT_FACTOR,
    DEFAULT_INSTRUCTIONS_THRESHOLD,
    DEFAULT_ROUNDS,
    DISTURBED,
    FAILED,
    IMPROVEMENT,
    INSTRUCTIONS,
    INSTRUCTIONS_FLOOR,
    MIN_UNDISTURBED,
    NEW,
    NOT_RUN,
    REGRESSION,
    UNCHANGED,
    VERDICT_ORDER,
    Band,
    BudgetSpent,
    CompareError,
    Measurements,
    RoundResult,
    Verdict,
)
from benchtools.compare.report import (
    ReportInfo,
    format_band,
    format_ratio,
    human,
    measurements_from_json,
    measurements_to_json,
    render_markdown,
    render_text,
    report_json,
    summary_line,
    verdict_from_json,
    verdict_to_json,
)
from benchtools.compare.verdicts import (
    blocks,
    classify,
    classify_instructions,
    compare_all,
    evidence,
    exit_code,
    quantile,
    side_band,
    side_status,
    suspects,
    undisturbed,
)

__all__ = [
    "DEFAULT_CONFIRM_ROUNDS",
    "DEFAULT_FACTOR",
    "DEFAULT_INSTRUCTIONS_THRESHOLD",
    "DEFAULT_ROUNDS",
    "DISTURBED",
    "FAILED",
    "IMPROVEMENT",
    "INSTRUCTIONS",
    "INSTRUCTIONS_FLOOR",
    "MIN_UNDISTURBED",
    "NEW",
    "NOT_RUN",
    "REGRESSION",
    "UNCHANGED",
    "VERDICT_ORDER",
    "Band",
    "BudgetSpent",
    "CompareError",
    "Measurements",
    "ReportInfo",
    "RoundResult",
    "Verdict",
    "blocks",
    "classify",
    "classify_instructions",
    "compare_all",
    "evidence",
    "exit_code",
    "format_band",
    "format_ratio",
    "human",
    "measurements_from_json",
    "measurements_to_json",
    "quantile",
    "render_markdown",
    "render_text",
    "report_json",
    "side_band",
    "side_status",
    "summary_line",
    "suspects",
    "undisturbed",
    "verdict_from_json",
    "verdict_to_json",
]
