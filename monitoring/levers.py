"""What each lever of the fast profile buys, measured one step at a time on a labelled set.

    python -m monitoring.levers                    # the dev set, 2 threads
    python -m monitoring.levers --data DIR --out reports/levers

Starts from the official profile and adds one lever per row, in the order the fast profile
stacks them: reading neighbouring words as one crop, the margin around each crop, ONNX Runtime
(float32), int8, the detection scale chosen from the text's size, boxes for the lone characters
CRAFT misses, readings corrected by the word list and number formats, and the words read with
too little confidence left out. Every row reads every
image through the embedded pipeline's batched path (what ``/pipeline`` runs), after one untimed
warm-up read, and is scored by ``monitoring.scoring`` like the compare tool's rows. Writes
``OUT/levers.md`` and ``OUT/levers.json``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

from common.config import Settings
from common.models import release_large_buffers
from common.profiles import PROFILES, Profile
from monitoring.data import REPO_ROOT, shared_data_dir
from monitoring.scoring import Counts, image_counts, labelled_images
from pipeline.embedded import embedded_engine
from std_service.detector import Detector
from str_service.lexicon import Lexicon
from str_service.recognizer import Recognizer


def lever_steps() -> list[tuple[str, Profile]]:
    """The official profile, then each lever added to the one before, ending at ``fast``."""
    official, fast = PROFILES["official"], PROFILES["fast"]
    segments = replace(official, segment_gap=fast.segment_gap)
    margin = replace(segments, segment_margin=fast.segment_margin)
    onnx = replace(margin, runtime=fast.runtime)
    int8 = replace(onnx, int8=True)
    sized = replace(official.detection, text_height=fast.detection.text_height)
    scale = replace(int8, detection=sized)
    glyphs = replace(scale, detection=fast.detection)
    lexicon = replace(glyphs, lexicon=True)
    doubtful = replace(lexicon, min_word_confidence=fast.min_word_confidence)
    if doubtful != fast:  # a lever added to the profile must get its own row here
        raise AssertionError("the lever steps no longer end at the fast profile")
    return [
        ("official", official),
        ("+ words read in segments", segments),
        ("+ 10 % crop margin", margin),
        ("+ ONNX Runtime float32", onnx),
        ("+ int8", int8),
        ("+ scale from text size", scale),
        ("+ lone characters boxed", glyphs),
        ("+ word list and number formats", lexicon),
        ("+ doubtful words left out (= fast)", doubtful),
    ]


def measure(data: Path, threads: int, out: Path) -> list[dict]:
    images = labelled_images(data)
    release_large_buffers()  # as the services do when they load their models
    settings = Settings.from_env().with_overrides(ocr_threads=threads, ocr_device="cpu")
    detectors: dict[tuple[str, bool], Detector] = {}
    recognizers: dict[tuple[str, bool], Recognizer] = {}
    english = Lexicon.load(settings.str_lexicon)
    rows = []
    for name, profile in lever_steps():
        runtime = (profile.runtime, profile.int8)
        if runtime not in detectors:
            detectors[runtime] = Detector(
                settings.craft_weights,
                device="cpu",
                runtime=profile.runtime,
                threads=threads,
                int8=profile.int8,
            )
        if runtime not in recognizers:
            recognizers[runtime] = Recognizer(
                settings.str_weights,
                settings.str_arch,
                settings.str_charset,
                device="cpu",
                runtime=profile.runtime,
                threads=threads,
                int8=profile.int8,
            )
        recognizer = recognizers[runtime].reading_with(
            english if profile.lexicon else None, profile.min_word_confidence
        )
        engine = embedded_engine(settings, detectors[runtime], recognizer, profile)
        try:
            engine.pipeline.ocr_batched(images[0].path.read_bytes())  # warm-up
            total, subsets, times = Counts(), {}, []
            for image in images:
                blob = image.path.read_bytes()
                started = time.perf_counter()
                page = engine.pipeline.ocr_batched(blob).page
                times.append(time.perf_counter() - started)
                counts = image_counts(image.labels, page.export())
                total = total + counts
                subsets[image.subset] = subsets.get(image.subset, Counts()) + counts
        finally:
            engine.close()
        row = {
            "lever": name,
            "bag_f1": total.bag_f1,
            "subsets": {subset: counts.bag_f1 for subset, counts in sorted(subsets.items())},
            "det_hmean": total.det_hmean,
            "median_s": statistics.median(times),
            "p95_s": float(np.percentile(times, 95)),
        }
        rows.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)
    return rows


def markdown(rows: list[dict]) -> str:
    subsets = sorted({subset for row in rows for subset in row["subsets"]})
    head = ["lever", "bag-F1", *subsets, "det H", "median s", "p95 s"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for row in rows:
        cells = [
            row["lever"],
            f"{row['bag_f1']:.3f}",
            *(f"{row['subsets'].get(subset, 0.0):.3f}" for subset in subsets),
            f"{row['det_hmean']:.3f}",
            f"{row['median_s']:.2f}",
            f"{row['p95_s']:.2f}",
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", type=Path, default=shared_data_dir() / "dev")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--out", type=Path, default=REPO_ROOT / "reports" / "levers")
    args = parser.parse_args(argv)
    if not (args.data / "images").is_dir():
        print(f"no labelled data set at {args.data} (pass --data DIR)", file=sys.stderr)
        return 2
    import torch

    torch.set_num_threads(args.threads)
    rows = measure(args.data, args.threads, args.out)
    table = markdown(rows)
    print(table)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "levers.md").write_text(table)
    (args.out / "levers.json").write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
