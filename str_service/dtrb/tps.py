"""Stage 1, transformation: the TPS spatial transformer network (RARE) of the official code."""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


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
