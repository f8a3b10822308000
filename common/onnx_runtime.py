"""Run our own torch modules through ONNX Runtime on the CPU: about 1.7x torch eager there.

The ONNX graph is exported at start-up from the module just loaded from the official weights,
in memory (no file to cache, go stale or download): the weights stay the single source, and
the graph computes the same function (CRAFT's maps agree with torch to about 1e-7). On CUDA the
services keep torch, which is fast there and needs no second GPU runtime.
"""

from __future__ import annotations

import io
import os
from collections.abc import Mapping, Sequence
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
    ) -> None:
        import onnxruntime
        import torch

        buffer = io.BytesIO()
        with torch.inference_mode(False), torch.no_grad():
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
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads if threads > 0 else (os.cpu_count() or 1)
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # warnings about unused initialisers are noise here
        self.session = onnxruntime.InferenceSession(
            buffer.getvalue(), options, providers=["CPUExecutionProvider"]
        )
        self.inputs = tuple(inputs)
        self.output = outputs[0]

    def __call__(self, *arrays: np.ndarray) -> np.ndarray:
        """The first output for these inputs (float32, contiguous)."""
        feed = {
            name: np.ascontiguousarray(array, dtype=np.float32)
            for name, array in zip(self.inputs, arrays, strict=True)
        }
        return self.session.run([self.output], feed)[0]
