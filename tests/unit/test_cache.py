"""PredictionCache: TTL, true LRU eviction, counters, thread safety."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest

from pganalytics_core.cache import CacheStats, PredictionCache
from pganalytics_core.errors import ConfigError
from pganalytics_core.models import ConfidenceInterval, Prediction, PredictionRequest
from pganalytics_core.testing import FakeClock


def _key(query_hash: int, **parameters: object) -> PredictionRequest:
    return PredictionRequest.create(query_hash, parameters=parameters)


def _prediction(query_hash: int, ms: float = 10.0) -> Prediction:
    return Prediction(
        query_hash=query_hash,
        predicted_execution_time_ms=ms,
        confidence_score=0.9,
        confidence_interval=ConfidenceInterval(ms - 1, ms + 1, 0.5),
        scenario="current",
        model_version="v1.0",
        prediction_timestamp=datetime(2026, 1, 1, tzinfo=UTC),
        source="database",
    )


def test_defaults() -> None:
    cache = PredictionCache()
    assert cache.max_entries == 10_000
    assert cache.ttl_s == 900.0
    assert len(cache) == 0
    assert cache.stats() == CacheStats(hits=0, misses=0, evictions=0, expirations=0, size=0)
    assert cache.stats().hit_rate is None
    assert repr(cache) == "<PredictionCache size=0 max_entries=10000 ttl_s=900>"


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"max_entries": 0}, "max_entries"),
        ({"max_entries": 2.0}, "max_entries"),
        ({"max_entries": True}, "max_entries"),
        ({"ttl_s": 0}, "ttl_s"),
        ({"ttl_s": -1.0}, "ttl_s"),
        ({"ttl_s": float("inf")}, "ttl_s"),
        ({"ttl_s": "15m"}, "ttl_s"),
    ],
)
def test_invalid_config(kwargs: dict[str, object], field: str) -> None:
    with pytest.raises(ConfigError, match=f"^{field}: "):
        PredictionCache(**kwargs)  # type: ignore[arg-type]


def test_get_and_put_count_hits_and_misses() -> None:
    cache = PredictionCache(clock=FakeClock())
    key = _key(1, a=1)
    assert cache.get(key) is None
    value = _prediction(1)
    cache.put(key, value)
    assert cache.get(key) is value
    assert cache.get(_key(1, a=2)) is None
    assert cache.get(_key(1, a=1)) is value  # an equal key built anew
    assert cache.stats() == CacheStats(hits=2, misses=2, evictions=0, expirations=0, size=1)
    assert cache.stats().hit_rate == 0.5


def test_keys_distinguish_scenario_and_parameters_but_not_their_order() -> None:
    cache = PredictionCache(clock=FakeClock())
    cache.put(PredictionRequest.create(1, parameters={"a": 1, "b": 2}), _prediction(1, 1.0))
    assert cache.get(PredictionRequest.create(1, parameters={"b": 2, "a": 1})) is not None
    assert (
        cache.get(PredictionRequest.create(1, parameters={"b": 2, "a": 1}, scenario="optimized"))
        is None
    )
    assert cache.get(PredictionRequest.create(2, parameters={"a": 1, "b": 2})) is None


def test_entries_expire_after_ttl() -> None:
    clock = FakeClock()
    cache = PredictionCache(ttl_s=10.0, clock=clock)
    key = _key(1)
    cache.put(key, _prediction(1))
    clock.advance(9.999)
    assert cache.get(key) is not None
    assert key in cache
    clock.advance(0.001)
    assert key not in cache
    assert cache.get(key) is None
    assert len(cache) == 0
    assert cache.stats() == CacheStats(hits=1, misses=1, evictions=0, expirations=1, size=0)


def test_put_refreshes_the_ttl_and_replaces_the_value() -> None:
    clock = FakeClock()
    cache = PredictionCache(ttl_s=10.0, clock=clock)
    key = _key(1)
    cache.put(key, _prediction(1, 1.0))
    clock.advance(8)
    newer = _prediction(1, 2.0)
    cache.put(key, newer)
    clock.advance(8)
    assert cache.get(key) is newer
    assert len(cache) == 1


def test_lru_evicts_the_least_recently_used_not_the_oldest_inserted() -> None:
    cache = PredictionCache(max_entries=3, clock=FakeClock())
    a, b, c, d = (_key(i) for i in (1, 2, 3, 4))
    for key in (a, b, c):
        cache.put(key, _prediction(key.query_hash))
    assert cache.get(a) is not None  # a is now the most recently used; b the least
    cache.put(d, _prediction(4))
    assert b not in cache
    assert all(key in cache for key in (a, c, d))
    cache.put(b, _prediction(2))  # evicts c, the least recently used now
    assert c not in cache
    assert cache.stats().evictions == 2
    assert len(cache) == 3


def test_re_putting_a_key_makes_it_most_recent() -> None:
    cache = PredictionCache(max_entries=2, clock=FakeClock())
    a, b, c = _key(1), _key(2), _key(3)
    cache.put(a, _prediction(1))
    cache.put(b, _prediction(2))
    cache.put(a, _prediction(1, 5.0))
    cache.put(c, _prediction(3))
    assert a in cache
    assert b not in cache


def test_dropping_an_expired_lru_entry_counts_as_expiration() -> None:
    clock = FakeClock()
    cache = PredictionCache(max_entries=1, ttl_s=5.0, clock=clock)
    cache.put(_key(1), _prediction(1))
    clock.advance(6)
    cache.put(_key(2), _prediction(2))
    stats = cache.stats()
    assert (stats.evictions, stats.expirations, stats.size) == (0, 1, 1)


def test_clear_and_discard_keep_the_counters() -> None:
    cache = PredictionCache(clock=FakeClock())
    for i in range(1, 4):
        cache.put(_key(i), _prediction(i))
    assert cache.get(_key(1)) is not None
    assert cache.discard(_key(1)) is True
    assert cache.discard(_key(1)) is False
    assert len(cache) == 2
    cache.clear()
    assert len(cache) == 0
    assert cache.stats() == CacheStats(hits=1, misses=0, evictions=0, expirations=0, size=0)


def test_contains_ignores_other_types_and_does_not_count() -> None:
    cache = PredictionCache(clock=FakeClock())
    cache.put(_key(1), _prediction(1))
    assert 1 not in cache
    assert "x" not in cache
    assert cache.stats().hits == cache.stats().misses == 0


def test_threads_sharing_a_cache_lose_no_count_and_respect_the_bound() -> None:
    cache = PredictionCache(max_entries=50, clock=FakeClock())
    threads_n, rounds, keys_n = 10, 400, 80
    keys = [_key(i) for i in range(1, keys_n + 1)]
    values = {key: _prediction(key.query_hash) for key in keys}
    barrier = threading.Barrier(threads_n)
    wrong: list[object] = []

    def work(offset: int) -> None:
        # Each thread owns 8 keys, so a miss in a thread always leads to an insert.
        own = keys[offset * 8 : offset * 8 + 8]
        barrier.wait()
        for i in range(rounds):
            key = own[(i * 3) % 8]
            hit = cache.get(key)
            if hit is None:
                cache.put(key, values[key])
            elif hit is not values[key]:
                wrong.append(hit)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(threads_n)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    stats = cache.stats()
    assert wrong == []
    assert stats.hits + stats.misses == threads_n * rounds
    assert stats.size == len(cache) == 50
    # Every miss put one entry; every entry beyond the bound was evicted (none expired).
    assert stats.misses - stats.evictions == 50
    assert stats.expirations == 0
