"""benchtools/site.py without a browser: vendored copies, links, the gh-pages branch."""

from __future__ import annotations

import base64
import hashlib
import re
import subprocess
from pathlib import Path

import asv
import pytest
import site_fixture as sf

from benchtools import git as gp
from benchtools import site as bench_site

ASV_INDEX = Path(asv.__file__).parent / "www" / "index.html"
FLOT_CDN = "https://cdnjs.cloudflare.com/ajax/libs/flot/0.8.3/"
_EXTERNAL = re.compile(r"<(?:script|link)\b[^>]*?\b(?:src|href)=\"(https?://[^\"]+)\"([^>]*)>")


def test_every_cdn_file_of_asv_has_a_vendored_copy_of_the_same_version() -> None:
    tags = _EXTERNAL.findall(ASV_INDEX.read_text())
    assert len(tags) == len(bench_site.CDN_ASSETS) == 10
    for url, rest in tags:
        rel = bench_site.CDN_ASSETS[url]
        local = bench_site.VENDOR_DIR / rel
        integrity = re.search(r'integrity="(sha\d+)-([^"]+)"', rest)
        assert integrity, url
        if url.startswith(FLOT_CDN):  # cdnjs serves minified copies of the same source
            assert "Copyright (c) 2007-2014 IOLA and Ole Laursen" in local.read_text()
        else:  # the very file: the hash asv pins matches
            algo, expected = integrity.groups()
            digest = base64.b64encode(hashlib.new(algo, local.read_bytes()).digest()).decode()
            assert digest == expected, f"{rel} is not the file of {url}"
    assert "version 0.8.3." in (bench_site.VENDOR_DIR / "flot/jquery.flot.js").read_text()
    for package in {rel.split("/")[0] for rel in bench_site.CDN_ASSETS.values()}:
        pkg_dir = bench_site.VENDOR_DIR / package
        assert [p for p in pkg_dir.iterdir() if "LICENSE" in p.name or p.name == "package.json"]


def test_localize_rewrites_every_cdn_tag_and_refuses_an_unknown_url() -> None:
    out = bench_site.localize_html(ASV_INDEX.read_text())

    assert _EXTERNAL.findall(out) == []
    assert out.count('src="vendor/') == 9
    assert '<link rel="stylesheet" href="vendor/bootstrap/css/bootstrap.min.css">' in out
    with pytest.raises(bench_site.SiteError, match=r"no vendored copy: https://cdn\.x/y\.js"):
        bench_site.localize_html('<script src="https://cdn.x/y.js"></script>')


@pytest.mark.parametrize(
    ("remote", "web"),
    [
        ("https://github.com/pganalytics/core.git", "https://github.com/pganalytics/core"),
        ("https://github.com/pganalytics/core", "https://github.com/pganalytics/core"),
        ("git@github.com:pganalytics/core.git", "https://github.com/pganalytics/core"),
        ("ssh://git@gitlab.example.com:2222/a/b.git", "https://gitlab.example.com/a/b"),
        ("https://ci:s3cret-token@github.com/o/r.git", "https://github.com/o/r"),
        ("https://git.example.com:8443/o/r.git", "https://git.example.com:8443/o/r"),
        ("/srv/git/core.git", ""),
        ("../core", ""),
        ("file:///srv/git/core.git", ""),
        ("C:/repos/core", ""),
        ("", ""),
    ],
)
def test_web_url_of_a_remote(remote: str, web: str) -> None:
    assert bench_site.web_url(remote) == web
    assert "s3cret" not in bench_site.web_url(remote)


def test_commit_url_per_host() -> None:
    assert bench_site.commit_url_for("https://github.com/o/r") == "https://github.com/o/r/commit/"
    assert bench_site.commit_url_for("https://gitlab.com/o/r") == "https://gitlab.com/o/r/-/commit/"
    assert bench_site.commit_url_for("") == ""


def test_site_links_from_origin_from_the_environment_or_none(tmp_path: Path) -> None:
    repo = sf.make_history(tmp_path / "r", n_commits=1).repo
    assert bench_site.site_links(repo, env={}) == bench_site.SiteLinks(
        project_url="", commit_url=""
    )
    sf.git(repo, "remote", "add", "origin", "git@github.com:o/r.git")
    assert bench_site.site_links(repo, env={}) == bench_site.SiteLinks(
        project_url="https://github.com/o/r", commit_url="https://github.com/o/r/commit/"
    )
    env = {"PROJECT_URL": "https://code.example/p", "COMMIT_URL": "https://code.example/c"}
    assert bench_site.site_links(repo, env=env) == bench_site.SiteLinks(
        project_url="https://code.example/p", commit_url="https://code.example/c/"
    )


