"""The metric networks of the NSD papers' suite, from torchvision classes and local weights only.

Weights are looked for in ``weights_dir`` (``--weights-dir``) and in the torch hub
cache (``$TORCH_HOME/hub/checkpoints``), under the file names torchvision and the
SwAV release use. A network whose file is absent is reported as unavailable with
that file name; nothing is downloaded and no random weights stand in.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


@dataclass
class MetricNetwork:
    """One feature extractor of the suite.

    kind: "twoway" (all-pairs identification, higher is better) or "distance"
    (mean correlation distance, lower is better).
    """

    name: str
    build: Callable[[], torch.nn.Module]       # the torchvision architecture, random weights
    layer: str | None                          # node for create_feature_extractor; None = model output
    input_size: int
    mean: tuple
    std: tuple
    kind: str
    weights_file: str
    hub_id: str = ""

    def features(self, model: torch.nn.Module, images: torch.Tensor, input_size: int | None = None, batch_size: int = 16) -> np.ndarray:
        """images (N, 3, H, W) in [0, 1] -> flattened features (N, F)."""
        size = input_size or self.input_size
        mean = torch.tensor(self.mean).view(1, 3, 1, 1)
        std = torch.tensor(self.std).view(1, 3, 1, 1)
        outs = []
        with torch.no_grad():
            for i in range(0, len(images), batch_size):
                x = torch.nn.functional.interpolate(images[i : i + batch_size].float(), size=(size, size), mode="bilinear", align_corners=False)
                y = model((x - mean) / std)
                if isinstance(y, dict):
                    y = next(iter(y.values()))
                outs.append(y.flatten(1).float().numpy())
        return np.concatenate(outs)


def _alexnet():
    import torchvision

    return torchvision.models.alexnet()


def _inception():
    import torchvision

    return torchvision.models.inception_v3(aux_logits=True, init_weights=False, transform_input=True)  # as torchvision builds it with weights


def _effnet_b1():
    import torchvision

    return torchvision.models.efficientnet_b1()


def _resnet50():
    import torchvision

    return torchvision.models.resnet50()


SUITE = {
    "alexnet2": MetricNetwork("alexnet2", _alexnet, "features.4", 256, IMAGENET_MEAN, IMAGENET_STD, "twoway", "alexnet-owt-7be5be79.pth"),
    "alexnet5": MetricNetwork("alexnet5", _alexnet, "features.11", 256, IMAGENET_MEAN, IMAGENET_STD, "twoway", "alexnet-owt-7be5be79.pth"),
    "inception": MetricNetwork("inception", _inception, "avgpool", 342, IMAGENET_MEAN, IMAGENET_STD, "twoway", "inception_v3_google-0cc3c7bd.pth"),
    "effnet": MetricNetwork("effnet", _effnet_b1, "avgpool", 255, IMAGENET_MEAN, IMAGENET_STD, "distance", "efficientnet_b1-c27df63c.pth"),
    "swav": MetricNetwork("swav", _resnet50, "avgpool", 224, IMAGENET_MEAN, IMAGENET_STD, "distance", "swav_800ep_pretrain.pth.tar"),
}


def weight_search_dirs(weights_dir: str | Path | None = None) -> list[Path]:
    dirs = [Path(weights_dir)] if weights_dir else []
    return dirs + [Path(torch.hub.get_dir()) / "checkpoints"]


def find_weights(filename: str, weights_dir=None) -> Path | None:
    for d in weight_search_dirs(weights_dir):
        if (d / filename).is_file():
            return d / filename
    return None


def load_network(net: MetricNetwork, weights_dir=None, model: torch.nn.Module | None = None) -> torch.nn.Module:
    """The feature extractor with real weights, or ``model`` (tests pass tiny random ones).

    Raises FileNotFoundError naming the file when the weights are absent.
    """
    from torchvision.models.feature_extraction import create_feature_extractor

    if model is None:
        path = find_weights(net.weights_file, weights_dir)
        if path is None:
            raise FileNotFoundError(net.weights_file)
        model = net.build()
        state = torch.load(path, map_location="cpu", weights_only=False if path.suffix == ".tar" else True)
        state = state.get("state_dict", state)
        state = {k.removeprefix("module."): v for k, v in state.items()}
        model.load_state_dict(state, strict=net.name != "swav")  # SwAV's checkpoint has no classifier
    model.eval()
    return create_feature_extractor(model, return_nodes=[net.layer]) if net.layer else model


def unavailable_reason(net: MetricNetwork, weights_dir=None) -> str:
    where = ", ".join(str(d) for d in weight_search_dirs(weights_dir))
    return f"weights file {net.weights_file} not found in {where}; put it there or pass --weights-dir"
