"""Run our own torch modules through ONNX Runtime on the CPU: about 1.7x torch eager there, and
about 3.7x more for CRAFT in int8.

The ONNX graph is exported at start-up from the module just loaded from the official weights,
in memory (no file to cache, go stale or download): the weights stay the single source, and
the float graph computes the same function (CRAFT's maps agree with torch to about 1e-7).
Given calibration inputs, the graph is quantised to int8 (static, QDQ, per-channel weights,
activation ranges from those inputs, common/calibration.py draws them), which trades a little
accuracy for speed; tests/model/test_onnx_runtime.py states how much. On CUDA the services keep
torch, which is fast there and needs no second GPU runtime.
"""

from __future__ import annotations

import io
import logging
import os
import tempfile
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch

RUNTIMES = ("auto", "torch", "onnx")
OPSET = 17


def choose_runtime(requested: str, device: torch.device) -> str:
    """'torch' or 'onnx' for a model on ``device``: 'auto' is ONNX Runtime on the CPU, torch on
    CUDA; asking for 'onnx' on CUDA keeps torch (the CPU build of ONNX Runtime can't use it)."""
    if requested not in RUNTIMES:
        raise ValueError(f"runtime must be one of {RUNTIMES}, got {requested!r}")
    return "onnx" if requested in ("auto", "onnx") and device.type == "cpu" else "torch"


class OnnxModule:
    """An exported module as a function of numpy arrays; the outputs listed at export."""

    def __init__(
        self,
        module: torch.nn.Module,
        example: Sequence[torch.Tensor],
        *,
        inputs: Sequence[str],
        outputs: Sequence[str],
        dynamic_axes: Mapping[str, Mapping[int, str]],
        threads: int = 0,
        calibration: Sequence[Sequence[np.ndarray]] | None = None,
    ) -> None:
        """Export ``module`` (traced on ``example``); ``calibration``, one tuple of input arrays
        per sample, quantises it to int8."""
        import onnxruntime
        import torch

        buffer = io.BytesIO()
        # The TorchScript exporter is chosen on purpose (see below); its deprecation notice and
        # the tracer's notes on shape checks it freezes are about that choice, not the model.
        with torch.inference_mode(False), torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                module,
                tuple(example),
                buffer,
                input_names=list(inputs),
                output_names=list(outputs),
                dynamic_axes={name: dict(axes) for name, axes in dynamic_axes.items()},
                opset_version=OPSET,
                dynamo=False,  # the TorchScript exporter: no onnxscript, and LSTMs export whole
            )
        graph = buffer.getvalue()
        if calibration is not None:
            graph = quantize_int8(graph, inputs, calibration)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads if threads > 0 else (os.cpu_count() or 1)
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # warnings about unused initialisers are noise here
        # The memory pattern ONNX Runtime plans for each input shape it has seen holds all of a
        # run's activations in one block: CRAFT's peak on a 1280 x 992 page went from 0.49 to
        # 0.65-0.77 GB once planned; without it, 0.49-0.51 GB and no slower (measured).
        options.enable_mem_pattern = False
        self.session = onnxruntime.InferenceSession(
            graph, options, providers=["CPUExecutionProvider"]
        )
        # The arena keeps the largest page's activations (hundreds of MB for CRAFT) unless it
        # is shrunk after each run: 0.7 GB less resident, at most a few % slower (measured).
        self.run_options = onnxruntime.RunOptions()
        self.run_options.add_run_config_entry("memory.enable_memory_arena_shrinkage", "cpu:0")
        self.inputs = tuple(inputs)
        self.output = outputs[0]

    def __call__(self, *arrays: np.ndarray) -> np.ndarray:
        """The first output for these inputs (float32, contiguous)."""
        feed = {
            name: np.ascontiguousarray(array, dtype=np.float32)
            for name, array in zip(self.inputs, arrays, strict=True)
        }
        return self.session.run([self.output], feed, self.run_options)[0]


def quantize_int8(
    graph: bytes, inputs: Sequence[str], samples: Sequence[Sequence[np.ndarray]]
) -> bytes:
    """The graph with int8 weights and activations (QDQ), ranges fitted on ``samples`` by
    min/max. Convolutions and matrix products are quantised; ONNX Runtime leaves the LSTMs in
    float, as static quantisation has no int8 LSTM."""
    # quant_pre_process, which the quantiser recommends with a root-logger warning, measured no
    # faster here and 0.1 GB more at peak, so it is skipped and its reminder muted.
    root = logging.getLogger()
    reminder = _Muted("consider pre-processing")
    root.addFilter(reminder)
    try:
        return _quantize(graph, inputs, samples)
    finally:
        root.removeFilter(reminder)


class _Muted(logging.Filter):
    def __init__(self, phrase: str) -> None:
        super().__init__()
        self.phrase = phrase

    def filter(self, record: logging.LogRecord) -> bool:
        return self.phrase not in record.getMessage()


def _quantize(
    graph: bytes, inputs: Sequence[str], samples: Sequence[Sequence[np.ndarray]]
) -> bytes:
    import onnx
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    class Samples(CalibrationDataReader):
        def __init__(self) -> None:
            self.pending = list(samples)

        def get_next(self) -> dict[str, np.ndarray] | None:
            if not self.pending:
                return None
            arrays = self.pending.pop(0)
            return {
                name: np.ascontiguousarray(array, dtype=np.float32)
                for name, array in zip(inputs, arrays, strict=True)
            }

    with tempfile.TemporaryDirectory(prefix="ocr-int8-") as folder:
        output = Path(folder) / "int8.onnx"
        quantize_static(
            onnx.load_from_string(graph),
            output,
            Samples(),
            quant_format=QuantFormat.QDQ,
            per_channel=True,
            activation_type=QuantType.QUInt8,
            weight_type=QuantType.QInt8,
            calibrate_method=CalibrationMethod.MinMax,
        )
        return output.read_bytes()
