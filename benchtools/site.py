"""The published benchmark site: self-contained, correctly linked, in a branch, previewable.

``asv publish`` writes ``html/``; :func:`finish` then makes it a site that opens anywhere:

- **No external request.** asv's ``index.html`` loads jQuery, flot (+ time, selection,
  categories), flot-orderBars, stupidtable, blueimp-md5 and Bootstrap from public CDNs.
  The same versions are committed in ``benchtools/site_assets/vendor/`` (from their npm
  packages, with their licenses; see its README), copied to ``html/vendor/`` and the
  tags rewritten to load them. An external URL this module does not know (a newer asv)
  is an error, not a silently broken site.
- **Links.** :func:`site_links` derives the project link and the commit link prefix
  from the ``origin`` remote (a web URL such as ``https://github.com/o/r``; credentials
  in it are dropped), or takes them from ``$PROJECT_URL`` / ``$COMMIT_URL``. They go into
  the configuration ``asv publish`` reads (:func:`publish_config`). Without them, asv
  would write bare-hash links (404s); :func:`finish` then adds a small script that leaves
  those links out (text instead of a broken link).
- **A branch.** :func:`write_pages_branch` commits ``html/`` as the tree of ``gh-pages``
  with git plumbing (benchtools/git.py): nothing is checked out, ``git status`` of the
  working tree does not change. ``git push origin gh-pages`` publishes it.
- **Opens from disk.** Browsers refuse XMLHttpRequest on ``file://``, which asv uses
  for its data; every ``X.json`` gets a twin ``X.json.js`` and a small script makes
  jQuery load the twins with script tags when the page is a file (:func:`write_file_twins`).
- **Preview.** :func:`serve` serves the site on 127.0.0.1 only (``asv preview`` binds
  every interface).

Usage: ``python -m benchtools preview [--port 8080]`` (``make preview``).
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import http.server
import json
import os
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from benchtools import evidence
from benchtools import git as gp

ROOT = Path(__file__).resolve().parent.parent
#: Our own scripts of the site (real files), and the vendored copies of asv's assets.
ASSETS_DIR = Path(__file__).resolve().parent / "site_assets"
VENDOR_DIR = ASSETS_DIR / "vendor"
PAGES_BRANCH = "gh-pages"

#: asv 0.6's CDN URLs and the committed copy of each (relative to VENDOR_DIR).
CDN_ASSETS: dict[str, str] = {
    "https://code.jquery.com/jquery-3.3.1.min.js": "jquery/jquery.min.js",
    "https://cdnjs.cloudflare.com/ajax/libs/flot/0.8.3/jquery.flot.min.js": "flot/jquery.flot.js",
    "https://cdnjs.cloudflare.com/ajax/libs/flot/0.8.3/jquery.flot.time.min.js": (
        "flot/jquery.flot.time.js"
    ),
    "https://cdnjs.cloudflare.com/ajax/libs/flot/0.8.3/jquery.flot.selection.min.js": (
        "flot/jquery.flot.selection.js"
    ),
    "https://cdnjs.cloudflare.com/ajax/libs/flot/0.8.3/jquery.flot.categories.min.js": (
        "flot/jquery.flot.categories.js"
    ),
    "https://cdn.jsdelivr.net/npm/flot-orderbars@1.0.0/js/jquery.flot.orderBars.js": (
        "flot-orderbars/jquery.flot.orderBars.js"
    ),
    "https://cdnjs.cloudflare.com/ajax/libs/stupidtable/1.0.1/stupidtable.min.js": (
        "stupidtable/stupidtable.min.js"
    ),
    "https://cdnjs.cloudflare.com/ajax/libs/blueimp-md5/2.19.0/js/md5.min.js": (
        "blueimp-md5/md5.min.js"
    ),
    "https://cdn.jsdelivr.net/npm/bootstrap@3.1.1/dist/js/bootstrap.min.js": (
        "bootstrap/js/bootstrap.min.js"
    ),
    "https://cdn.jsdelivr.net/npm/bootstrap@3.1.1/dist/css/bootstrap.min.css": (
        "bootstrap/css/bootstrap.min.css"
    ),
}

#: Loaded by the pages when there is no commit URL: drops the bare-hash links asv writes.
NO_LINKS_SCRIPT = "pga-no-commit-links.js"

#: Lets the site open from disk: loaded right after jQuery (see :func:`write_file_twins`).
FILE_DATA_SCRIPT = "pga-file-data.js"
#: Adds each published step's reason and evidence link on the Regressions page.
EVIDENCE_SCRIPT = "pga-step-evidence.js"
#: Marks those steps on their graphs; reads a flat graph plainly (one y tick).
GRAPH_SCRIPT = "pga-graph.js"

_BARE_COMMIT_LINK = re.compile(r"&lt;a href=\"[0-9a-f]{7,40}\"&gt;([^&<]*)&lt;/a&gt;")
_TAG = re.compile(r"<(script|link)\b[^>]*?\b(?:src|href)=\"(https?://[^\"]+)\"[^>]*>(</script>)?")


class SiteError(RuntimeError):
    """The published site cannot be made self-contained or committed."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SiteLinks:
    """Where the project and its commits live on the web ("" when nowhere)."""

    project_url: str
    commit_url: str


