"""The client's secrets (pganalytics_core._secrets): credentials and scrubbing, no network."""

from __future__ import annotations

import base64

import httpx
import pytest

from pganalytics_core._secrets import (
    ERROR_BODY_BYTES,
    Scrubber,
    authorization,
    normalise_base_url,
    redact_authorization,
    scrub_json,
    without_secret_tail,
)
from pganalytics_core.errors import ConfigError

KEY = "sk-live-0123456789abcdef"


def test_url_credentials_move_to_a_basic_header() -> None:
    url, basic, password = normalise_base_url("http://ann:s3cret-pw@127.0.0.1:8081/ml/")
    assert str(url) == "http://127.0.0.1:8081/ml"
    assert password == "s3cret-pw"
    assert basic == "Basic " + base64.b64encode(b"ann:s3cret-pw").decode()
    assert authorization(None, basic) == basic


@pytest.mark.parametrize(
    ("base_url", "message"),
    [
        ("http://user:pw@[::1", "is not a valid URL"),
        ("ftp://user:pw@host", "absolute http"),
        ("http://host/?token=pw", "query or a fragment"),
    ],
)
def test_a_bad_base_url_is_refused_without_quoting_it(base_url: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message) as info:
        normalise_base_url(base_url)
    assert "pw" not in str(info.value)
    assert info.value.__context__ is None


def test_an_api_key_is_a_bearer_header_and_never_echoed() -> None:
    assert authorization(KEY, None) == f"Bearer {KEY}"
    with pytest.raises(ConfigError) as info:
        authorization(" " + KEY, None)
    assert KEY not in str(info.value)
    with pytest.raises(ConfigError, match="not both"):
        authorization(KEY, "Basic abc")
    with pytest.raises(TypeError, match="api_key"):
        authorization(b"key", None)  # type: ignore[arg-type]


def test_the_scrubber_removes_secrets_in_any_case() -> None:
    scrubber = Scrubber(KEY, "", None)
    assert scrubber.active
    assert scrubber.scrub(f"echo {KEY.upper()} and {KEY}") == "echo *** and ***"
    assert scrubber.excerpt_bytes == ERROR_BODY_BYTES + len(KEY)
    assert not Scrubber(None, "", None).active
    assert Scrubber(None, "", None).scrub(KEY) == KEY


def test_basic_credentials_are_scrubbed_whole_and_by_token() -> None:
    _, basic, password = normalise_base_url("http://ann:s3cret-pw@host")
    assert basic is not None
    scrubber = Scrubber(None, password, basic)
    token = basic.removeprefix("Basic ")
    assert scrubber.scrub(f"got {basic}; then {token}; pw s3cret-pw") == "got ***; then ***; pw ***"


def test_a_cut_secret_at_the_end_of_an_excerpt_is_dropped() -> None:
    scrubber = Scrubber(KEY, "", None)
    cut = "error: bad key " + KEY[:10]
    assert scrubber.text(cut) == "error: bad key"
    assert without_secret_tail("fine text...", (KEY,)) == "fine text..."
    assert without_secret_tail("tail sk-l...", (KEY,)) == "tail..."
    assert without_secret_tail("tail sk-", (KEY,)) == "tail sk-"  # 3 characters: kept


def test_an_excerpt_reads_past_the_error_size_by_the_longest_secret() -> None:
    scrubber = Scrubber(KEY, "", None)
    body = b"x" * (ERROR_BODY_BYTES - 5) + KEY.encode() + b"y" * 100
    assert KEY not in scrubber.excerpt(body)


def test_json_values_and_keys_are_scrubbed() -> None:
    scrubber = Scrubber(KEY, "", None)
    data = {KEY: [KEY, 1, {"k": f"x{KEY}"}], "n": None}
    assert scrub_json(data, scrubber.scrub) == {"***": ["***", 1, {"k": "x***"}], "n": None}
    assert scrubber.may_hold_secret('{"a": "\\u0073k"}')  # an escape may spell one
    assert not scrubber.may_hold_secret('{"a": "plain"}')


def test_the_exception_chain_is_scrubbed_in_text_and_bytes() -> None:
    scrubber = Scrubber(KEY, "", None)
    inner = ValueError(KEY.encode("latin-1"), 7)
    outer = RuntimeError(f"failed with {KEY}")
    outer.__cause__ = inner
    inner.__context__ = outer  # a cycle: visited once
    scrubber.scrub_exception_chain(outer)
    assert outer.args == ("failed with ***",)
    assert inner.args == (b"***", 7)


def test_the_authorization_header_is_redacted_on_both_requests() -> None:
    sent = httpx.Request("GET", "http://host/", headers={"Authorization": f"Bearer {KEY}"})
    attached = httpx.Request("GET", "http://host/", headers={"Authorization": f"Bearer {KEY}"})
    redact_authorization(httpx.ReadError("boom", request=attached), sent)
    assert sent.headers["Authorization"] == "[redacted]"
    assert attached.headers["Authorization"] == "[redacted]"
    bare = httpx.Request("GET", "http://host/", headers={"Authorization": "Bearer x"})
    redact_authorization(httpx.ReadError("no request attached"), bare)
    assert bare.headers["Authorization"] == "[redacted]"
