"""The repository's benchmarking and CI tools: one package, one command.

``python -m benchtools COMMAND`` (from the repository root; ``make`` and the GitHub
workflows call it this way). One module per concept:

* :mod:`benchtools.sysdeps`: the Debian packages a make target needs, installed when
  missing (standard library only: it runs before the virtualenv exists);
* :mod:`benchtools.cli`: the command and its subcommands.

The review tool itself (paired rounds, verdicts, reports) is still ``tools/asvcompare``,
run as ``tools/asv_compare.py``; the history pipeline and the site are ``tools/`` scripts.
"""
