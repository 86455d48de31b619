"""Training throughput of ResNet34 + CAM head: fp32 vs mixed precision + channels_last (CUDA)."""

from __future__ import annotations

import argparse
import time

import torch
import torch.nn.functional as F

from cam_core.modelling.models import CamNet, build_body


def images_per_second(amp: bool, size: int, batch: int, steps: int) -> float:
    device = torch.device("cuda")
    torch.manual_seed(0)
    net = CamNet(build_body("resnet34"), 2).to(device).train()
    if amp:
        net = net.to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3)
    scaler = torch.amp.GradScaler("cuda", enabled=amp)
    x = torch.randn(batch, 3, size, size, device=device)
    if amp:
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 2, (batch,), device=device)

    def step() -> None:
        with torch.autocast("cuda", dtype=torch.float16, enabled=amp):
            loss = F.cross_entropy(net(x), y)
        opt.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(opt)
        scaler.update()

    for _ in range(5):
        step()
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    torch.cuda.synchronize()
    return steps * batch / (time.perf_counter() - start)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--batch", type=int, default=32)
    parser.add_argument("--steps", type=int, default=30)
    args = parser.parse_args()
    fp32 = images_per_second(False, args.size, args.batch, args.steps)
    amp = images_per_second(True, args.size, args.batch, args.steps)
    print(f"| training {args.size} px, batch {args.batch} | images/s |")
    print("| --- | ---: |")
    print(f"| fp32 | {fp32:.1f} |")
    print(f"| mixed precision + channels_last | {amp:.1f} |")
    print(f"| speed-up | {amp / fp32:.2f}x |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
