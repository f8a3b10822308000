"""The engine needs no transport: a rendered page OCRed with flask, werkzeug, pika and requests
unimportable.

The engine (detection, recognition, the bucket, layout, orchestration) must be usable as a
library, so it runs here in a fresh interpreter whose import system refuses the transport
packages; any import of them anywhere on the engine's path fails the test.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from tests.conftest import REPO_ROOT

FORBIDDEN = ("flask", "werkzeug", "pika", "requests")

SCRIPT = textwrap.dedent(
    """
    import importlib.abc
    import json
    import sys

    FORBIDDEN = {forbidden!r}

    class Refuse(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in FORBIDDEN:
                raise ImportError(f"the engine imported {{name}}")
            return None

    sys.meta_path.insert(0, Refuse())

    from common.config import Settings
    from common.params import DetectionParams
    from pipeline.embedded import embedded_engine
    from tests.render import png_bytes, render_words

    page = png_bytes(render_words([["HELLO", "world"], ["OCR", "2024", "pipeline"]])[0])
    engine = embedded_engine(Settings(ocr_threads=2))
    params = DetectionParams(canvas_size=640, mag_ratio=1.0)
    try:
        batched = engine.pipeline.ocr_batched(page, params)
        sequential = engine.pipeline.ocr_sequential(page, params)
    finally:
        engine.close()
    loaded = sorted(m for m in sys.modules if m.split(".")[0] in FORBIDDEN)
    print(json.dumps({{
        "batched": batched.page.text,
        "sequential": sequential.page.text,
        "words": [w.text for w in batched.page.words],
        "lines": [list(line.words) for line in batched.page.lines],
        "loaded": loaded,
    }}))
    """
).format(forbidden=FORBIDDEN)


def test_the_engine_reads_a_page_without_any_transport_package() -> None:
    done = subprocess.run(
        [sys.executable, "-c", SCRIPT],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["loaded"] == []
    assert result["batched"] == result["sequential"] == "HELLO world\nOCR 2024 pipeline"
    assert result["words"] == ["HELLO", "world", "OCR", "2024", "pipeline"]
    assert result["lines"] == [[0, 1], [2, 3, 4]]