def web_url(remote_url: str) -> str:
    """The https address of a repository's web page, or "" for a local or unknown remote.

    ``git@host:o/r.git``, ``ssh://git@host/o/r``, ``https://user:token@host/o/r.git``
    all give ``https://host/o/r`` (never the credentials).
    """
    url = remote_url.strip()
    scp = re.fullmatch(r"(?:[^@/\s]+@)?([^:/\s]+):(?!//)(.+)", url)
    if scp and not re.fullmatch(r"[A-Za-z]", scp.group(1)):
        host, path = scp.group(1), scp.group(2)
    else:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https", "ssh", "git") or not parts.hostname:
            return ""
        host, path = parts.hostname, parts.path
        if parts.port and parts.scheme in ("http", "https"):
            host = f"{host}:{parts.port}"
    path = path.strip("/")
    path = path.removesuffix(".git")
    if not path:
        return ""
    return f"https://{host}/{path}"


def commit_url_for(project_url: str) -> str:
    """The prefix of a commit's page: ``.../commit/`` (GitLab ``/-/commit/``)."""
    if not project_url:
        return ""
    host = urlsplit(project_url).hostname or ""
    base = project_url.rstrip("/")
    if "gitlab" in host:
        return f"{base}/-/commit/"
    if host == "bitbucket.org":
        return f"{base}/commits/"
    return f"{base}/commit/"


def site_links(repo: Path, env: dict[str, str] | None = None) -> SiteLinks:
    """The links of the site: ``$PROJECT_URL``/``$COMMIT_URL``, else from ``origin``."""
    env = dict(os.environ) if env is None else env
    project = env.get("PROJECT_URL", "").strip()
    commit = env.get("COMMIT_URL", "").strip()
    if not project:
        try:
            remote = gp.git(repo, "remote", "get-url", "origin").decode()
        except gp.GitError:
            remote = ""
        project = web_url(remote)
    if not commit:
        commit = commit_url_for(project)
    elif not commit.endswith("/"):
        commit += "/"
    return SiteLinks(project_url=project, commit_url=commit)


def _load_conf(conf_path: Path) -> dict[str, object]:
    from benchtools.compare import asvglue  # the one reader of asv.conf.json
    from benchtools.compare.model import CompareError

    try:
        return asvglue.load_conf_json(conf_path)
    except CompareError as exc:
        raise SiteError(str(exc)) from None


def publish_config(conf_path: Path, out_path: Path, links: SiteLinks) -> Path:
    """Write a copy of asv's configuration with the site's links; return its path.

    asv reads paths relative to its configuration file's directory: the copy has them
    absolute, so it can live anywhere (under ``.asv/``, out of ``git status``).
    """
    conf = _load_conf(conf_path)
    base = conf_path.resolve().parent
    for key in ("repo", "benchmark_dir", "env_dir", "results_dir", "html_dir"):
        value = conf.get(key)
        if isinstance(value, str) and "://" not in value:
            conf[key] = str(base / value)
    conf["project_url"] = links.project_url
    conf["show_commit_url"] = links.commit_url
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(conf, indent=2) + "\n")
    return out_path


