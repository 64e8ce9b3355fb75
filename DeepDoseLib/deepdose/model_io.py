"""Deep-dose model files: a TorchScript module (``.pt``) beside a model card ``<same name>.json``.

The card records what the model expects and how it was made: nuclide, voxel size [mm] and tiling,
input channels and normalisation, the kernels of the physics baseline (carried as buffers inside the
weights file, so they are covered by its hash), training data, validation metrics, the exact
training command, the DeepDose and torch versions, and the SHA-256 of the weights file. Loading
checks the hash first and refuses a mismatched or corrupt file with a clear message. Nothing is
unpickled by Python: the file must be a TorchScript archive (checked in the zip before loading) and is read by
``torch.jit.load`` (TorchScript's own loader of tensors and scripted code, which cannot import Python objects).

``torch.export`` archives (``.pt2``) are refused, whatever their card says: ``torch.export.load`` (torch 2.13)
unpickles with ``weights_only=False`` any weight or constant marked ``use_pickle``, custom and opaque objects,
legacy weight files and sample inputs that the restricted loader rejects, loads AOTInductor shared libraries,
and evaluates the symbolic-shape expressions of the graph with ``sympy.sympify`` (Python ``eval``): an archive
without any pickle can still run code. The card's SHA-256 only proves that card and file came together.
"""
from __future__ import annotations

import hashlib
import json
import os
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Optional, Tuple, Union

import numpy as np
import torch

from .._version import __version__
from ..errors import DeepDoseInputError
from ..methods.scaled_vsv import ScaledKernels
from .tiling import TILE_PLACEMENTS

CARD_FORMAT = "deepdose-model-card/2"
#: Earlier card formats and why they are refused.
_OLD_FORMATS = {"deepdose-model-card/1": "a DeepDose 0.1 model with plain-VSV inputs; retrain it with this version"}
# The model folder and card lookup are torch-free (the Slicer panel reads cards before torch is loaded).
from ..model_card import BUNDLED_MODEL_DIR, bundled_model_path, card_path  # noqa: E402,F401


def sha256_file(path: Union[str, Path]) -> str:
    """SHA-256 hex digest of a file."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass
class LoadedModel:
    """A verified model: the callable module (inputs and outputs as in :mod:`.unet`), its card and the
    kernels of the physics baseline it was trained with."""

    module: Any
    card: Dict[str, Any]
    kernels: ScaledKernels
    path: Path

    @property
    def nuclide(self) -> str:
        return str(self.card["nuclide"])

    @property
    def spacing_mm(self) -> Tuple[float, float, float]:
        """Voxel size (x, y, z) [mm] the model expects."""
        return tuple(float(s) for s in self.card["voxel_size_mm"])

    @property
    def tile_size(self) -> int:
        return int(self.card["grid"]["tile_size_voxels"])

    @property
    def margin(self) -> int:
        return int(self.card["grid"]["margin_voxels"])

    @property
    def size_multiple(self) -> int:
        return int(self.card["grid"]["size_multiple"])

    @property
    def dose_per_activity(self) -> float:
        """k [mGy/h per Bq/mL]: the network's normalisation of the dose channels (:class:`.unet.DeepDoseUNet`)."""
        return float(self.module.net.k)

    @property
    def base_channels(self) -> int:
        """Feature maps of the network at full resolution (16 for cards that do not say)."""
        return int(self.card.get("architecture", {}).get("base_channels", 16))


def _quiet_jit():
    """Context that silences torch's TorchScript deprecation warnings (the format is still supported)."""
    ctx = warnings.catch_warnings()
    ctx.__enter__()
    for category in (DeprecationWarning, FutureWarning, UserWarning):
        warnings.filterwarnings("ignore", category=category, message=r"(?i).*(torchscript|torch\.jit|jit).*")
    return ctx


