"""The four-stage DTRB model: Trans -> Feat -> height pooling -> Seq -> Pred."""

from __future__ import annotations

import torch
from torch import nn

from str_service.dtrb.backbones import (
    RCNN_FeatureExtractor,
    ResNet_FeatureExtractor,
    VGG_FeatureExtractor,
)
from str_service.dtrb.sequence import Attention, BidirectionalLSTM
from str_service.dtrb.spec import ModelSpec
from str_service.dtrb.tps import TPS_SpatialTransformerNetwork


class Model(nn.Module):
    """The configurable four-stage recogniser."""

    def __init__(self, spec: ModelSpec) -> None:
        super().__init__()
        self.spec = spec
        if spec.transformation == "TPS":
            self.Transformation = TPS_SpatialTransformerNetwork(
                spec.num_fiducial, (spec.imgH, spec.imgW), spec.input_channel
            )
        extractor = {
            "VGG": VGG_FeatureExtractor,
            "RCNN": RCNN_FeatureExtractor,
            "ResNet": ResNet_FeatureExtractor,
        }[spec.feature]
        self.FeatureExtraction = extractor(spec.input_channel, spec.output_channel)
        features = spec.output_channel
        if spec.sequence == "BiLSTM":
            self.SequenceModeling = nn.Sequential(
                BidirectionalLSTM(features, spec.hidden_size, spec.hidden_size),
                BidirectionalLSTM(spec.hidden_size, spec.hidden_size, spec.hidden_size),
            )
            features = spec.hidden_size
        if spec.prediction == "CTC":
            self.Prediction = nn.Linear(features, spec.num_class)
        else:
            self.Prediction = Attention(features, spec.hidden_size, spec.num_class)

    def forward(self, image: torch.Tensor, text: torch.Tensor | None = None) -> torch.Tensor:
        """(B, C, H, W) in [-1, 1] -> logits: CTC (B, T, num_class), T = width steps;
        Attn (B, batch_max_length + 1, num_class)."""
        if self.spec.transformation == "TPS":
            image = self.Transformation(image)
        visual = self.FeatureExtraction(image)  # B x C x h x T
        # The official AdaptiveAvgPool2d((None, 1)) over (B, T, C, h) is the mean over h; as a
        # mean it exports to ONNX with a dynamic width (the pool's output size would not).
        visual = visual.permute(0, 3, 1, 2).mean(dim=3)  # B x T x C
        if self.spec.sequence == "BiLSTM":
            visual = self.SequenceModeling(visual)
        if self.spec.prediction == "CTC":
            return self.Prediction(visual.contiguous())
        return self.Prediction(visual.contiguous(), text, self.spec.batch_max_length)


def count_weights(model: nn.Module) -> int:
    """Number of stored weights as the official listings count them: every learnable parameter
    plus the TPS grid constants (``P_hat``, ``inv_delta_C``); BatchNorm running statistics are not
    counted."""
    total = sum(p.numel() for p in model.parameters())
    return total + sum(
        b.numel()
        for name, b in model.named_buffers()
        if name.startswith("Transformation.GridGenerator.")
    )
