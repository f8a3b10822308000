"""The four-stage DTRB recogniser network (Baek et al., "What is wrong with scene text recognition
model comparisons?", clovaai/deep-text-recognition-benchmark), written for this project.

Trans (None | TPS) -> Feat (VGG | RCNN | ResNet) -> AdaptiveAvgPool -> Seq (None | BiLSTM)
-> Pred (CTC | Attn).

Module attribute names and layer indices reproduce the official ``state_dict`` keys exactly, so the
published checkpoints (saved through ``DataParallel``, hence the ``module.`` prefix) and EasyOCR's
``english_g2.pth`` load with ``strict=True``. Nothing here refers to a global device: every tensor
made during ``forward`` is created on the input's device.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from common.models import packaged_file, read_checkpoint, resolve_device, strip_module_prefix
from str_service.charsets import Charset, make_charset

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


# --------------------------------------------------------------------------------------------
# Transformation: TPS spatial transformer network (RARE)
# --------------------------------------------------------------------------------------------


def _fiducial_points(num_fiducial: int) -> np.ndarray:
    """Target control points C: half along the top edge (y = -1), half along the bottom (y = 1)."""
    half = num_fiducial // 2
    xs = np.linspace(-1.0, 1.0, half)
    top = np.stack([xs, -np.ones(half)], axis=1)
    bottom = np.stack([xs, np.ones(half)], axis=1)
    return np.concatenate([top, bottom], axis=0)


def _tps_kernel(distance: np.ndarray, eps: float = 0.0) -> np.ndarray:
    """Thin-plate radial basis r^2 log r (0 at r = 0)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        out = np.square(distance) * np.log(distance + eps)
    return np.nan_to_num(out, nan=0.0, posinf=0.0, neginf=0.0)


class LocalizationNetwork(nn.Module):
    """Predicts the F source control points C' (in [-1, 1] image coordinates) from the image."""

    def __init__(self, num_fiducial: int, in_channels: int) -> None:
        super().__init__()
        self.num_fiducial = num_fiducial
        layers: list[nn.Module] = []
        channels = [in_channels, 64, 128, 256, 512]
        for i in range(4):
            layers += [
                nn.Conv2d(channels[i], channels[i + 1], 3, 1, 1, bias=False),
                nn.BatchNorm2d(channels[i + 1]),
                nn.ReLU(inplace=True),
            ]
            layers.append(nn.MaxPool2d(2, 2) if i < 3 else nn.AdaptiveAvgPool2d(1))
        self.conv = nn.Sequential(*layers)
        self.localization_fc1 = nn.Sequential(nn.Linear(512, 256), nn.ReLU(inplace=True))
        self.localization_fc2 = nn.Linear(256, num_fiducial * 2)
        # Start as the identity-like rectification of the RARE paper (Fig. 6a): zero weights and
        # a bias holding a gently curved set of points, so training starts from a sane grid.
        half = num_fiducial // 2
        xs = np.linspace(-1.0, 1.0, half)
        top = np.stack([xs, np.linspace(0.0, -1.0, half)], axis=1)
        bottom = np.stack([xs, np.linspace(1.0, 0.0, half)], axis=1)
        with torch.no_grad():
            self.localization_fc2.weight.zero_()
            bias = torch.from_numpy(np.concatenate([top, bottom]).reshape(-1)).float()
            self.localization_fc2.bias.copy_(bias)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        features = self.conv(image).flatten(1)
        points = self.localization_fc2(self.localization_fc1(features))
        return points.view(image.size(0), self.num_fiducial, 2)


