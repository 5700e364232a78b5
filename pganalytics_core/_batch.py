"""How a batch's requests run at once: worker threads (MLClient) or tasks (AsyncMLClient).

The one piece of the clients that is not a rename of the other, so it is written twice
here, by hand, and the generator of the sync client (``benchtools/unasync.py``) maps
:func:`amap_bounded` to :func:`map_bounded`. Both return one result per item, in order;
``fn`` must not raise (the clients' ``_predict_outcome`` returns its errors).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

T = TypeVar("T")
R = TypeVar("R")


def map_bounded(fn: Callable[[T], R], items: list[T], max_concurrency: int) -> list[R]:
    """Run ``fn`` on every item from at most ``max_concurrency`` threads, ended on return.

    With one worker or less the items run in the calling thread, in order.
    """
    workers = min(max_concurrency, len(items))
    if workers <= 1:
        return [fn(item) for item in items]
    with ThreadPoolExecutor(workers, thread_name_prefix="mlclient-batch") as pool:
        return list(pool.map(fn, items))


async def amap_bounded(
    fn: Callable[[T], Awaitable[R]], items: list[T], max_concurrency: int
) -> list[R]:
    """Run ``fn`` on every item as tasks of one :class:`asyncio.TaskGroup`, at most
    ``max_concurrency`` at once (a semaphore): none outlives the call, even a cancelled one.
    """
    semaphore = asyncio.Semaphore(max_concurrency)

    async def bounded(item: T) -> R:
        async with semaphore:
            return await fn(item)

    async with asyncio.TaskGroup() as group:
        tasks = [group.create_task(bounded(item)) for item in items]
    return [task.result() for task in tasks]
