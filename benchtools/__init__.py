"""The repository's benchmarking and CI tools: one package, one command.

``python -m benchtools COMMAND`` (from the repository root; ``make`` and the GitHub
workflows call it this way). One module per concept:

* :mod:`benchtools.sysdeps`: the Debian packages a make target needs, installed when
  missing (standard library only: it runs before the virtualenv exists);
* :mod:`benchtools.actions`: GitHub Actions' runtime files (the event payload, the job
  summary, step outputs), read and written as typed values;
* :mod:`benchtools.prcheck`: the pull-request check (merge base, compare, reports, verdict);
* :mod:`benchtools.prcomment`: the one benchmark comment per pull request, created or
  updated through GitHub's REST API (standard library only: its job installs nothing);
* :mod:`benchtools.cli`: the command and its subcommands.

The review tool itself (paired rounds, verdicts, reports) is still ``tools/asvcompare``,
run as ``tools/asv_compare.py``; the history pipeline and the site are ``tools/`` scripts.
"""