class _KernelHolder(torch.nn.Module):
    """Wraps the network and carries the baseline kernels as buffers (one hashed file): ``kernel_densities``
    [g/cm³], ``charged_kernel_<i>`` for each density, ``photon_kernel`` [mGy/h per Bq in the centre],
    ``photon_material_factors`` (R per material label) and, for a baseline with photon bands,
    ``photon_kernel_material_<label>`` (that material's own photon kernel), ``photon_band_edges_MeV`` and
    ``photon_band_factors_<label>`` (R_b per band); with the scatter-medium correction ``scatter_medium`` (a, b)
    and ``photon_scatter_fractions`` (per material label)."""

    def __init__(self, net: torch.nn.Module, kernels: ScaledKernels):
        super().__init__()
        self.net = net
        self.register_buffer("kernel_densities", torch.tensor(kernels.densities_g_per_cm3, dtype=torch.float64))
        self.register_buffer("kernel_spacing_mm", torch.tensor(kernels.spacing_mm, dtype=torch.float64))
        for i, kernel in enumerate(kernels.charged):
            self.register_buffer(f"charged_kernel_{i}", torch.as_tensor(np.asarray(kernel, np.float32)))
        self.register_buffer("photon_kernel", torch.as_tensor(np.asarray(kernels.photon, np.float32)))
        self.register_buffer("photon_material_factors", torch.tensor(kernels.photon_factors or (1.0,),
                                                                     dtype=torch.float64))
        for label, kernel in kernels.photon_material_kernels:
            self.register_buffer(f"photon_kernel_material_{label}", torch.as_tensor(np.asarray(kernel, np.float32)))
        if kernels.photon_band_edges_MeV:
            self.register_buffer("photon_band_edges_MeV", torch.tensor(kernels.photon_band_edges_MeV,
                                                                       dtype=torch.float64))
        for label, band in kernels.photon_band_factors:
            self.register_buffer(f"photon_band_factors_{label}", torch.tensor(band, dtype=torch.float64))
        if kernels.scatter_medium:
            self.register_buffer("scatter_medium", torch.tensor(kernels.scatter_medium, dtype=torch.float64))
            self.register_buffer("photon_scatter_fractions", torch.tensor(kernels.photon_scatter_fractions,
                                                                          dtype=torch.float64))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def _kernels_from_buffers(buffers: Dict[str, torch.Tensor], nuclide: str, n_decays: int) -> ScaledKernels:
    densities = tuple(float(v) for v in buffers["kernel_densities"].tolist())
    charged = tuple(buffers[f"charged_kernel_{i}"].detach().cpu().numpy().astype(np.float32)
                    for i in range(len(densities)))
    factors = tuple(float(v) for v in buffers["photon_material_factors"].tolist())

    def labelled(prefix: str) -> list:
        return sorted((int(name[len(prefix):]), tensor) for name, tensor in buffers.items()
                      if name.startswith(prefix) and name[len(prefix):].isdigit())

    own = tuple((label, t.detach().cpu().numpy().astype(np.float32))
                for label, t in labelled("photon_kernel_material_"))
    edges = buffers.get("photon_band_edges_MeV")
    band = tuple((label, tuple(float(v) for v in t.tolist())) for label, t in labelled("photon_band_factors_"))

    def floats(name: str) -> Tuple[float, ...]:
        return tuple(float(v) for v in buffers[name].tolist()) if name in buffers else ()
    return ScaledKernels(nuclide, tuple(float(v) for v in buffers["kernel_spacing_mm"].tolist()), densities, charged,
                         buffers["photon_kernel"].detach().cpu().numpy().astype(np.float32), int(n_decays),
                         factors if len(factors) > 1 else (), own,
                         tuple(float(v) for v in edges.tolist()) if edges is not None else (), band,
                         floats("scatter_medium"), floats("photon_scatter_fractions"))