def _local_tag(kind: str, rel: str) -> str:
    if kind == "link":
        return f'<link rel="stylesheet" href="vendor/{rel}">'
    return f'<script src="vendor/{rel}" onerror="js_load_failure()"></script>'


def localize_html(text: str) -> str:
    """``text`` with every CDN script and stylesheet tag loading the vendored copy.

    Raises:
        SiteError: a tag loads an external URL with no vendored copy.
    """
    unknown: list[str] = []

    def replace(match: re.Match[str]) -> str:
        kind, url = match.group(1), match.group(2)
        rel = CDN_ASSETS.get(url)
        if rel is None:
            unknown.append(url)
            return match.group(0)
        return _local_tag(kind, rel)

    out = _TAG.sub(replace, text)
    if unknown:
        raise SiteError(
            "the site would load external files with no vendored copy: "
            + ", ".join(unknown)
            + " (a newer asv? refresh benchtools/site_assets/vendor, see its README)"
        )
    return out


def finish(html_dir: Path, links: SiteLinks) -> None:
    """Make the site ``asv publish`` wrote self-contained (see the module docstring)."""
    if not (html_dir / "index.html").is_file():
        raise SiteError(f"no site in {html_dir} (did asv publish run?)")
    vendor_out = html_dir / "vendor"
    shutil.rmtree(vendor_out, ignore_errors=True)
    shutil.copytree(VENDOR_DIR, vendor_out, ignore=shutil.ignore_patterns("README.md"))
    jquery_tag = _local_tag("script", CDN_ASSETS["https://code.jquery.com/jquery-3.3.1.min.js"])
    file_data_tag = f'<script src="{FILE_DATA_SCRIPT}"></script>'
    step_tags = (
        f'<script src="{EVIDENCE_SCRIPT}"></script>\n    <script src="{GRAPH_SCRIPT}"></script>'
    )
    for page in sorted(html_dir.glob("*.html")):
        text = localize_html(page.read_text())
        if jquery_tag in text and file_data_tag not in text:
            text = text.replace(jquery_tag, f"{jquery_tag}\n    {file_data_tag}", 1)
        if page.name == "index.html" and file_data_tag in text and step_tags not in text:
            text = text.replace(file_data_tag, f"{file_data_tag}\n    {step_tags}", 1)
        if not links.commit_url and page.name == "index.html":
            tag = f'<script src="{NO_LINKS_SCRIPT}"></script>'
            if tag not in text:
                text = text.replace("</head>", f"    {tag}\n  </head>", 1)
        page.write_text(text)
    no_links = html_dir / NO_LINKS_SCRIPT
    if links.commit_url:
        no_links.unlink(missing_ok=True)
    else:
        shutil.copyfile(ASSETS_DIR / NO_LINKS_SCRIPT, no_links)
        feed = html_dir / "regressions.xml"
        if feed.is_file():  # the Atom feed's entries (HTML escaped in XML) link commits too
            feed.write_text(_BARE_COMMIT_LINK.sub(r"\1", feed.read_text()))
    (html_dir / ".nojekyll").write_text("")  # serve vendor/ and files as they are
    _fill_missing_summaries(html_dir)
    shutil.copyfile(ASSETS_DIR / FILE_DATA_SCRIPT, html_dir / FILE_DATA_SCRIPT)
    shutil.copyfile(ASSETS_DIR / EVIDENCE_SCRIPT, html_dir / EVIDENCE_SCRIPT)
    shutil.copyfile(ASSETS_DIR / GRAPH_SCRIPT, html_dir / GRAPH_SCRIPT)
    try:
        evidence.write_pages(html_dir, links.commit_url)
    except evidence.EvidenceError as exc:
        raise SiteError(str(exc)) from None
    write_file_twins(html_dir)


