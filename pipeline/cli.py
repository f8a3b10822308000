"""Command-line OCR: ``python -m pipeline.cli IMAGE_OR_DIR... [--json] [--url URL]``.

In-process by default (both models load here, no server or broker needed); with ``--url`` it
sends each file to a running pipeline instead. Prints the text of each file, or one JSON answer
per line with ``--json``; a progress bar on stderr tracks many files.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import requests
from tqdm import tqdm

from common.config import Settings
from common.errors import OcrError

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".bmp"})
CHUNK = 8  # files handed to the batched engine together, so their crops share batches

Reader = Callable[[Sequence[Path]], list[dict]]


def find_images(paths: Sequence[str]) -> list[Path]:
    """Files as given, and the image files inside folders (recursively, sorted)."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES))
        elif path.is_file():
            found.append(path)
        else:
            raise FileNotFoundError(f"no such file or folder: {raw}")
    return found


def _in_process_reader(mode: str, params: dict) -> Reader:
    from pipeline.backends import embedded_engine

    engine = embedded_engine(Settings.from_env())
    pipeline = engine.pipeline

    def read(files: Sequence[Path]) -> list[dict]:
        answers = []
        if mode == "batched":
            blobs = [f.read_bytes() for f in files]
            try:
                return pipeline.ocr_many(blobs, params)
            except OcrError:
                pass  # one bad file: fall back to file by file, so the good ones still come out
        for file in files:
            try:
                blob = file.read_bytes()
                answer = (
                    pipeline.ocr_batched(blob, params)
                    if mode == "batched"
                    else pipeline.ocr_sequential(blob, params)
                )
            except OcrError as exc:
                answer = exc.to_dict()
            answers.append(answer)
        return answers

    return read


def _http_reader(url: str, mode: str, params: dict, timeout_s: float) -> Reader:
    endpoint = url.rstrip("/") + ("/pipeline" if mode == "batched" else "/ocr")
    session = requests.Session()

    def read(files: Sequence[Path]) -> list[dict]:
        answers = []
        for file in files:
            try:
                with file.open("rb") as handle:
                    response = session.post(
                        endpoint,
                        files={"image": (file.name, handle)},
                        data=params,
                        timeout=timeout_s,
                    )
                answers.append(response.json())
            except (requests.RequestException, ValueError) as exc:
                answers.append(
                    {"error": {"code": "upstream_error", "message": f"{endpoint}: {exc}"}}
                )
        return answers

    return read


def _chunks(items: Sequence[Path], size: int) -> Iterator[Sequence[Path]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.cli", description=__doc__.split("\n")[0]
    )
    parser.add_argument("paths", nargs="+", help="image files or folders of images")
    parser.add_argument("--json", action="store_true", help="print one JSON answer per line")
    parser.add_argument("--url", help="a running pipeline, e.g. http://127.0.0.1:5000")
    parser.add_argument("--mode", choices=("batched", "sequential"), default="batched")
    parser.add_argument("--canvas-size", type=int, help="CRAFT canvas (default 1280)")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per file (--url)")
    args = parser.parse_args(argv)

    try:
        files = find_images(args.paths)
    except FileNotFoundError as exc:
        parser.error(str(exc))
    if not files:
        parser.error("no images found (png, jpg, tif, webp, bmp)")
    params = {"canvas_size": args.canvas_size} if args.canvas_size else {}
    read = (
        _http_reader(args.url, args.mode, params, args.timeout)
        if args.url
        else _in_process_reader(args.mode, params)
    )
    failures = 0
    with tqdm(total=len(files), unit="file", file=sys.stderr, disable=len(files) < 2) as bar:
        for chunk in _chunks(files, CHUNK):
            for file, answer in zip(chunk, read(chunk), strict=True):
                failures += "error" in answer
                if args.json:
                    print(json.dumps({"file": str(file)} | answer), flush=True)
                elif "error" in answer:
                    print(f"{file}: error: {answer['error']['message']}", file=sys.stderr)
                else:
                    print(f"==> {file} <==\n{answer['text']}\n", flush=True)
                bar.update(1)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
