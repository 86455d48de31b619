"""Gradient-weighted maps from pytorch-grad-cam: Grad-CAM, Grad-CAM++ and Layer-CAM.

The three read the same two things, the layer's activations and the gradient of a class score
with respect to them, and differ only in how they weigh them. So they share one forward pass
per batch and one backward pass per class slot (:func:`gradient_maps`), and each applies the
library's own weighting (``get_cam_image``) and scaling to those arrays, exactly as the
library's ``forward`` would after its own passes. The backward pass reaches only the layers
after the one read (``torch.autograd.grad`` with respect to its output), not the whole body.

The library's pitfalls are handled here once: it switches the model to eval and never back
(we restore the mode), its constructor hooks the model (we release the hooks at once: the
arrays come from our pass), and it resizes maps to the input with its own pixel grid (we keep
the layer's resolution and resample like every other map, each cell on its receptive field's
centre). Transformers' tokens become patch grids by the model's layout
(:mod:`cam_core.methods.tokens`), handed to the library as its ``reshape_transform``.
"""

from __future__ import annotations

from collections.abc import Sequence
from importlib.metadata import version
from typing import Any

import numpy as np
import torch
from torch import nn

from cam_core.errors import MethodError
from cam_core.methods.base import ExplanationMethod, resolve_layer, training_mode_kept
from cam_core.methods.layout import fast_layout
from cam_core.methods.tokens import as_feature_maps, reshape_for, token_layout

__all__ = [
    "GRAD_CAM_LIBRARY",
    "GradCam",
    "GradCamPlusPlus",
    "GradientMethod",
    "LayerCam",
    "LibraryMethod",
    "all_slots",
    "gradient_maps",
]

GRAD_CAM_LIBRARY = f"grad-cam=={version('grad-cam')}"


class _AtLayerResolution:
    """Mixed into a library class: maps stay at the layer's resolution (no cv2 resize)."""

    def get_target_width_height(self, input_tensor: torch.Tensor) -> None:
        return None


def _at_layer_resolution(cls: type[Any]) -> type[Any]:
    return type(cls.__name__, (_AtLayerResolution, cls), {})


def all_slots(n_images: int, n_classes: int, device: torch.device) -> torch.Tensor:
    """``(N, K)`` slot classes when every class is explained: slot ``k`` is class ``k``."""
    return torch.arange(n_classes, device=device).expand(n_images, n_classes)