class GridGenerator(nn.Module):
    """Maps predicted control points to a sampling grid over the rectified imgH x imgW image.

    ``inv_delta_C`` and ``P_hat`` are buffers (the official checkpoints store them), and their
    shapes depend on imgH x imgW: build the model with the checkpoint's size.
    """

    def __init__(self, num_fiducial: int, out_size: tuple[int, int]) -> None:
        super().__init__()
        self.out_h, self.out_w = out_size
        control = _fiducial_points(num_fiducial)  # F x 2
        n = num_fiducial
        pairwise = np.linalg.norm(control[:, None, :] - control[None, :, :], axis=2)
        np.fill_diagonal(pairwise, 1.0)  # log(1) = 0 keeps the diagonal at zero
        kernel = np.square(pairwise) * np.log(pairwise)
        delta = np.zeros((n + 3, n + 3))
        delta[:n, 0] = 1.0
        delta[:n, 1:3] = control
        delta[:n, 3:] = kernel
        delta[n : n + 2, 3:] = control.T
        delta[n + 2, 3:] = 1.0
        self.register_buffer("inv_delta_C", torch.tensor(np.linalg.inv(delta)).float())

        # Pixel centres of the rectified image in [-1, 1], row-major (y outer, x inner).
        gx = (np.arange(-self.out_w, self.out_w, 2) + 1.0) / self.out_w
        gy = (np.arange(-self.out_h, self.out_h, 2) + 1.0) / self.out_h
        px, py = np.meshgrid(gx, gy)
        points = np.stack([px.reshape(-1), py.reshape(-1)], axis=1)  # n_pix x 2
        dist = np.linalg.norm(points[:, None, :] - control[None, :, :], axis=2)
        rbf = _tps_kernel(dist, eps=1e-6)
        p_hat = np.concatenate([np.ones((points.shape[0], 1)), points, rbf], axis=1)
        self.register_buffer("P_hat", torch.tensor(p_hat).float())

    def forward(self, source_points: torch.Tensor) -> torch.Tensor:
        """(B, F, 2) control points -> (B, imgH, imgW, 2) grid for ``grid_sample``."""
        batch = source_points.size(0)
        padding = source_points.new_zeros(batch, 3, 2)
        extended = torch.cat([source_points, padding], dim=1)  # B x F+3 x 2
        transform = torch.matmul(self.inv_delta_C, extended)  # B x F+3 x 2
        grid = torch.matmul(self.P_hat, transform)  # B x n_pix x 2
        return grid.view(batch, self.out_h, self.out_w, 2)


class TPS_SpatialTransformerNetwork(nn.Module):  # official class name (keys don't depend on it)
    """Rectifies a curved or slanted word to an upright imgH x imgW image before recognition."""

    def __init__(self, num_fiducial: int, size: tuple[int, int], in_channels: int) -> None:
        super().__init__()
        self.size = size
        self.LocalizationNetwork = LocalizationNetwork(num_fiducial, in_channels)
        self.GridGenerator = GridGenerator(num_fiducial, size)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        if tuple(image.shape[-2:]) != tuple(self.size):
            raise ValueError(f"TPS model expects {self.size} inputs, got {tuple(image.shape[-2:])}")
        grid = self.GridGenerator(self.LocalizationNetwork(image))
        return F.grid_sample(image, grid, padding_mode="border", align_corners=True)


# --------------------------------------------------------------------------------------------
# Feature extraction
# --------------------------------------------------------------------------------------------


def _channel_ladder(output_channel: int) -> tuple[int, int, int, int]:
    return output_channel // 8, output_channel // 4, output_channel // 2, output_channel


