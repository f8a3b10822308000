"""Checkpoints: the architecture inferred from a state_dict's keys, strict loading, the defaults."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import torch

from common.models import packaged_file, read_checkpoint, resolve_device, strip_module_prefix
from str_service.charsets import Charset, make_charset
from str_service.dtrb.model import Model
from str_service.dtrb.spec import ModelSpec, ModelSpecError, parse_arch


def _shape(state: Mapping[str, object], key: str) -> tuple[int, ...]:
    value = state[key]
    return tuple(value.shape) if hasattr(value, "shape") else tuple(value)  # tensors or lists


# Each backbone by a key only it has, and the keys of its first and last convolutions (their
# shapes give the input channels and the output channels).
_FEATURE_KEYS = (
    (
        "ResNet",
        "FeatureExtraction.ConvNet.conv0_1.weight",
        "FeatureExtraction.ConvNet.conv0_1.weight",
        "FeatureExtraction.ConvNet.conv4_2.weight",
    ),
    (
        "RCNN",
        "FeatureExtraction.ConvNet.3.wgf_u.weight",
        "FeatureExtraction.ConvNet.0.weight",
        "FeatureExtraction.ConvNet.9.weight",
    ),
    (
        "VGG",
        "FeatureExtraction.ConvNet.18.weight",
        "FeatureExtraction.ConvNet.0.weight",
        "FeatureExtraction.ConvNet.18.weight",
    ),
)


def infer_spec(
    state_dict: Mapping[str, object], arch: str | None = None, **overrides: object
) -> ModelSpec:
    """Work out a checkpoint's layout from its keys and sizes from its shapes.

    Values may be tensors or plain shape lists (so the official key/shape listings work too).
    ``arch`` (``STR_ARCH``) may name the stages and override any field; sizes it leaves out still
    come from the shapes. The input size can't be read from a CNN's weights, so it follows the
    checkpoint family: EasyOCR generation-2 models (None-VGG-*-CTC with output_channel 256) are
    fed height-64 keep-ratio crops; everything else gets the official 32 x 100 stretch. A TPS
    checkpoint's grid buffer holds imgH x imgW; imgH 32 is assumed unless ``arch`` says otherwise.
    """
    state = strip_module_prefix(state_dict)
    keys = set(state)
    has = keys.__contains__
    found: dict[str, object] = {}

    found["transformation"] = (
        "TPS" if any(k.startswith("Transformation.") for k in keys) else "None"
    )
    for name, marker, first, last in _FEATURE_KEYS:
        if has(marker):
            found["feature"] = name
            found["input_channel"] = _shape(state, first)[1]
            found["output_channel"] = _shape(state, last)[0]
            break
    else:
        raise ModelSpecError(
            "checkpoint has no recognisable DTRB FeatureExtraction (VGG, RCNN or ResNet); "
            "is STR_WEIGHTS a DTRB/EasyOCR recognition model?"
        )

    if has("SequenceModeling.0.rnn.weight_hh_l0"):
        found["sequence"] = "BiLSTM"
        found["hidden_size"] = _shape(state, "SequenceModeling.0.rnn.weight_hh_l0")[1]
    else:
        found["sequence"] = "None"

    if has("Prediction.attention_cell.h2h.weight"):
        found["prediction"] = "Attn"
        found["num_class"] = _shape(state, "Prediction.generator.weight")[0]
        found["hidden_size"] = _shape(state, "Prediction.attention_cell.h2h.weight")[0]
    elif has("Prediction.weight"):
        found["prediction"] = "CTC"
        found["num_class"] = _shape(state, "Prediction.weight")[0]
    else:
        raise ModelSpecError("checkpoint has no Prediction layer (CTC Linear or Attn)")

    explicit = parse_arch(arch) if arch else {}
    explicit.update(overrides)
    spec_fields = {**found, **explicit}

    if spec_fields["transformation"] == "TPS":
        fc2_key = "Transformation.LocalizationNetwork.localization_fc2.bias"
        if has(fc2_key) and "num_fiducial" not in explicit:
            spec_fields["num_fiducial"] = _shape(state, fc2_key)[0] // 2
        if has("Transformation.GridGenerator.P_hat"):
            pixels = _shape(state, "Transformation.GridGenerator.P_hat")[0]
            img_h = int(explicit.get("imgH", 32))
            if "imgW" not in explicit:
                if pixels % img_h:
                    raise ModelSpecError(
                        f"TPS grid has {pixels} points, not a multiple of imgH={img_h}; set "
                        "STR_ARCH with ':imgH=...,imgW=...'"
                    )
                spec_fields["imgW"] = pixels // img_h
            spec_fields["imgH"] = img_h
        spec_fields.setdefault("preprocess", "dtrb")
    easyocr_like = (
        spec_fields["transformation"] == "None"
        and spec_fields["feature"] == "VGG"
        and spec_fields["prediction"] == "CTC"
        and spec_fields["output_channel"] == 256
    )
    if easyocr_like:
        spec_fields.setdefault("preprocess", "easyocr")
        spec_fields.setdefault("imgH", 64)
    else:
        spec_fields.setdefault("preprocess", "dtrb")
        spec_fields.setdefault("imgH", 32)
        spec_fields.setdefault("imgW", 100)
    return ModelSpec(**spec_fields)


def load_state_dict_file(path: str | Path) -> OrderedDict:
    """Read a checkpoint's tensors only (``weights_only``: a .pth can't run code on load)."""
    try:
        return read_checkpoint(path, "STR_WEIGHTS")
    except (FileNotFoundError, ValueError) as exc:
        raise ModelSpecError(f"recognition weights: {exc}") from None


def load_model(state: Mapping[str, torch.Tensor], spec: ModelSpec) -> Model:
    """Build ``spec`` and load ``state`` strictly; a mismatch names the missing/unexpected keys."""
    model = Model(spec)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).splitlines()[:6]
        raise ModelSpecError(
            f"checkpoint does not match layout {spec.name} ({'; '.join(first)}); "
            "set STR_ARCH to the checkpoint's layout"
        ) from None
    return model.eval()


DEFAULT_WEIGHTS_PACKAGE = "ocrLangModel4uts"
DEFAULT_WEIGHTS_FILE = "english_g2.pth"


def default_weights_path() -> Path:
    """EasyOCR's english_g2.pth from the ``ocrLangModel4uts`` package (never downloaded)."""
    try:
        return packaged_file(DEFAULT_WEIGHTS_PACKAGE, f"data/{DEFAULT_WEIGHTS_FILE}", "STR_WEIGHTS")
    except FileNotFoundError as exc:
        raise ModelSpecError(str(exc)) from None


@dataclass
class LoadedRecognizer:
    """A ready model with what is needed to feed it and read its output."""

    model: Model
    spec: ModelSpec
    charset: Charset
    device: torch.device
    weights_path: Path


def load_recognizer_model(
    weights_path: str | Path | None = None,
    arch: str | None = None,
    charset: str | None = None,
    device: str | torch.device = "auto",
) -> LoadedRecognizer:
    """Load a DTRB/EasyOCR checkpoint strictly, its layout from ``arch`` or from its keys.

    ``weights_path`` None means the packaged english_g2.pth. ``charset`` (``STR_CHARSET``) is the
    string of the model's characters in class order; None picks the built-in set that fits.
    """
    path = Path(weights_path) if weights_path is not None else default_weights_path()
    state = load_state_dict_file(path)
    spec = infer_spec(state, arch)
    chars = make_charset(spec.num_class, spec.prediction, charset)
    target = resolve_device(device)
    model = load_model(state, spec).to(target)
    return LoadedRecognizer(model=model, spec=spec, charset=chars, device=target, weights_path=path)
