"""Command-line OCR: python -m pipeline.cli FILE_OR_DIR... [--json] [--url URL] [--out DIR].

Reads images, PDFs and multi-page TIFFs; ``--job`` submits them to a running pipeline as one job
instead and follows it (pipeline/job_client.py). In-process by default (both models load here,
no server or broker needed); with ``--url`` it sends each file to a running pipeline instead.
Prints the text of each file (a document's page by page), or one JSON answer per line with
``--json``; with ``--out DIR`` it writes one file per input there instead, in ``--format``
(json, txt, hocr, or pdf: a searchable PDF). A progress bar on stderr counts pages: a file's
pages are added as soon as that file is done (a document's pages are read together, so that
their crops share batches).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

import requests
from tqdm import tqdm

from common.config import Settings
from common.documents import DocumentLimits, open_document, page_count
from common.errors import OcrError
from common.exports import FORMATS, export_document
from common.results import pages_from_export

INPUT_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".tif", ".tiff", ".webp", ".bmp", ".pdf"})
# Files in flight at once on the batched path: one is detected while the crops of the others
# wait in the bucket, so their crops share batches. Four is the servers' OCR_MAX_INFLIGHT default.
IN_FLIGHT = 4

BUSY_RETRIES = 5

ReadOne = Callable[[Path], dict]
Emit = Callable[[Path, dict], None]


def find_inputs(paths: Sequence[str]) -> list[Path]:
    """Files as given, and the image and PDF files inside folders (recursively, sorted)."""
    found: list[Path] = []
    for raw in paths:
        path = Path(raw)
        if path.is_dir():
            found.extend(sorted(p for p in path.rglob("*") if p.suffix.lower() in INPUT_SUFFIXES))
        elif path.is_file():
            found.append(path)
        else:
            raise FileNotFoundError(f"no such file or folder: {raw}")
    return found


def _in_process_reader(mode: str, params: dict) -> ReadOne:
    from common.params import DetectionParams, parse_fields
    from pipeline.embedded import embedded_engine

    settings = Settings.from_env()
    pipeline = embedded_engine(settings).pipeline
    detection = parse_fields(DetectionParams, params, settings.profile.detection)

    def read(file: Path) -> dict:
        try:
            document = pipeline.open(file.read_bytes())
            # The model takes the files in flight in turns, so a file may wait for the others
            # before its own work starts: its budget (per page) covers theirs too.
            deadline = time.time() + settings.ocr_timeout_s * IN_FLIGHT * len(document.pages)
            if mode == "batched":
                return pipeline.ocr_batched(document, detection, deadline).export()
            return pipeline.ocr_sequential(document, detection, deadline).export()
        except OcrError as exc:
            return exc.to_dict()

    return read


def _http_reader(url: str, mode: str, params: dict, timeout_s: float) -> ReadOne:
    endpoint = url.rstrip("/") + ("/pipeline" if mode == "batched" else "/ocr")

    def read(file: Path) -> dict:
        # A busy server answers 503 with Retry-After at once; wait as it says, a few times.
        for attempt in range(BUSY_RETRIES + 1):
            try:
                with file.open("rb") as handle:
                    response = requests.post(
                        endpoint,
                        files={"image": (file.name, handle)},
                        data=params,
                        timeout=timeout_s,
                    )
                answer = response.json()
            except (requests.RequestException, ValueError) as exc:
                return {"error": {"code": "upstream_error", "message": f"{endpoint}: {exc}"}}
            if response.status_code != 503 or attempt == BUSY_RETRIES:
                return answer
            time.sleep(_retry_after_s(response.headers.get("Retry-After")))
        return answer

    return read


def _retry_after_s(header: str | None) -> float:
    """Seconds a 503's Retry-After asks for, within 1..30 (a missing or odd value means 1)."""
    try:
        return min(30.0, max(1.0, float(header or 1)))
    except ValueError:
        return 1.0


