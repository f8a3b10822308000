"""Stage 2, feature extraction: the VGG, RCNN (GRCL) and ResNet backbones of the official code."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


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
