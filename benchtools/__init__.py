"""The repository's benchmarking and CI tools: one package, one command.

``python -m benchtools COMMAND`` from the repository root (:mod:`benchtools.cli` lists
the commands; ``make`` and the GitHub workflows call them). One module per concept, in
layers, each importing only from the layers below it:

* **plumbing**: :mod:`~benchtools.git` (the git runner and :class:`~benchtools.git.GitError`,
  side branches written without touching the work tree), :mod:`~benchtools.results_format`
  (what a readable asv results file is), :mod:`~benchtools.sysdeps` (Debian packages),
  :mod:`~benchtools.actions` (GitHub Actions' runtime files);
* **compare** (:mod:`benchtools.compare`): the model, the rounds, the verdicts, the
  reports, and ``compare.asvglue``, the adapter to asv's Python API;
* **history**: :mod:`~benchtools.results` (the ``benchmark-results`` branch and its
  quarantine), :mod:`~benchtools.confirm` (re-measuring published steps),
  :mod:`~benchtools.site` (the self-contained site, ``gh-pages``, the preview server),
  :mod:`~benchtools.history` (the ``make bench`` pipeline);
* **self-tests**: :mod:`~benchtools.selftest_compare` (a planted slowdown of ``call()``
  must be found by compare, nowhere else), :mod:`~benchtools.selftest_history` (a planted
  slowdown of ``reset()`` must be published at its commit, and nothing on docs commits);
* **CI**: :mod:`~benchtools.prcheck` (the pull-request check), :mod:`~benchtools.prcomment`
  (its comment); and :mod:`~benchtools.unasync`, :mod:`~benchtools.dryrun` for ``make``.

``sysdeps`` and ``prcomment`` use only the standard library: they run before the
virtualenv exists, or without one. ``tools/asv_compare.py`` is kept as an alias of
``python -m benchtools compare`` (the stable command CI jobs call by path).
"""
