"""Where torch computations run: ``"auto"``, ``"cpu"`` or ``"cuda[:N]"``."""
from __future__ import annotations

from .errors import DeepDoseInputError

#: The choices every front end offers (``cuda`` may also carry an index, e.g. ``cuda:1``).
DEVICE_CHOICES = ("auto", "cpu", "cuda")


def resolve_device(device: str = "auto") -> str:
    """``"auto"`` → ``"cuda"`` when available, else ``"cpu"``; other values are checked."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise DeepDoseInputError("device 'cuda' requested but PyTorch sees no CUDA GPU; use 'cpu' or 'auto'.")
    if device not in ("cpu",) and not device.startswith("cuda"):
        raise DeepDoseInputError(f"Unknown device {device!r}: use auto, cpu or cuda.")
    return device
