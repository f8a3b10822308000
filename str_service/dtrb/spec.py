"""The DTRB architecture as data: the four stages, their sizes, and the ``STR_ARCH`` parser."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, fields

TRANSFORMATIONS = ("None", "TPS")
FEATURES = ("VGG", "RCNN", "ResNet")
SEQUENCES = ("None", "BiLSTM")
PREDICTIONS = ("CTC", "Attn")
PREPROCESSES = ("easyocr", "dtrb")


class ModelSpecError(ValueError):
    """A layout or checkpoint that can't be turned into a model; the message says what to set."""


@dataclass(frozen=True)
class ModelSpec:
    """Everything needed to build a DTRB model and feed it.

    ``preprocess`` picks the input pipeline the checkpoint was trained with: ``easyocr`` keeps the
    aspect ratio at height ``imgH`` and pads to a multiple of ``imgH`` (EasyOCR's generation-2
    models), ``dtrb`` stretches every crop to ``imgW`` x ``imgH`` (the official demo with its
    default ``PAD=False``, which is how the published checkpoints were trained). TPS models need a
    fixed input size (their grid buffers depend on it), so they always use ``dtrb``.
    """

    # 1. Transformation: None, or a TPS with this many fiducial points
    transformation: str = "None"
    num_fiducial: int = 20
    # 2. Feature extraction: the backbone and its channels in and out
    feature: str = "VGG"
    input_channel: int = 1
    output_channel: int = 256
    # 3. Sequence modelling: None or a BiLSTM of this width
    sequence: str = "BiLSTM"
    hidden_size: int = 256
    # 4. Prediction: CTC or Attn over this many classes, Attn reading at most this many steps
    prediction: str = "CTC"
    num_class: int = 97
    batch_max_length: int = 25
    # The input: its size, and how crops are brought to it
    imgH: int = 64
    imgW: int = 100
    preprocess: str = "easyocr"

    def __post_init__(self) -> None:
        for value, allowed, what in (
            (self.transformation, TRANSFORMATIONS, "transformation"),
            (self.feature, FEATURES, "feature extraction"),
            (self.sequence, SEQUENCES, "sequence modeling"),
            (self.prediction, PREDICTIONS, "prediction"),
            (self.preprocess, PREPROCESSES, "preprocess"),
        ):
            if value not in allowed:
                raise ModelSpecError(f"unknown {what} {value!r}; expected one of {allowed}")
        if self.transformation == "TPS" and self.preprocess != "dtrb":
            raise ModelSpecError("a TPS model needs a fixed input size: use preprocess=dtrb")
        for name in ("input_channel", "output_channel", "hidden_size", "imgH", "imgW"):
            if getattr(self, name) < 1:
                raise ModelSpecError(f"{name} must be positive")
        if self.num_fiducial < 4 or self.num_fiducial % 2:
            raise ModelSpecError("num_fiducial must be an even number >= 4")
        if self.num_class < 2 or self.batch_max_length < 1:
            raise ModelSpecError("num_class must be >= 2 and batch_max_length >= 1")

    @property
    def name(self) -> str:
        """The official four-stage name, e.g. ``None-VGG-BiLSTM-CTC``."""
        return f"{self.transformation}-{self.feature}-{self.sequence}-{self.prediction}"

    @classmethod
    def from_opts(cls, opts: Mapping[str, object]) -> ModelSpec:
        """Build from the official training options (``opt.Transformation``, ``opt.imgH``...)."""
        mapping = {
            "Transformation": "transformation",
            "FeatureExtraction": "feature",
            "SequenceModeling": "sequence",
            "Prediction": "prediction",
        }
        values = {mapping.get(key, key): value for key, value in opts.items()}
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in values.items() if k in known}
        values.setdefault("preprocess", "dtrb")
        return cls(**values)


_ARCH_RE = re.compile(r"^\s*(None|TPS)-(VGG|RCNN|ResNet)-(None|BiLSTM)-(CTC|Attn)\s*$", re.I)


def parse_arch(arch: str) -> dict[str, object]:
    """Parse ``STR_ARCH``: ``Trans-Feat-Seq-Pred`` plus optional ``:key=value,...`` overrides.

    Example: ``TPS-ResNet-BiLSTM-Attn`` or ``None-VGG-BiLSTM-CTC:imgH=64,preprocess=easyocr``.
    Returns only the fields the string sets, so sizes it leaves out still come from the checkpoint.
    """
    head, _, tail = arch.partition(":")
    match = _ARCH_RE.match(head)
    if not match:
        raise ModelSpecError(
            f"STR_ARCH {arch!r} is not Trans-Feat-Seq-Pred (e.g. None-VGG-BiLSTM-CTC, "
            "TPS-ResNet-BiLSTM-Attn), optionally followed by ':imgH=32,imgW=100,...'"
        )
    canon = {v.lower(): v for v in TRANSFORMATIONS + FEATURES + SEQUENCES + PREDICTIONS}
    out: dict[str, object] = {
        "transformation": canon[match.group(1).lower()],
        "feature": canon[match.group(2).lower()],
        "sequence": canon[match.group(3).lower()],
        "prediction": canon[match.group(4).lower()],
    }
    types = {f.name: f.type for f in fields(ModelSpec)}
    for item in filter(None, (part.strip() for part in tail.split(","))):
        key, sep, value = item.partition("=")
        key, value = key.strip(), value.strip()
        if not sep or key not in types or key in out:
            raise ModelSpecError(
                f"STR_ARCH override {item!r} is not one of key=value with key in "
                f"{sorted(set(types) - set(out))}"
            )
        if types[key] in ("int", int):
            try:
                out[key] = int(value)
            except ValueError:
                raise ModelSpecError(f"STR_ARCH override {key} must be an integer") from None
        else:
            out[key] = value
    return out
