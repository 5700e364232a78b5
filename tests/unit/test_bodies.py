"""Response bodies (pganalytics_core._bodies): bounds, inflation, strict JSON; no network."""

from __future__ import annotations

import gzip
import zlib

import httpx
import pytest

from pganalytics_core import _deadline
from pganalytics_core._bodies import (
    Inflater,
    body_inflater,
    check_declared_length,
    check_time_left,
    decode_json,
    excerpt_inflater,
    held_body,
    inflated_body,
)
from pganalytics_core._secrets import Scrubber
from pganalytics_core.errors import (
    MalformedResponseError,
    ResponseTooLargeError,
    ServiceTimeoutError,
)
from pganalytics_core.testing import FakeClock

KEY = "sk-live-0123456789abcdef"


def describe(text: str, limit: int) -> str:
    return text[:limit]


def test_a_compression_bomb_stops_one_byte_past_the_limit() -> None:
    bomb = gzip.compress(b"\0" * (10 << 20))
    inflater = Inflater(zlib.MAX_WBITS | 16, 1000)
    assert not inflater.feed(bomb)
    assert len(inflater.output()) == 1000


def test_a_whole_body_inflates_and_a_cut_one_is_refused() -> None:
    packed = zlib.compress(b'{"ok": true}')
    whole = Inflater(zlib.MAX_WBITS, 100)
    assert whole.feed(packed)
    assert inflated_body(whole, "predict") == b'{"ok": true}'
    cut = Inflater(zlib.MAX_WBITS, 100)
    assert cut.feed(packed[:-4])
    with pytest.raises(MalformedResponseError, match="ends before its end of stream"):
        inflated_body(cut, "predict")


def test_encodings_other_than_gzip_and_deflate_are_refused_or_stood_in() -> None:
    headers = httpx.Headers({"content-encoding": "br"})
    with pytest.raises(MalformedResponseError, match="unsupported content encoding 'br'"):
        body_inflater(headers, 100, "predict", describe)
    assert excerpt_inflater(headers, 100, describe) == b"[a br-encoded body]"
    identity = httpx.Headers({"content-encoding": " Identity "})
    assert body_inflater(identity, 100, "predict", describe) is None
    assert isinstance(
        body_inflater(httpx.Headers({"content-encoding": "GZIP"}), 1, "p", describe), Inflater
    )


def test_a_declared_length_beyond_the_limit_is_refused() -> None:
    check_declared_length(httpx.Headers({"content-length": "100"}), 100, "predict")
    check_declared_length(httpx.Headers({"content-length": "junk"}), 100, "predict")
    with pytest.raises(ResponseTooLargeError):
        check_declared_length(httpx.Headers({"content-length": "101"}), 100, "predict")
    with pytest.raises(ResponseTooLargeError):
        held_body(httpx.Response(200, content=b"x" * 101), 100, "predict")
    assert held_body(httpx.Response(200, content=b"x"), 100, "predict") == b"x"


def test_the_time_left_is_checked_on_the_exchange_clock() -> None:
    check_time_left("predict")  # outside an exchange: no end
    clock = FakeClock()
    with _deadline.exchange_deadline(1.0, clock):
        check_time_left("predict")
        clock.advance(1.0)
        with pytest.raises(ServiceTimeoutError, match="deadline passed while reading"):
            check_time_left("predict")


@pytest.mark.parametrize("text", [b"NaN", b'{"x": Infinity}', b"[1e999]", b"\xff", b"{"])
def test_json_is_strict(text: bytes) -> None:
    with pytest.raises(MalformedResponseError, match="not JSON") as info:
        decode_json(text, "predict", Scrubber(None, "", None))
    assert info.value.__context__ is None


def test_json_strings_are_scrubbed_and_deep_nesting_refused() -> None:
    scrubber = Scrubber(KEY, "", None)
    assert decode_json(f'{{"echo": "{KEY}"}}'.encode(), "predict", scrubber) == {"echo": "***"}
    # Deep enough that scrubbing (two frames a level) runs out of stack, not so deep that
    # the decoder does; deeper still, the decoder refuses it as not JSON.
    deep = b"[" * 700 + b'"\\u0041"' + b"]" * 700
    with pytest.raises(MalformedResponseError, match="nested too deeply"):
        decode_json(deep, "predict", scrubber)
    deeper = b"[" * 5000 + b"]" * 5000
    with pytest.raises(MalformedResponseError, match="not JSON"):
        decode_json(deeper, "predict", scrubber)
