"""Batch planning for ``predict_many``: check, de-duplicate, serve from the cache, merge.

Sans-IO: :mod:`pganalytics_core._batch` runs the requests left to send.
"""

from __future__ import annotations

from collections.abc import Iterable

from pganalytics_core._validation import check_count
from pganalytics_core.cache import PredictionCache
from pganalytics_core.models import PredictionOutcome, PredictionRequest

__all__ = ["check_batch", "merge_outcomes", "plan_batch"]


def check_batch(
    requests: Iterable[PredictionRequest], max_concurrency: int
) -> list[PredictionRequest]:
    """The batch as a list, every item a :class:`PredictionRequest`.

    Raises:
        TypeError, ValueError: a bad item or ``max_concurrency``; nothing is sent.
    """
    check_count("max_concurrency", max_concurrency, 1)
    batch = list(requests)
    for item in batch:
        if not isinstance(item, PredictionRequest):
            raise TypeError(f"requests must be PredictionRequest values, got {type(item).__name__}")
    return batch


def plan_batch(
    batch: list[PredictionRequest], cache: PredictionCache | None
) -> tuple[dict[PredictionRequest, PredictionOutcome], list[PredictionRequest]]:
    """Split a batch into the outcomes the cache serves and the distinct requests to send."""
    outcomes: dict[PredictionRequest, PredictionOutcome] = {}
    todo: list[PredictionRequest] = []
    for request in dict.fromkeys(batch):
        hit = cache.get(request) if cache is not None else None
        if hit is not None:
            outcomes[request] = PredictionOutcome(request, hit)
        else:
            todo.append(request)
    return outcomes, todo


def merge_outcomes(
    batch: list[PredictionRequest],
    outcomes: dict[PredictionRequest, PredictionOutcome],
    results: list[PredictionOutcome | Exception],
) -> list[PredictionOutcome]:
    """Merge a batch's sent results into ``outcomes``; raise the first unexpected error."""
    for result in results:
        if not isinstance(result, PredictionOutcome):
            raise result
        outcomes[result.request] = result
    return [outcomes[request] for request in batch]