def write_file_twins(html_dir: Path) -> int:
    """``X.json.js`` next to every ``X.json`` of the site; the number written.

    The twin calls ``__pgaData(path, text)`` with the JSON text, so the pages opened
    from disk (``file://``) can load their data with script tags (``FILE_DATA_SCRIPT``).
    """
    written = 0
    for data in sorted(html_dir.rglob("*.json")):
        rel = data.relative_to(html_dir).as_posix()
        twin = data.with_name(data.name + ".js")
        content = f"__pgaData({json.dumps(rel)}, {json.dumps(data.read_text())});\n"
        if not twin.exists() or twin.read_text() != content:
            twin.write_text(content)
            written += 1
    return written


def _fill_missing_summaries(html_dir: Path) -> None:
    """An empty summary for every benchmark without one (no result on any commit).

    asv's grid loads ``graphs/summary/NAME.json`` for every benchmark it lists and draws
    nothing when that fails; a benchmark that never produced a value (n/a everywhere, a
    tool missing) would cost a 404 and a console error. An empty series draws the same
    empty thumbnail.
    """
    try:
        index = json.loads((html_dir / "index.json").read_text())
    except (OSError, ValueError):
        return
    summary_dir = html_dir / "graphs" / "summary"
    for name in index.get("benchmarks", {}) if isinstance(index, dict) else {}:
        target = summary_dir / f"{name}.json"
        if "/" not in name and not target.exists():
            summary_dir.mkdir(parents=True, exist_ok=True)
            target.write_text("[]")


def write_pages_branch(repo: Path, html_dir: Path, branch: str = PAGES_BRANCH) -> str | None:
    """Commit ``html_dir`` as the whole tree of ``branch``; the new commit or None.

    The copies of ``branch`` fetched from remotes (``refs/remotes/*/gh-pages``) become
    parents, so ``git push origin gh-pages`` fast-forwards; fetch them first
    (:func:`git_plumbing.fetch_branch`).

    Raises:
        SiteError: there is no site, or git could not commit it.
    """
    if not (html_dir / "index.html").is_file():
        raise SiteError(f"no site in {html_dir} to commit")
    try:
        return gp.commit_directory(
            repo,
            branch=branch,
            directory=html_dir,
            message="Publish the benchmark site",
            # The remotes' copies are parents: pushing the new site is a fast-forward.
            merge_parents=[c for r in gp.remote_copies(repo, branch) if (c := gp.resolve(repo, r))],
        )
    except gp.GitError as exc:
        raise SiteError(f"could not write the {branch} branch: {exc}") from exc


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        if os.environ.get("PREVIEW_LOG"):
            super().log_message(format, *args)


def make_server(html_dir: Path, port: int = 8080) -> http.server.ThreadingHTTPServer:
    """An HTTP server of ``html_dir`` bound to 127.0.0.1 only (port 0: any free port)."""
    handler = functools.partial(_QuietHandler, directory=str(html_dir))
    return http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)


def serve(html_dir: Path, port: int = 8080) -> None:
    """Serve ``html_dir`` on http://127.0.0.1:PORT until interrupted."""
    if not (html_dir / "index.html").is_file():
        raise SiteError(f"no site in {html_dir}: run `make bench` first")
    with make_server(html_dir, port) as server:
        host, bound_port = server.server_address[:2]
        print(f"Serving {html_dir} on http://{host!s}:{bound_port}/ (Ctrl-C stops)", flush=True)
        with contextlib.suppress(KeyboardInterrupt):
            server.serve_forever()


def main(argv: list[str] | None = None) -> int:
    """``bench_site.py preview``: serve html/ on 127.0.0.1."""
    parser = argparse.ArgumentParser(description="The published benchmark site.")
    sub = parser.add_subparsers(dest="command", required=True)
    preview = sub.add_parser("preview", help="serve html/ on 127.0.0.1 only")
    preview.add_argument("--port", type=int, default=8080)
    preview.add_argument("--html-dir", type=Path, default=ROOT / "html")
    args = parser.parse_args(argv)
    try:
        serve(args.html_dir, args.port)
    except (SiteError, OSError) as exc:
        print(f"preview: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
