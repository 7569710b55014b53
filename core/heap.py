"""The garbage collector of a long-running server process.

CPython's full collection walks every object the collector tracks. After the imports and the
app's construction an API process holds about 187,000 of them, none of which is ever freed,
and a full collection came every few seconds under a premiere's load: each one held the
event loop for 125-160 ms, which was the whole of the audience benchmark's p99 at 20,000
viewers (docs/playback.md). Freezing the heap once it is built moves those objects out of
the collector's reach for good; later collections walk only what the requests create.
"""

from __future__ import annotations

import gc


def freeze_startup_heap() -> int:
    """Collect what start-up left as garbage, then freeze the rest; the objects frozen."""
    gc.collect()
    gc.freeze()
    return gc.get_freeze_count()
