"""The four-stage DTRB recogniser network (Baek et al., "What is wrong with scene text recognition
model comparisons?", clovaai/deep-text-recognition-benchmark), written for this project.

Trans (None | TPS) -> Feat (VGG | RCNN | ResNet) -> height mean -> Seq (None | BiLSTM)
-> Pred (CTC | Attn). Module attribute names and layer indices reproduce the official
``state_dict`` keys exactly, so the published checkpoints (saved through ``DataParallel``, hence
the ``module.`` prefix) and EasyOCR's ``english_g2.pth`` load with ``strict=True``. Nothing here
refers to a global device: every tensor made during ``forward`` is created on the input's device.

spec.py: the architecture as data (ModelSpec) and the STR_ARCH parser; tps.py, backbones.py,
sequence.py: the stages; model.py: the four stages composed; checkpoint.py: the architecture
inferred from a checkpoint's keys, strict loading, and the packaged default weights.
"""

from str_service.dtrb.checkpoint import (
    LoadedRecognizer,
    default_weights_path,
    infer_spec,
    load_model,
    load_recognizer_model,
)
from str_service.dtrb.model import Model, count_weights
from str_service.dtrb.spec import ModelSpec, ModelSpecError, parse_arch
from str_service.dtrb.tps import GridGenerator

__all__ = [
    "GridGenerator",
    "LoadedRecognizer",
    "Model",
    "ModelSpec",
    "ModelSpecError",
    "count_weights",
    "default_weights_path",
    "infer_spec",
    "load_model",
    "load_recognizer_model",
    "parse_arch",
]
