"""Where models run: device choice and CPU thread count, shared by both model services.

torch is imported inside the functions so that importing common/ stays cheap for services (the
web page, the pipeline in distributed mode) that never load a model.
"""

from __future__ import annotations

import os


def select_device(name: str = "auto") -> str:
    """'cuda' when asked for or available under 'auto', else 'cpu'; fails loudly if cuda is absent.

    Called in the worker process after fork, never in gunicorn's master (CUDA can't survive fork).
    """
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError(f"OCR_DEVICE={name} but torch sees no CUDA device")
    return name


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
