"""The embedded bucket: the workers' batching policy in process, feeding one recognition thread.

The same ``BucketMonitor`` rules and the same ``run_batch`` as a str worker, without a broker:
request threads put their crops in, one thread takes batches out and reads them, so batches never
overlap, exactly like one str worker.
"""

from __future__ import annotations

import threading

from common import metrics
from common.config import Settings
from pipeline.reading import BucketReader, Waiting
from str_service.bucket import (
    BlockingBucket,
    BucketConfig,
    BucketItem,
    BucketMonitor,
    Crop,
    RecognizeFn,
    run_batch,
)

EMBEDDED_QUEUE = "embedded"  # the queue label of the in-process bucket's depth


class LocalBucketReader(BucketReader):
    """Reads crops through an in-process bucket; ``recognize`` runs on this reader's thread."""

    def __init__(self, settings: Settings, recognize: RecognizeFn) -> None:
        super().__init__()
        self._bucket = BlockingBucket(BucketMonitor(BucketConfig.from_settings(settings)))
        self._recognize = recognize
        # No broker here, so the queue-depth metric reports the crops waiting in this bucket.
        self._depth = metrics.QUEUE_DEPTH.labels(EMBEDDED_QUEUE)
        self._thread = threading.Thread(target=self._run, name="embedded-str", daemon=True)
        self._thread.start()

    def queued_crops(self) -> int:
        """Crops waiting in the in-process bucket (the embedded twin of the crops queue)."""
        return len(self._bucket)

    def close(self) -> None:
        self._bucket.close()
        self._thread.join(timeout=30)

    def _send(self, request_id: str, waiting: Waiting) -> None:
        self._bucket.put_many(
            BucketItem(owner=request_id, payload=Crop(index, crop))
            for index, crop in enumerate(waiting.crops)
        )
        self._depth.set(len(self._bucket))

    def _forget(self, request_id: str) -> None:
        self._bucket.discard(request_id)
        self._depth.set(len(self._bucket))

    def _run(self) -> None:
        while True:
            batch = self._bucket.get_batch(timeout=None)
            if batch is None:
                if self._bucket.closed:
                    return
                continue
            self._depth.set(len(self._bucket))
            for owner, readings in run_batch(batch, self._recognize).items():
                self._deliver(str(owner), readings)