def read_files(
    files: Sequence[Path],
    read: ReadOne,
    emit: Emit,
    progress: Callable[[Path], None],
    in_flight: int = IN_FLIGHT,
) -> int:
    """Read every file, ``in_flight`` at a time; returns how many failed.

    ``progress`` is called once per file as soon as that file is done (completion order), so a
    bar moves file by file; ``emit`` gets the answers in input order, each as soon as every file
    before it is done too, so the output reads like the command line.
    """
    answers: dict[int, dict] = {}
    next_out = failures = 0
    with ThreadPoolExecutor(max_workers=max(1, in_flight)) as pool:
        futures = {pool.submit(read, file): index for index, file in enumerate(files)}
        for future in as_completed(futures):
            index = futures[future]
            answers[index] = future.result()
            progress(files[index])
            while next_out in answers:
                answer = answers.pop(next_out)
                failures += "error" in answer
                emit(files[next_out], answer)
                next_out += 1
    return failures


def _printer(as_json: bool) -> Emit:
    def emit(file: Path, answer: dict) -> None:
        if as_json:
            print(json.dumps({"file": str(file)} | answer), flush=True)
        elif "error" in answer:
            print(f"{file}: error: {answer['error']['message']}", file=sys.stderr)
        elif "pages" in answer:
            for page in answer["pages"]:
                print(f"==> {file} (page {page['page']}) <==\n{page['text']}\n", flush=True)
        else:
            print(f"==> {file} <==\n{answer['text']}\n", flush=True)

    return emit


def _writer(folder: Path, fmt: str, limits: DocumentLimits) -> Emit:
    """Write each answer to ``folder``/<input name>.<format>; errors go to stderr. The PDF's
    page images are the input's pages, opened again here as the server opened them."""
    folder.mkdir(parents=True, exist_ok=True)

    def emit(file: Path, answer: dict) -> None:
        if "error" in answer:
            print(f"{file}: error: {answer['error']['message']}", file=sys.stderr)
            return
        target = folder / f"{file.stem}.{fmt}"
        if fmt == "json":
            target.write_text(json.dumps(answer), encoding="utf-8")
            return
        pages = pages_from_export(answer)
        body = export_document(fmt, pages, lambda: open_document(file.read_bytes(), limits).pages)
        if isinstance(body, bytes):
            target.write_bytes(body)
        else:
            target.write_text(body, encoding="utf-8")

    return emit


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pipeline.cli",
        description="Read the text in images, in process or through a running pipeline.",
    )
    parser.add_argument("paths", nargs="+", help="images, PDFs, or folders of them")
    parser.add_argument("--json", action="store_true", help="print one JSON answer per line")
    parser.add_argument("--url", help="a running pipeline, e.g. http://127.0.0.1:5000")
    parser.add_argument("--mode", choices=("batched", "sequential"), default="batched")
    parser.add_argument("--canvas-size", type=int, help="CRAFT canvas (default 1280)")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds per file (--url)")
    parser.add_argument("--out", type=Path, help="write one file per input into this folder")
    parser.add_argument(
        "--format", choices=FORMATS, default="txt", help="what --out writes (default txt)"
    )
    parser.add_argument(
        "--job",
        action="store_true",
        help="with --url: submit the files as one job (POST /jobs), follow it, fetch its result",
    )
    parser.add_argument("--key", help="--job's Idempotency-Key: the same key submits once")
    args = parser.parse_args(argv)
    if args.format != "txt" and args.out is None:
        parser.error("--format needs --out DIR (or use --json to print JSON)")
    if args.job and not args.url:
        parser.error("--job needs --url (a running pipeline keeps the job)")

    try:
        files = find_inputs(args.paths)
    except FileNotFoundError as exc:
        parser.error(str(exc))
    if not files:
        parser.error("no images or PDFs found (png, jpg, tif, webp, bmp, pdf)")
    params = {"canvas_size": args.canvas_size} if args.canvas_size else {}
    if args.job:
        from pipeline.job_client import run_job

        fmt = "json" if args.json and args.out is None else args.format
        return run_job(args.url, files, params, args.out, fmt, args.timeout, args.key)
    read = (
        _http_reader(args.url, args.mode, params, args.timeout)
        if args.url
        else _in_process_reader(args.mode, params)
    )
    in_flight = IN_FLIGHT if args.mode == "batched" else 1
    pages = {file: page_count(file.read_bytes()) for file in files}
    total = sum(pages.values())
    with tqdm(total=total, unit="page", file=sys.stderr, disable=total < 2) as bar:
        emit = (
            _writer(args.out, args.format, Settings.from_env().document_limits)
            if args.out
            else _printer(args.json)
        )
        failures = read_files(files, read, emit, lambda file: bar.update(pages[file]), in_flight)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
