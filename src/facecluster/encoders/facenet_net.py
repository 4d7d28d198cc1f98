"""InceptionResnetV1 (FaceNet, 512-D), declared here with facenet-pytorch's layer names, so
that its state dicts (the vggface2 / casia-webface files, ``facecluster train``'s) load as
they are, without importing the facenet_pytorch package.

Importing ``facenet_pytorch`` imports its MTCNN module, which imports torchvision's models,
which import torch's compiler: about 2 s of every ``facecluster scan --model facenet-*``
start spent on code that never runs (docs/performance.md, issue 14). The layers and the
forward pass are facenet-pytorch's (``models/inception_resnet_v1.py``, MIT licence);
``tests/test_facenet_weights.py`` checks the outputs are identical.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


class BasicConv2d(nn.Module):
    def __init__(
        self,
        cin: int,
        cout: int,
        kernel_size: int | tuple[int, int],
        stride: int,
        padding: int | tuple[int, int] = 0,
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel_size, stride=stride, padding=padding, bias=False)
        self.bn = nn.BatchNorm2d(cout, eps=0.001, momentum=0.1, affine=True)
        self.relu = nn.ReLU(inplace=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.bn(self.conv(x)))


def _chain(*layers: tuple) -> nn.Sequential:
    return nn.Sequential(*(BasicConv2d(*args) for args in layers))


class _Residual(nn.Module):
    """Branches concatenated, a 1x1 convolution, scaled and added to the input."""

    def __init__(self, width: int, inner: int, scale: float, relu: bool = True) -> None:
        super().__init__()
        self.scale = scale
        self.conv2d = nn.Conv2d(inner, width, kernel_size=1, stride=1)
        if relu:
            self.relu = nn.ReLU(inplace=False)
        self._relu = relu

    def branches(self, x: torch.Tensor) -> list[torch.Tensor]:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.conv2d(torch.cat(self.branches(x), 1)) * self.scale + x
        return self.relu(out) if self._relu else out


class Block35(_Residual):
    def __init__(self, scale: float = 1.0) -> None:
        super().__init__(256, 96, scale)
        self.branch0 = BasicConv2d(256, 32, 1, 1)
        self.branch1 = _chain((256, 32, 1, 1), (32, 32, 3, 1, 1))
        self.branch2 = _chain((256, 32, 1, 1), (32, 32, 3, 1, 1), (32, 32, 3, 1, 1))

    def branches(self, x: torch.Tensor) -> list[torch.Tensor]:
        return [self.branch0(x), self.branch1(x), self.branch2(x)]


class Block17(_Residual):
    def __init__(self, scale: float = 1.0) -> None:
        super().__init__(896, 256, scale)
        self.branch0 = BasicConv2d(896, 128, 1, 1)
        self.branch1 = _chain(
            (896, 128, 1, 1), (128, 128, (1, 7), 1, (0, 3)), (128, 128, (7, 1), 1, (3, 0))
        )

    def branches(self, x: torch.Tensor) -> list[torch.Tensor]:
        return [self.branch0(x), self.branch1(x)]


class Block8(_Residual):
    def __init__(self, scale: float = 1.0, relu: bool = True) -> None:
        super().__init__(1792, 384, scale, relu)
        self.branch0 = BasicConv2d(1792, 192, 1, 1)
        self.branch1 = _chain(
            (1792, 192, 1, 1), (192, 192, (1, 3), 1, (0, 1)), (192, 192, (3, 1), 1, (1, 0))
        )

    def branches(self, x: torch.Tensor) -> list[torch.Tensor]:
        return [self.branch0(x), self.branch1(x)]


class Mixed6a(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.branch0 = BasicConv2d(256, 384, 3, 2)
        self.branch1 = _chain((256, 192, 1, 1), (192, 192, 3, 1, 1), (192, 256, 3, 2))
        self.branch2 = nn.MaxPool2d(3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat((self.branch0(x), self.branch1(x), self.branch2(x)), 1)


class Mixed7a(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.branch0 = _chain((896, 256, 1, 1), (256, 384, 3, 2))
        self.branch1 = _chain((896, 256, 1, 1), (256, 256, 3, 2))
        self.branch2 = _chain((896, 256, 1, 1), (256, 256, 3, 1, 1), (256, 256, 3, 2))
        self.branch3 = nn.MaxPool2d(3, stride=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        branches = (self.branch0, self.branch1, self.branch2, self.branch3)
        return torch.cat([b(x) for b in branches], 1)


class InceptionResnetV1(nn.Module):
    """facenet-pytorch's ``InceptionResnetV1(pretrained=None, classify=False)``: L2-normalised
    512-D embeddings of 160 px chips. Weights come from ``load_state_dict``."""

    def __init__(self, dropout_prob: float = 0.6) -> None:
        super().__init__()
        self.conv2d_1a = BasicConv2d(3, 32, 3, 2)
        self.conv2d_2a = BasicConv2d(32, 32, 3, 1)
        self.conv2d_2b = BasicConv2d(32, 64, 3, 1, 1)
        self.maxpool_3a = nn.MaxPool2d(3, stride=2)
        self.conv2d_3b = BasicConv2d(64, 80, 1, 1)
        self.conv2d_4a = BasicConv2d(80, 192, 3, 1)
        self.conv2d_4b = BasicConv2d(192, 256, 3, 2)
        self.repeat_1 = nn.Sequential(*(Block35(scale=0.17) for _ in range(5)))
        self.mixed_6a = Mixed6a()
        self.repeat_2 = nn.Sequential(*(Block17(scale=0.10) for _ in range(10)))
        self.mixed_7a = Mixed7a()
        self.repeat_3 = nn.Sequential(*(Block8(scale=0.20) for _ in range(5)))
        self.block8 = Block8(relu=False)
        self.avgpool_1a = nn.AdaptiveAvgPool2d(1)
        self.dropout = nn.Dropout(dropout_prob)
        self.last_linear = nn.Linear(1792, 512, bias=False)
        self.last_bn = nn.BatchNorm1d(512, eps=0.001, momentum=0.1, affine=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for layer in (
            self.conv2d_1a, self.conv2d_2a, self.conv2d_2b, self.maxpool_3a, self.conv2d_3b,
            self.conv2d_4a, self.conv2d_4b, self.repeat_1, self.mixed_6a, self.repeat_2,
            self.mixed_7a, self.repeat_3, self.block8, self.avgpool_1a,
        ):  # fmt: skip
            x = layer(x)
        x = self.last_bn(self.last_linear(self.dropout(x).view(x.shape[0], -1)))
        return F.normalize(x, p=2, dim=1)
