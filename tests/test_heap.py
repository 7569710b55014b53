"""The API process freezes the heap it starts with (core/heap.py)."""

from __future__ import annotations

import gc

from core.heap import freeze_startup_heap


def _walked_by_a_full_collection(obj: object) -> bool:
    # gc.get_objects() lists generations 0-2: what a full collection walks.
    return any(o is obj for o in gc.get_objects())


def test_a_full_collection_no_longer_walks_the_start_up_heap() -> None:
    kept = [{"n": n, "items": [n]} for n in range(50_000)]  # a start-up's worth of objects
    try:
        assert _walked_by_a_full_collection(kept[-1])
        frozen = freeze_startup_heap()
        assert frozen >= 2 * len(kept)
        assert not _walked_by_a_full_collection(kept[-1])
        assert not _walked_by_a_full_collection(kept[0]["items"])
        made_later: list[object] = [[]]
        assert _walked_by_a_full_collection(made_later)  # what requests create still is
    finally:
        gc.unfreeze()
