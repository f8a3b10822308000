"""Model-loading plumbing shared by the two model services: device, threads, checkpoints.

torch is imported inside the functions so that importing common/ stays cheap for services (the
web page, the pipeline in distributed mode) that never load a model.
"""

from __future__ import annotations

import importlib.util
import os
import threading
from collections import OrderedDict, deque
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


def resolve_device(name: str | torch.device = "auto") -> torch.device:
    """'auto' means CUDA when available, else CPU; asking for CUDA without one fails loudly.

    Called in the worker process after fork, never in gunicorn's master (CUDA can't survive fork).
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
    """Set torch's intra-op threads: OCR_THREADS, or the cores divided among gunicorn workers.

    Several workers each using every core oversubscribe the CPU and get slower, not faster.
    """
    import torch

    if threads <= 0:
        workers = max(1, int(os.environ.get("OCR_WORKERS", "1")))
        threads = max(1, (os.cpu_count() or 1) // workers)
    torch.set_num_threads(threads)
    return threads


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
    """

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._waiters: deque[threading.Event] = deque()
        self._held = False

    def acquire(self) -> None:
        with self._mutex:
            if not self._held:
                self._held = True
                return
            turn = threading.Event()
            self._waiters.append(turn)
        turn.wait()  # the releasing thread hands the lock straight to us

    def release(self) -> None:
        with self._mutex:
            if self._waiters:
                self._waiters.popleft().set()
            else:
                self._held = False

    def __enter__(self) -> FairLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