def publish_fixture(tmp_path: Path, links: bench_site.SiteLinks) -> tuple[sf.History, Path]:
    history = sf.make_history(tmp_path / "repo", n_commits=4)
    sf.write_results(history.repo / ".asv" / "results", history)
    conf = bench_site.publish_config(
        history.repo / "asv.conf.json", history.repo / ".asv" / "publish.json", links
    )
    sf.asv_publish(history.repo, conf)
    html = history.repo / "html"
    bench_site.finish(html, links)
    return history, html


def test_finish_without_links_and_the_pages_branch(tmp_path: Path) -> None:
    history, html = publish_fixture(tmp_path, bench_site.SiteLinks(project_url="", commit_url=""))
    index = (html / "index.html").read_text()
    status_before = sf.git(history.repo, "status", "--porcelain", "--untracked-files=all")
    head_before = sf.git(history.repo, "rev-parse", "HEAD")

    assert f'<script src="{bench_site.NO_LINKS_SCRIPT}"></script>' in index
    assert (html / bench_site.NO_LINKS_SCRIPT).is_file()
    assert "example.invalid" not in (html / "index.json").read_text()
    feed = (html / "regressions.xml").read_text()
    assert f"in commit {history.commits[sf.REGRESSION_AT][:8]}." in feed
    assert not re.search(r'href=\\?"[0-9a-f]{7,40}', feed)
    for page in html.glob("*.html"):
        assert _EXTERNAL.findall(page.read_text()) == [], page.name
    # Idempotent: finishing twice changes nothing.
    bench_site.finish(html, bench_site.SiteLinks(project_url="", commit_url=""))
    assert (html / "index.html").read_text() == index

    commit = bench_site.write_pages_branch(history.repo, html)

    assert commit is not None
    files = gp.tree_files(history.repo, commit)
    assert "index.html" in files
    assert "vendor/jquery/jquery.min.js" in files
    assert ".nojekyll" in files
    assert files["index.html"] == (html / "index.html").read_bytes()
    assert sf.git(history.repo, "status", "--porcelain", "--untracked-files=all") == status_before
    assert sf.git(history.repo, "rev-parse", "HEAD") == head_before
    assert bench_site.write_pages_branch(history.repo, html) is None  # unchanged


def test_finish_with_links_drops_the_no_links_script(tmp_path: Path) -> None:
    links = bench_site.SiteLinks(
        project_url="https://github.com/o/r", commit_url="https://github.com/o/r/commit/"
    )
    _history, html = publish_fixture(tmp_path, links)

    assert bench_site.NO_LINKS_SCRIPT not in (html / "index.html").read_text()
    assert not (html / bench_site.NO_LINKS_SCRIPT).exists()
    index_json = (html / "index.json").read_text()
    assert '"show_commit_url": "https://github.com/o/r/commit/"' in index_json


def test_pages_of_two_clones_push_as_fast_forwards(tmp_path: Path) -> None:
    history = sf.make_history(tmp_path / "work", n_commits=1)
    bare = tmp_path / "origin.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(history.repo), str(bare)], check=True)
    clones = []
    for name in ("a", "b"):
        subprocess.run(["git", "clone", "-q", str(bare), str(tmp_path / name)], check=True)
        clones.append(tmp_path / name)
    for i, clone in enumerate(clones):
        site = tmp_path / f"site-{i}"
        site.mkdir()
        (site / "index.html").write_text(f"<p>site {i}</p>")
        assert gp.fetch_branch(clone, bench_site.PAGES_BRANCH, timeout_s=30) == []
        assert bench_site.write_pages_branch(clone, site) is not None
        sf.git(clone, "push", "--quiet", "origin", bench_site.PAGES_BRANCH)  # no --force

    a_pages = gp.resolve(clones[0], bench_site.PAGES_BRANCH)
    b_pages = gp.resolve(clones[1], bench_site.PAGES_BRANCH)
    assert a_pages is not None
    assert b_pages is not None
    assert gp.is_ancestor(clones[1], a_pages, b_pages)
    assert gp.tree_files(clones[1], b_pages) == {"index.html": b"<p>site 1</p>"}
    assert sf.git(clones[1], "status", "--porcelain") == ""
