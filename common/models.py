"""Model-loading plumbing shared by the two model services: device, threads, checkpoints.

torch is imported inside the functions so that importing common/ stays cheap for services (the
web page, the pipeline in distributed mode) that never load a model.
"""

from __future__ import annotations

import ctypes
import importlib.util
import os
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from common.errors import Timeout

if TYPE_CHECKING:
    import torch


def resolve_device(name: str | torch.device = "auto") -> torch.device:
    """'auto' means CUDA when available, else CPU; asking for CUDA without one fails loudly.

    Called once the service process is running, where the model will live.
    """
    import torch

    if isinstance(name, torch.device):
        return name
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"OCR_DEVICE={name} but torch sees no CUDA device")
    return torch.device(name)


def configure_threads(threads: int = 0) -> int:
    """Set torch's intra-op threads: OCR_THREADS, or every core when it is 0.

    Each service is one process, so by default its model gets the whole machine.
    """
    import torch

    if threads <= 0:
        threads = os.cpu_count() or 1
    torch.set_num_threads(threads)
    return threads


# glibc's mallopt parameter number for the mmap threshold (malloc.h: M_MMAP_THRESHOLD).
_M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_BYTES = 1 << 20


def release_large_buffers() -> bool:
    """Have glibc map every allocation of 1 MiB or more on its own, so freeing it returns the
    memory to the system.

    By default glibc raises that threshold each time a large block is freed, after which
    activation buffers (a page's CRAFT maps are hundreds of MB) come from the heap and stay
    resident: the embedded server measured 1.8 GB at peak and still growing after 200 pages;
    with a fixed threshold, 1.3 GB and flat (monitoring/soak.py). Same as MALLOC_MMAP_THRESHOLD_
    in the environment, but it cannot be forgotten. False where the C library is not glibc.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
        return bool(libc.mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES))
    except (OSError, AttributeError):
        return False


def packaged_file(package: str, relative: str, setting: str) -> Path:
    """A file shipped inside an installed package (how the weights arrive; never downloaded).

    Fails with a message naming the setting that points at a file of the user's own instead.
    """
    found = importlib.util.find_spec(package)
    if found is None or not found.submodule_search_locations:
        raise FileNotFoundError(
            f"package {package} is not installed, so {Path(relative).name} can't be found; "
            f"install it (make install) or set {setting} to the file's path"
        )
    path = Path(list(found.submodule_search_locations)[0]) / relative
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing; reinstall {package} or set {setting}")
    return path


def strip_module_prefix(state_dict: Mapping[str, object]) -> OrderedDict:
    """Drop the ``module.`` that ``DataParallel`` puts in front of every saved key."""
    return OrderedDict((key.removeprefix("module."), value) for key, value in state_dict.items())


def read_checkpoint(path: str | Path, setting: str) -> OrderedDict:
    """A checkpoint's tensors, ``module.`` stripped; tensors only, so a .pth can't run code."""
    import torch

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file not found at {path}; check {setting}")
    raw = torch.load(str(path), map_location="cpu", weights_only=True)
    if isinstance(raw, Mapping) and isinstance(raw.get("state_dict"), Mapping):
        raw = raw["state_dict"]
    if not isinstance(raw, Mapping):
        raise ValueError(f"{path} does not hold a state_dict ({setting})")
    return strip_module_prefix(raw)


class FairLock:
    """A lock that hands itself over in arrival order.

    Model forward passes are serialised (threads would only fight over the cores). A plain Lock
    lets a thread that releases and re-acquires in a loop, like the sequential path reading box
    after box, starve every other request; a queue of tickets makes requests take turns.
    A waiter may give up (``acquire(timeout=...)``): it leaves the queue, and a hand-over that
    reached it at that very moment is kept, never lost.
    """

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._waiters: deque[threading.Event] = deque()
        self._held = False

    def acquire(self, timeout: float | None = None) -> bool:
        """Take the lock, waiting at most ``timeout`` seconds (None: forever); True if taken."""
        with self._mutex:
            if not self._held:
                self._held = True
                return True
            if timeout is not None and timeout <= 0:
                return False
            turn = threading.Event()
            self._waiters.append(turn)
        if turn.wait(timeout):  # the releasing thread hands the lock straight to us
            return True
        with self._mutex:
            if turn.is_set():  # handed over between the timeout and here: we hold it
                return True
            self._waiters.remove(turn)
            return False

    def release(self) -> None:
        with self._mutex:
            if self._waiters:
                self._waiters.popleft().set()
            else:
                self._held = False

    @property
    def waiting(self) -> int:
        """Threads queued for the lock (for tests and diagnostics)."""
        with self._mutex:
            return len(self._waiters)

    @contextmanager
    def until(self, deadline: float, what: str = "the model") -> Iterator[None]:
        """Hold the lock, waiting no later than ``deadline`` (epoch seconds); Timeout (504) if
        the deadline passes first, or has passed already, so late work never reaches a model.
        """
        if not self.acquire(timeout=max(0.0, deadline - time.time())):
            raise Timeout(f"the request's deadline passed while it waited for {what}")
        try:
            if time.time() >= deadline:
                raise Timeout(f"the request's deadline passed before it reached {what}")
            yield
        finally:
            self.release()

    def __enter__(self) -> FairLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
