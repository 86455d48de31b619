"""Gradient-weighted maps from pytorch-grad-cam: Grad-CAM, Grad-CAM++ and Layer-CAM.

The library is used as it is, with its pitfalls handled here once: it switches the model to
eval and never back (we restore the mode), it needs gradients (we leave inference mode), it
wants one target per image (we pass exactly one per image, one class at a time), its hooks
must be removed (``release()`` in ``finally``: its own ``__exit__`` swallows ``IndexError``),
and it resizes maps to the input with its own pixel grid (we keep the layer's resolution and
resample like every other map, each cell on its receptive field's centre).
"""

from __future__ import annotations

from importlib.metadata import version
from typing import Any

import numpy as np
import torch
from torch import nn

from cam_core.methods.base import ExplanationMethod, resolve_layer, training_mode_kept

__all__ = ["GRAD_CAM_LIBRARY", "GradCam", "GradCamPlusPlus", "LayerCam", "LibraryMethod"]

GRAD_CAM_LIBRARY = f"grad-cam=={version('grad-cam')}"


class _AtLayerResolution:
    """Mixed into a library class: maps stay at the layer's resolution (no cv2 resize)."""

    def get_target_width_height(self, input_tensor: torch.Tensor) -> None:
        return None


def _at_layer_resolution(cls: type[Any]) -> type[Any]:
    return type(cls.__name__, (_AtLayerResolution, cls), {})


class LibraryMethod(ExplanationMethod):
    """A pytorch-grad-cam method run for every class of a batch (one pass per class).

    Subclasses name the library's class in ``extractor_name`` (imported on first use: the
    library pulls in OpenCV, SciPy, scikit-learn and matplotlib, some 350 MB that a dashboard
    showing stored maps never needs) or give the class itself in ``extractor_class``.
    """

    library = GRAD_CAM_LIBRARY
    extractor_name: str = ""
    extractor_class: type[Any] | None = None

    def _library_class(self) -> type[Any]:
        if self.extractor_class is not None:
            return self.extractor_class
        import pytorch_grad_cam

        return getattr(pytorch_grad_cam, self.extractor_name)

    def _extractor(self, net: nn.Module, target: nn.Module) -> Any:
        return _at_layer_resolution(self._library_class())(model=net, target_layers=[target])

    def explain(self, net: nn.Module, images: torch.Tensor, layer: str) -> torch.Tensor:
        from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

        target = resolve_layer(net, layer)
        device = next(net.parameters()).device
        # Gradients are needed even when a caller runs under inference_mode or no_grad, and
        # the input must be a normal (not an inference) tensor.
        with torch.inference_mode(False), torch.enable_grad(), training_mode_kept(net):
            x = images.detach().clone().to(device, torch.float32)
            n_classes = int(net(x[:1]).shape[1])
            extractor = self._extractor(net, target)
            try:
                per_class = [
                    extractor(input_tensor=x, targets=[ClassifierOutputTarget(k)] * len(x))
                    for k in range(n_classes)
                ]
            finally:
                extractor.activations_and_grads.release()
        maps = np.stack(per_class, axis=1).astype(np.float32)
        return torch.from_numpy(maps)


class GradCam(LibraryMethod):
    """Grad-CAM (Selvaraju et al., 2017): activations weighted by their mean gradient."""

    name = "gradcam"
    title = "Grad-CAM"
    extractor_name = "GradCAM"


class GradCamPlusPlus(LibraryMethod):
    """Grad-CAM++ (Chattopadhay et al., 2018): higher-order gradient weights."""

    name = "gradcampp"
    title = "Grad-CAM++"
    extractor_name = "GradCAMPlusPlus"


class LayerCam(LibraryMethod):
    """Layer-CAM (Jiang et al., 2021): element-wise positive gradients times activations."""

    name = "layercam"
    title = "Layer-CAM"
    extractor_name = "LayerCAM"