def export_model(net: torch.nn.Module, kernels: ScaledKernels, path: Union[str, Path],
                 card: Dict[str, Any], fmt: str = "torchscript") -> Path:
    """Write the model (``fmt``: ``torchscript`` → ``.pt``; the only format DeepDose loads) and its card.

    ``card`` must hold at least nuclide, voxel_size_mm and grid; format, hash and versions are added.
    Returns the path of the weights file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    for key in ("nuclide", "voxel_size_mm", "grid"):
        if key not in card:
            raise ValueError(f"model card lacks {key!r}")
    holder = _KernelHolder(net.cpu().eval(), kernels)
    tmp = path.with_name(path.stem + ".tmp" + path.suffix)  # torch.export wants the .pt2 suffix
    if fmt == "torchscript":
        ctx = _quiet_jit()
        try:
            torch.jit.save(torch.jit.script(holder), str(tmp))
        finally:
            ctx.__exit__(None, None, None)
    elif fmt == "export":
        raise ValueError(UNSAFE_EXPORT_FORMAT)
    else:
        raise ValueError(f"unknown model format {fmt!r}")
    os.replace(tmp, path)
    full = dict(card)
    full.setdefault("inputs", {})
    full["inputs"] = dict(full["inputs"], kernel_decays=int(kernels.n_decays))
    full.update({"format": CARD_FORMAT, "weights_file": path.name, "weights_format": fmt,
                 "weights_sha256": sha256_file(path), "deepdose_version": full.get("deepdose_version", __version__),
                 "torch_version": torch.__version__})
    card_path(path).write_text(json.dumps(full, indent=1))
    return path


UNSAFE_EXPORT_FORMAT = (
    "torch.export (.pt2) archives are not accepted: torch.export.load can run code from the file (it unpickles "
    "parts marked use_pickle and evaluates expressions of the graph), and a model card cannot prove that a file "
    "from elsewhere is harmless. Use a TorchScript model (.pt) written by `deepdose train`.")


def check_torchscript_archive(path: Union[str, Path]) -> None:
    """Refuse a model file that is not a TorchScript archive (a zip with ``<root>/data.pkl`` and scripted code
    under ``<root>/code/``) before any loader sees it: a ``torch.export`` archive, a ``torch.save`` pickle or
    anything else. Only the zip's table of contents is read."""
    path = Path(path)
    try:
        with zipfile.ZipFile(path) as archive:
            names = archive.namelist()
    except (OSError, zipfile.BadZipFile, ValueError) as exc:
        raise DeepDoseInputError(f"Deep-dose model {path.name} is not a TorchScript archive (not a zip file: "
                                 f"{exc}); refusing it.") from exc
    roots = {name.split("/", 1)[0] for name in names}
    root = next(iter(roots)) if len(roots) == 1 else None
    if root is None or f"{root}/data.pkl" not in names or not any(n.startswith(f"{root}/code/") for n in names):
        raise DeepDoseInputError(f"Deep-dose model {path.name} is not a TorchScript archive (no data.pkl and code/ "
                                 "under one root folder); refusing it.")
    if any(n.endswith(("/archive_format", "/models/model.json")) or "/data/weights/" in n for n in names):
        raise DeepDoseInputError(f"Deep-dose model {path.name}: {UNSAFE_EXPORT_FORMAT}")


def load_model(path: Union[str, Path], device: str = "cpu") -> LoadedModel:
    """Load and verify a model file and its card (hash first; nothing is unpickled)."""
    path = Path(path)
    if not path.is_file():
        raise DeepDoseInputError(f"Deep-dose model {path} does not exist.")
    cpath = card_path(path)
    if not cpath.is_file():
        raise DeepDoseInputError(f"Deep-dose model {path} has no model card {cpath.name} beside it; refusing a "
                                 "model whose provenance and expected inputs are unknown.")
    try:
        card = json.loads(cpath.read_text())
    except (ValueError, UnicodeDecodeError) as exc:
        raise DeepDoseInputError(f"Model card {cpath} is not valid JSON: {exc}") from exc
    if card.get("format") in _OLD_FORMATS:
        raise DeepDoseInputError(f"Model {path.name} is {_OLD_FORMATS[card['format']]}.")
    if card.get("format") != CARD_FORMAT:
        raise DeepDoseInputError(f"Model card {cpath} has format {card.get('format')!r}; expected {CARD_FORMAT}.")
    if card.get("weights_format", "torchscript") != "torchscript" or path.suffix.lower() == ".pt2":
        raise DeepDoseInputError(f"Deep-dose model {path.name}: {UNSAFE_EXPORT_FORMAT}")
    placement = (card.get("grid") or {}).get("tile_placement", "edge")  # edge when absent: the older cards
    if placement not in TILE_PLACEMENTS:
        raise DeepDoseInputError(f"Model card {cpath} asks for tile placement {placement!r}; this DeepDose knows "
                                 f"{', '.join(TILE_PLACEMENTS)}.")
    actual = sha256_file(path)
    if actual != card.get("weights_sha256"):
        raise DeepDoseInputError(
            f"Deep-dose model {path.name} does not match its model card: SHA-256 {actual[:16]}… but the card "
            f"records {str(card.get('weights_sha256'))[:16]}…. The file is corrupt or was replaced; refusing it.")
    check_torchscript_archive(path)
    try:
        ctx = _quiet_jit()
        try:
            module = torch.jit.load(str(path), map_location=device)
        finally:
            ctx.__exit__(None, None, None)
        module.eval()
        buffers = dict(module.named_buffers())
        kernels = _kernels_from_buffers(buffers, str(card.get("nuclide", "")),
                                        int(card.get("inputs", {}).get("kernel_decays", 0)))
    except Exception as exc:  # a corrupt archive raises many different errors
        saved_with = str(card.get("torch_version", "?"))
        hint = ""
        if saved_with.split("+")[0] != torch.__version__.split("+")[0]:
            hint = (f" It was saved with torch {saved_with}, this is torch {torch.__version__}: a model saved by a newer "
                    "torch may use operations an older one lacks.")
        raise DeepDoseInputError(f"Deep-dose model {path} could not be read ({type(exc).__name__}: {exc}).{hint}") from exc
    return LoadedModel(module, card, kernels, path)