class VGG_FeatureExtractor(nn.Module):
    """CRNN-style VGG: four poolings in height, two in width; height 32 -> 1, 64 -> 3."""

    def __init__(self, input_channel: int, output_channel: int = 512) -> None:
        super().__init__()
        c1, c2, c3, c4 = _channel_ladder(output_channel)

        def relu() -> nn.Module:
            return nn.ReLU(inplace=True)

        self.ConvNet = nn.Sequential(
            nn.Conv2d(input_channel, c1, 3, 1, 1), relu(), nn.MaxPool2d(2, 2),  # 0-2
            nn.Conv2d(c1, c2, 3, 1, 1), relu(), nn.MaxPool2d(2, 2),  # 3-5
            nn.Conv2d(c2, c3, 3, 1, 1), relu(),  # 6-7
            nn.Conv2d(c3, c3, 3, 1, 1), relu(), nn.MaxPool2d((2, 1), (2, 1)),  # 8-10
            nn.Conv2d(c3, c4, 3, 1, 1, bias=False), nn.BatchNorm2d(c4), relu(),  # 11-13
            nn.Conv2d(c4, c4, 3, 1, 1, bias=False), nn.BatchNorm2d(c4), relu(),  # 14-16
            nn.MaxPool2d((2, 1), (2, 1)),  # 17
            nn.Conv2d(c4, c4, 2, 1, 0), relu(),  # 18-19
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.ConvNet(x)


class GRCL_unit(nn.Module):
    """One recurrent step of a gated recurrent convolution layer."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.BN_gfu = nn.BatchNorm2d(channels)
        self.BN_grx = nn.BatchNorm2d(channels)
        self.BN_fu = nn.BatchNorm2d(channels)
        self.BN_rx = nn.BatchNorm2d(channels)
        self.BN_Gx = nn.BatchNorm2d(channels)

    def forward(
        self, wgf_u: torch.Tensor, wgr_x: torch.Tensor, wf_u: torch.Tensor, wr_x: torch.Tensor
    ) -> torch.Tensor:
        gate = torch.sigmoid(self.BN_gfu(wgf_u) + self.BN_grx(wgr_x))
        return F.relu(self.BN_fu(wf_u) + self.BN_Gx(self.BN_rx(wr_x) * gate))


class GRCL(nn.Module):
    """Gated recurrent convolution layer (Wang & Hu 2017): the feed-forward terms are computed
    once from the input, the recurrent terms are re-applied ``num_iteration`` times."""

    def __init__(self, in_ch: int, out_ch: int, num_iteration: int = 5, kernel: int = 3) -> None:
        super().__init__()
        pad = kernel // 2
        self.wgf_u = nn.Conv2d(in_ch, out_ch, 1, 1, 0, bias=False)
        self.wgr_x = nn.Conv2d(out_ch, out_ch, 1, 1, 0, bias=False)
        self.wf_u = nn.Conv2d(in_ch, out_ch, kernel, 1, pad, bias=False)
        self.wr_x = nn.Conv2d(out_ch, out_ch, kernel, 1, pad, bias=False)
        self.BN_x_init = nn.BatchNorm2d(out_ch)
        self.GRCL = nn.Sequential(*[GRCL_unit(out_ch) for _ in range(num_iteration)])

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        gate_input = self.wgf_u(u)
        feed = self.wf_u(u)
        x = F.relu(self.BN_x_init(feed))
        for unit in self.GRCL:
            x = unit(gate_input, self.wgr_x(x), feed, self.wr_x(x))
        return x


class RCNN_FeatureExtractor(nn.Module):
    """Gated RCNN backbone (the lightest of the three)."""

    def __init__(self, input_channel: int, output_channel: int = 512) -> None:
        super().__init__()
        c1, c2, c3, c4 = _channel_ladder(output_channel)
        self.ConvNet = nn.Sequential(
            nn.Conv2d(input_channel, c1, 3, 1, 1), nn.ReLU(inplace=True), nn.MaxPool2d(2, 2),
            GRCL(c1, c1), nn.MaxPool2d(2, 2),  # 3-4
            GRCL(c1, c2), nn.MaxPool2d(2, (2, 1), (0, 1)),  # 5-6
            GRCL(c2, c3), nn.MaxPool2d(2, (2, 1), (0, 1)),  # 7-8
            nn.Conv2d(c3, c4, 2, 1, 0, bias=False), nn.BatchNorm2d(c4), nn.ReLU(inplace=True),
        )  # fmt: skip

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.ConvNet(x)


class BasicBlock(nn.Module):
    """ResNet basic block: two 3x3 convolutions plus a (projected when needed) shortcut."""

    def __init__(self, in_planes: int, planes: int, downsample: nn.Module | None = None) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = downsample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + shortcut)


class ResNet(nn.Module):
    """The 45-layer ResNet of FAN/DTRB, blocks [1, 2, 5, 3], each stage closed by a 3x3 conv."""

    def __init__(self, input_channel: int, output_channel: int, layers=(1, 2, 5, 3)) -> None:
        super().__init__()
        blocks = [output_channel // 4, output_channel // 2, output_channel, output_channel]
        self._planes = output_channel // 8
        self.conv0_1 = nn.Conv2d(input_channel, output_channel // 16, 3, 1, 1, bias=False)
        self.bn0_1 = nn.BatchNorm2d(output_channel // 16)
        self.conv0_2 = nn.Conv2d(output_channel // 16, self._planes, 3, 1, 1, bias=False)
        self.bn0_2 = nn.BatchNorm2d(self._planes)
        self.relu = nn.ReLU(inplace=True)

        self.maxpool1 = nn.MaxPool2d(2, 2)
        self.layer1 = self._stage(blocks[0], layers[0])
        self.conv1 = nn.Conv2d(blocks[0], blocks[0], 3, 1, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(blocks[0])

        self.maxpool2 = nn.MaxPool2d(2, 2)
        self.layer2 = self._stage(blocks[1], layers[1])
        self.conv2 = nn.Conv2d(blocks[1], blocks[1], 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(blocks[1])

        self.maxpool3 = nn.MaxPool2d(2, (2, 1), (0, 1))
        self.layer3 = self._stage(blocks[2], layers[2])
        self.conv3 = nn.Conv2d(blocks[2], blocks[2], 3, 1, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(blocks[2])

        self.layer4 = self._stage(blocks[3], layers[3])
        self.conv4_1 = nn.Conv2d(blocks[3], blocks[3], 2, (2, 1), (0, 1), bias=False)
        self.bn4_1 = nn.BatchNorm2d(blocks[3])
        self.conv4_2 = nn.Conv2d(blocks[3], blocks[3], 2, 1, 0, bias=False)
        self.bn4_2 = nn.BatchNorm2d(blocks[3])

    def _stage(self, planes: int, count: int) -> nn.Sequential:
        downsample = None
        if self._planes != planes:
            downsample = nn.Sequential(
                nn.Conv2d(self._planes, planes, 1, 1, bias=False), nn.BatchNorm2d(planes)
            )
        blocks = [BasicBlock(self._planes, planes, downsample)]
        self._planes = planes
        blocks += [BasicBlock(planes, planes) for _ in range(1, count)]
        return nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(self.bn0_1(self.conv0_1(x)))
        x = self.relu(self.bn0_2(self.conv0_2(x)))
        x = self.layer1(self.maxpool1(x))
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer2(self.maxpool2(x))
        x = self.relu(self.bn2(self.conv2(x)))
        x = self.layer3(self.maxpool3(x))
        x = self.relu(self.bn3(self.conv3(x)))
        x = self.layer4(x)
        x = self.relu(self.bn4_1(self.conv4_1(x)))
        return self.relu(self.bn4_2(self.conv4_2(x)))


class ResNet_FeatureExtractor(nn.Module):
    def __init__(self, input_channel: int, output_channel: int = 512) -> None:
        super().__init__()
        self.ConvNet = ResNet(input_channel, output_channel)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.ConvNet(x)


# --------------------------------------------------------------------------------------------
# Sequence modeling and prediction
# --------------------------------------------------------------------------------------------


class BidirectionalLSTM(nn.Module):
    def __init__(self, input_size: int, hidden_size: int, output_size: int) -> None:
        super().__init__()
        self.rnn = nn.LSTM(input_size, hidden_size, bidirectional=True, batch_first=True)
        self.linear = nn.Linear(hidden_size * 2, output_size)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, input_size) -> (B, T, output_size)."""
        if x.is_cuda:
            self.rnn.flatten_parameters()  # cuDNN wants contiguous weights (after .to(device))
        recurrent, _ = self.rnn(x)
        return self.linear(recurrent)


class AttentionCell(nn.Module):
    """Bahdanau attention over the encoder steps followed by one LSTM step."""

    def __init__(self, input_size: int, hidden_size: int, num_embeddings: int) -> None:
        super().__init__()
        self.i2h = nn.Linear(input_size, hidden_size, bias=False)
        self.h2h = nn.Linear(hidden_size, hidden_size)
        self.score = nn.Linear(hidden_size, 1, bias=False)
        self.rnn = nn.LSTMCell(input_size + num_embeddings, hidden_size)

    def forward(
        self,
        state: tuple[torch.Tensor, torch.Tensor],
        encoded: torch.Tensor,
        encoded_proj: torch.Tensor,
        prev_onehot: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        query = self.h2h(state[0]).unsqueeze(1)  # B x 1 x hidden
        energy = self.score(torch.tanh(encoded_proj + query))  # B x T x 1
        alpha = torch.softmax(energy, dim=1)
        context = torch.bmm(alpha.transpose(1, 2), encoded).squeeze(1)  # B x input_size
        return self.rnn(torch.cat([context, prev_onehot], dim=1), state)


class Attention(nn.Module):
    """Attention decoder. Class 0 is [GO] (the first input), class 1 is [s] (end of sequence)."""

    def __init__(self, input_size: int, hidden_size: int, num_classes: int) -> None:
        super().__init__()
        self.attention_cell = AttentionCell(input_size, hidden_size, num_classes)
        self.hidden_size = hidden_size
        self.num_classes = num_classes
        self.generator = nn.Linear(hidden_size, num_classes)

    def forward(
        self, encoded: torch.Tensor, text: torch.Tensor | None = None, max_length: int = 25
    ) -> torch.Tensor:
        """Logits (B, max_length + 1, num_classes).

        With ``text`` (B x max_length + 1, teacher forcing, text[:, 0] = [GO]) each step is fed the
        true previous character; without it decoding is greedy, feeding back each step's arg-max.
        """
        batch, device, dtype = encoded.size(0), encoded.device, encoded.dtype
        steps = max_length + 1
        state = (
            torch.zeros(batch, self.hidden_size, device=device, dtype=dtype),
            torch.zeros(batch, self.hidden_size, device=device, dtype=dtype),
        )
        encoded_proj = self.attention_cell.i2h(encoded)  # constant over steps: compute once
        prev = torch.zeros(batch, dtype=torch.long, device=device)  # [GO]
        outputs = []
        for step in range(steps):
            if text is not None:
                prev = text[:, step]
            onehot = torch.zeros(batch, self.num_classes, device=device, dtype=dtype)
            onehot.scatter_(1, prev.unsqueeze(1), 1.0)
            state = self.attention_cell(state, encoded, encoded_proj, onehot)
            logits = self.generator(state[0])
            outputs.append(logits)
            if text is None:
                prev = logits.argmax(dim=1)
        return torch.stack(outputs, dim=1)


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
        self.AdaptiveAvgPool = nn.AdaptiveAvgPool2d((None, 1))  # collapse the height axis
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
        visual = self.AdaptiveAvgPool(visual.permute(0, 3, 1, 2)).squeeze(3)  # B x T x C
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


# --------------------------------------------------------------------------------------------
# Checkpoints
# --------------------------------------------------------------------------------------------


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
