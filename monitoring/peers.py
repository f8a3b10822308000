"""The systems the compare tool puts side by side, each as "image bytes in, label-shaped dict out".

``ocr`` is this project's engine in process with default settings (the embedded pipeline's
batched path, what ``/pipeline`` runs), ``ocr-official`` the same with OCR_PROFILE=official
(the official code's behaviour: the "before" of every lever); ``server`` the same request
against a running pipeline (``--url``); ``tesseract`` Debian's tesseract-ocr through
pytesseract; ``rapidocr`` RapidOCR on ONNX Runtime (PP-OCR). The peers are optional: ``make
peers`` installs them, and a system whose package is missing is reported as not installed
rather than failing the run.
"""

from __future__ import annotations

import io
import os
import shutil
from collections.abc import Callable
from typing import Any

import numpy as np

Answer = dict[str, Any]  # {"words": [...]} or {"lines": [...]}, items {"text", "quad"}
System = Callable[[bytes], Answer]

SYSTEMS = ("ocr", "ocr-official", "server", "tesseract", "rapidocr")


class NotInstalled(RuntimeError):
    """A peer whose package or binary this machine lacks (``make peers`` installs them)."""


def build_system(name: str, threads: int, url: str | None = None) -> System:
    """The named system, loaded and ready to read images with ``threads`` CPU threads."""
    if name == "ocr":
        return _engine(threads)
    if name == "ocr-official":
        return _engine(threads, "official")
    if name == "server":
        if not url:
            raise ValueError("the server system needs --url")
        return _server(url)
    if name == "tesseract":
        return _tesseract(threads)
    if name == "rapidocr":
        return _rapidocr(threads)
    raise ValueError(f"unknown system {name!r}; one of {SYSTEMS}")


def _engine(threads: int, profile: str | None = None) -> System:
    from common.config import Settings
    from pipeline.embedded import embedded_engine

    settings = Settings.from_env().with_overrides(ocr_threads=threads)
    if profile:
        settings = settings.with_overrides(ocr_profile=profile)
    engine = embedded_engine(settings)

    def read(blob: bytes) -> Answer:
        return engine.pipeline.ocr_batched(blob).page.export()

    return read


def _server(url: str) -> System:
    import requests

    endpoint = url.rstrip("/") + "/pipeline"
    session = requests.Session()

    def read(blob: bytes) -> Answer:
        response = session.post(endpoint, files={"image": ("image", blob)}, timeout=300)
        response.raise_for_status()
        return response.json()

    return read


def _tesseract(threads: int) -> System:
    try:
        import pytesseract
        from PIL import Image
    except ImportError as error:
        raise NotInstalled("pytesseract is not installed (make peers)") from error
    if shutil.which("tesseract") is None:
        raise NotInstalled("the tesseract binary is not installed (apt-get install tesseract-ocr)")
    os.environ["OMP_THREAD_LIMIT"] = str(threads)  # tesseract's own OpenMP threads

    def read(blob: bytes) -> Answer:
        image = Image.open(io.BytesIO(blob)).convert("RGB")
        data = pytesseract.image_to_data(image, output_type=pytesseract.Output.DICT)
        words = []
        for level, text, conf, left, top, width, height in zip(
            data["level"],
            data["text"],
            data["conf"],
            data["left"],
            data["top"],
            data["width"],
            data["height"],
            strict=True,
        ):
            if level != 5 or not str(text).strip():
                continue
            x0, y0, x1, y1 = left, top, left + width, top + height
            quad = [[x0, y0], [x1, y0], [x1, y1], [x0, y1]]
            words.append({"text": str(text), "quad": quad, "score": float(conf) / 100.0})
        return {"words": words}

    return read


def _rapidocr(threads: int) -> System:
    try:
        from rapidocr_onnxruntime import RapidOCR
    except ImportError as error:
        raise NotInstalled("rapidocr_onnxruntime is not installed (make peers)") from error
    import cv2

    engine = RapidOCR(intra_op_num_threads=threads, inter_op_num_threads=1)

    def read(blob: bytes) -> Answer:
        image = cv2.imdecode(np.frombuffer(blob, np.uint8), cv2.IMREAD_COLOR)
        result, _ = engine(image)
        lines = [
            {"text": text, "quad": [[float(x), float(y)] for x, y in quad], "score": float(score)}
            for quad, text, score in (result or [])
        ]
        return {"lines": lines}  # RapidOCR reads text lines, so it is scored against GT lines

    return read