def network_weights(loaded: LoadedModel) -> Dict[str, torch.Tensor]:
    """The U-Net's parameters of a loaded (hash-checked) model, keyed as :class:`.unet.DeepDoseUNet` names them:
    for re-exporting it and for starting a training run from it (``deepdose train --init-from``)."""
    return {key[len("net."):]: value.detach().clone() for key, value in loaded.module.state_dict().items()
            if key.startswith("net.")}


def reexport_model(source: Union[str, Path], out: Union[str, Path]) -> Path:
    """Write the network and baseline kernels of the TorchScript model ``source`` again with this DeepDose's
    code: the same weights and card, a new file and hash (``out`` may be ``source``). For a change in how the
    network is scripted, not in what it computes; the card records the hash it came from. Returns ``out``."""
    from .unet import DeepDoseUNet

    loaded = load_model(source)
    arch = loaded.card["architecture"]
    net = DeepDoseUNet(float(loaded.module.net.k), base_channels=int(arch["base_channels"]), depth=int(arch["depth"]))
    net.load_state_dict(network_weights(loaded))  # strict: every parameter present, none left over
    # export_model rewrites the card's format, file name, hash and torch version
    origin = {"weights_sha256": loaded.card["weights_sha256"], "torch_version": loaded.card.get("torch_version"),
              "deepdose_version": __version__}
    if loaded.card.get("reexported_from"):
        origin["earlier"] = loaded.card["reexported_from"]  # the chain back to the trained file
    return export_model(net, loaded.kernels, out, dict(loaded.card, reexported_from=origin))


def resolve_model(model_path: Optional[Union[str, Path]], nuclide: str, device: str = "cpu") -> LoadedModel:
    """Load ``model_path`` (or the bundled model of ``nuclide``) and check that it is for ``nuclide``."""
    model = load_model(model_path if model_path else bundled_model_path(nuclide), device)
    if model.nuclide.lower() != nuclide.lower():
        raise DeepDoseInputError(f"Deep-dose model {model.path.name} was trained for {model.nuclide}, not {nuclide}: "
                                 "dose kernels differ between nuclides; use a model of the right nuclide.")
    return model


def model_card_summary(model_path: Optional[Union[str, Path]], nuclide: str) -> str:
    """A few lines describing the model that a run would use (its card only; the weights are not loaded).

    Used by the Slicer module to show the model card before Apply. Problems are described, not raised.
    """
    try:
        path = Path(model_path) if model_path else bundled_model_path(nuclide)
    except DeepDoseInputError as exc:
        return str(exc)
    cpath = card_path(path)
    try:
        card = json.loads(cpath.read_text())
    except (OSError, ValueError) as exc:
        return f"{path.name}: no readable model card ({exc})"
    spacing = card.get("voxel_size_mm") or card.get("spacing_mm") or "?"
    if isinstance(spacing, (list, tuple)):
        spacing = "×".join(f"{float(v):g}" for v in spacing)
    lines = [f"{path.name}{' (bundled)' if not model_path else ''}: {card.get('nuclide', '?')}, voxel {spacing} mm, "
             f"DeepDose {card.get('deepdose_version', '?')}"]
    if str(card.get("nuclide", "")).lower() != str(nuclide).lower():
        lines.append(f"WARNING: trained for {card.get('nuclide')}, not {nuclide}: it will be refused.")
    training = card.get("training") or {}
    if isinstance(training, dict) and training.get("command"):
        lines.append(f"rebuilt by: {str(training['command'])[:160]}")
    validation = card.get("validation") or {}
    errors = validation.get("deepdose") if isinstance(validation, dict) else None
    if isinstance(errors, dict):
        organs = [f"{k.split(':', 1)[1]} {float(v):+.1f} %" for k, v in errors.items()
                  if k.startswith("organ:") and isinstance(v, (int, float))]
        if organs:
            lines.append("validation, organ mean error vs MC: " + ", ".join(organs))
    limitations = card.get("limitations")
    if limitations:
        lines.append(f"limitations: {str(limitations)[:300]}")
    return "\n".join(lines)