class LibraryMethod(ExplanationMethod):
    """A pytorch-grad-cam method.

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
        return _at_layer_resolution(self._library_class())(
            model=net, target_layers=[target], reshape_transform=reshape_for(net)
        )


class GradientMethod(LibraryMethod):
    """A library method that weighs the layer's activations by the gradients of one class score:
    computed with the others of its kind from shared passes (:func:`gradient_maps`)."""

    def explain(
        self,
        net: nn.Module,
        images: torch.Tensor,
        layer: str,
        classes: torch.Tensor | None = None,
    ) -> torch.Tensor:
        return gradient_maps((self,), net, images, layer, classes)[self.name]

    def weigh(
        self,
        extractor: Any,
        images: torch.Tensor,
        target: nn.Module,
        activations: np.ndarray,
        gradients: np.ndarray,
    ) -> np.ndarray:
        """The library's map from given arrays: its weighting, ReLU, then min-max scaling
        (what its ``compute_cam_per_layer`` and ``aggregate_multi_layers`` do for one layer).

        Args:
            extractor: the library object (:meth:`_extractor`), hooks released.
            images: the batch ``(N, 3, S, S)``.
            target: the layer read.
            activations: ``(N, C, h, w)`` its output.
            gradients: ``(N, C, h, w)`` of the class score of each image with respect to it.

        Returns:
            ``(N, h, w)`` float32, each map scaled to 0..1.
        """
        from pytorch_grad_cam.utils.image import scale_cam_image

        cam = extractor.get_cam_image(images, target, None, activations, gradients, False)
        scaled = scale_cam_image(np.maximum(cam, 0), None)
        return np.asarray(extractor.aggregate_multi_layers([scaled[:, None, :]]), np.float32)


def gradient_maps(
    methods: Sequence[GradientMethod],
    net: nn.Module,
    images: torch.Tensor,
    layer: str,
    classes: torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """Maps of several gradient methods from one forward pass and one backward pass per slot.

    Args:
        methods: gradient-weighted methods reading ``layer``.
        net: a classifier ``(N, 3, S, S) → (N, K)``, float32.
        images: normalised images ``(N, 3, S, S)``.
        layer: dotted name of the layer read.
        classes: ``(N, S)`` the class of each slot of each image; ``None`` for every class.

    Returns:
        Method name → float32 ``(N, S, h, w)`` on the CPU.
    """
    target = resolve_layer(net, layer)
    device = next(net.parameters()).device
    captured: list[torch.Tensor] = []

    def start_graph(_module: nn.Module, _inputs: Any, output: torch.Tensor) -> torch.Tensor:
        # The body up to the layer runs without building a graph (no_grad below); from the
        # layer's output on, gradients are recorded, so the backward pass below covers only
        # the layers after it. Grad mode is put back when the no_grad block ends.
        torch.set_grad_enabled(True)
        leaf = output.detach().requires_grad_(True)
        captured.append(leaf)
        return leaf.clone()  # not the leaf itself: a following in-place op (ReLU) may write it

    with torch.inference_mode(False), training_mode_kept(net):
        x = fast_layout(images.detach().to(device, torch.float32))
        handle = target.register_forward_hook(start_graph)
        try:
            with torch.no_grad():
                logits = net(x)
        finally:
            handle.remove()
        if not captured or not logits.requires_grad:
            raise MethodError(
                f"layer {layer!r} is not used on the way to the logits; choose a layer of the body"
            )
        activation = captured[0]
        layout = token_layout(net)
        n_classes = int(logits.shape[1])
        slots = classes.to(device) if classes is not None else all_slots(len(x), n_classes, device)
        extractors = {}
        for method in methods:
            extractors[method.name] = method._extractor(net, target)
            extractors[method.name].activations_and_grads.release()
        # Transformer tokens become a patch grid, as the library's reshape_transform would.
        acts = as_feature_maps(activation.detach(), layout).float().cpu().numpy()
        x_cpu = x.detach().cpu()
        per_slot: dict[str, list[np.ndarray]] = {method.name: [] for method in methods}
        n_slots = slots.shape[1]
        for slot in range(n_slots):
            score = logits.gather(1, slots[:, slot : slot + 1]).sum()
            (grad,) = torch.autograd.grad(score, activation, retain_graph=slot < n_slots - 1)
            grads = as_feature_maps(grad, layout).float().cpu().numpy()
            for method in methods:
                per_slot[method.name].append(
                    method.weigh(extractors[method.name], x_cpu, target, acts, grads)
                )
    return {
        name: torch.from_numpy(np.stack(maps, axis=1).astype(np.float32))
        for name, maps in per_slot.items()
    }


class GradCam(GradientMethod):
    """Grad-CAM (Selvaraju et al., 2017): activations weighted by their mean gradient."""

    name = "gradcam"
    title = "Grad-CAM"
    extractor_name = "GradCAM"


class GradCamPlusPlus(GradientMethod):
    """Grad-CAM++ (Chattopadhay et al., 2018): higher-order gradient weights."""

    name = "gradcampp"
    title = "Grad-CAM++"
    extractor_name = "GradCAMPlusPlus"


class LayerCam(GradientMethod):
    """Layer-CAM (Jiang et al., 2021): element-wise positive gradients times activations."""

    name = "layercam"
    title = "Layer-CAM"
    extractor_name = "LayerCAM"
