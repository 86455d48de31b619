"""Score-CAM (Wang et al., 2020) on pytorch-grad-cam, with forward passes shared by classes.

The library scores every channel once per *target*, so K classes cost K times the forward
passes, and it builds the masked inputs of a whole batch at once (``N × C`` images: 20 GB for
64 ResNet images at 224 px). Here the channel scores of every class come from one pass per
image, in chunks of :attr:`ScoreCam.channel_batch` masked images; the weighting (softmax over
channels of the class logit) and everything around it stay the library's.
"""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import torch
from torch import nn

from cam_core.methods.base import resolve_layer, training_mode_kept
from cam_core.methods.gradient import LibraryMethod, _AtLayerResolution, all_slots
from cam_core.methods.layout import fast_layout
from cam_core.methods.tokens import reshape_for

__all__ = ["ScoreCam"]


@functools.cache
def _shared_score_cam() -> type[Any]:
    """The class below, defined on first use (importing the library costs ~350 MB)."""
    from pytorch_grad_cam import ScoreCAM

    class _SharedScoreCAM(_AtLayerResolution, ScoreCAM):
        """pytorch-grad-cam's Score-CAM whose channel scores are computed once for all classes."""

        def __init__(
            self,
            model: nn.Module,
            target_layers: list[nn.Module],
            channel_batch: int,
            reshape_transform: Any = None,
        ):
            super().__init__(model, target_layers, reshape_transform=reshape_transform)
            self.channel_batch = channel_batch
            self._scores: torch.Tensor | None = None

        def get_cam_weights(
            self,
            input_tensor: torch.Tensor,
            _target_layer: nn.Module,
            targets: list[Any],
            activations: np.ndarray,
            _grads: np.ndarray,
        ) -> np.ndarray:
            if self._scores is None:
                self._scores = self._channel_scores(input_tensor, activations)
            classes = torch.tensor([t.category for t in targets])
            chosen = self._scores[torch.arange(len(classes)), :, classes]
            return torch.softmax(chosen, dim=-1).numpy()

        @torch.no_grad()
        def _channel_scores(
            self, input_tensor: torch.Tensor, activations: np.ndarray
        ) -> torch.Tensor:
            """Logits ``(N, C, K)`` of each image masked by each of its upsampled channels."""
            height, width = input_tensor.shape[-2:]
            upsample = nn.UpsamplingBilinear2d(size=(int(height), int(width)))
            # A channel without contrast (often all zero after a ReLU) scales to an all-zero
            # mask: its masked image is black whatever the image, so it is run once per batch.
            blank = self._logits(torch.zeros_like(input_tensor[:1]))[0]
            scores = []
            for image, act in zip(input_tensor, torch.from_numpy(activations), strict=True):
                up = upsample(act[None].to(self.device))[0]
                low = up.flatten(1).min(dim=1).values[:, None, None]
                high = up.flatten(1).max(dim=1).values[:, None, None]
                up = (up - low) / (high - low + 1e-8)
                live = torch.nonzero((high - low).flatten() > 0).flatten()
                row = blank.expand(len(up), -1).clone()
                for start in range(0, len(live), self.channel_batch):
                    chunk = live[start : start + self.channel_batch]
                    row[chunk.cpu()] = self._logits(image[None] * up[chunk, None])
                scores.append(row)
            return torch.stack(scores)

        def _logits(self, batch: torch.Tensor) -> torch.Tensor:
            logits = self.model(fast_layout(batch)).float().cpu()
            # The forward hooks store every masked batch's activations; drop them.
            self.activations_and_grads.activations.clear()
            return logits

    return _SharedScoreCAM


class ScoreCam(LibraryMethod):
    """Score-CAM: channels weighted by the class score of the image masked by each channel.

    Costs one forward pass per channel of the layer per image (512 for a ResNet34 body).
    """

    name = "scorecam"
    title = "Score-CAM"
    costly = True
    channel_batch = 64

    def _extractor(self, net: nn.Module, target: nn.Module) -> Any:
        return _shared_score_cam()(net, [target], self.channel_batch, reshape_for(net))

    def explain(
        self,
        net: nn.Module,
        images: torch.Tensor,
        layer: str,
        classes: torch.Tensor | None = None,
    ) -> torch.Tensor:
        from pytorch_grad_cam.utils.model_targets import ClassifierOutputTarget

        target = resolve_layer(net, layer)
        device = next(net.parameters()).device
        # The library needs gradients enabled (even though Score-CAM uses none) and a normal,
        # not an inference, input tensor, whatever mode the caller runs in.
        with torch.inference_mode(False), torch.enable_grad(), training_mode_kept(net):
            x = images.detach().clone().to(device, torch.float32)
            if classes is None:
                classes = all_slots(len(x), int(net(x[:1]).shape[1]), torch.device("cpu"))
            extractor = self._extractor(net, target)
            try:
                per_slot = [
                    extractor(
                        input_tensor=x,
                        targets=[ClassifierOutputTarget(int(k)) for k in classes[:, slot]],
                    )
                    for slot in range(classes.shape[1])
                ]
            finally:
                extractor.activations_and_grads.release()
        return torch.from_numpy(np.stack(per_slot, axis=1).astype(np.float32))
