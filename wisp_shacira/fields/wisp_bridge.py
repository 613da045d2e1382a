"""The Wisp-free logic behind the Kaolin-Wisp adapter (:mod:`wisp_shacira.wisp`).

Everything here is plain PyTorch and testable without Kaolin or Wisp; the adapter's
Wisp subclasses delegate to it. Wisp conventions handled here:

* coordinates: Wisp grids receive ``[N, 3]`` or ``[B, S, 3]`` points in the
  normalised scene box ``[-1, 1]^3``; our grid works on ``[0, 1]^3``.
* ``lod_idx``: an index into ``grid.active_lods`` (``0..L-1``); the neural field
  passes ``L - 1`` ("the maximum LOD") when the caller gave none. We honour that
  documented meaning: levels ``0..lod_idx`` contribute, finer ones are zeroed.
  (Upstream ``HashGrid`` in 'cat' mode zeroes from ``lod_idx`` itself onward, so
  its default call drops the finest level; 'sum' mode ignores ``lod_idx``.)
* parameter groups: Wisp's trainer groups parameters by name (``'decoder'`` ->
  weight decay, else ``'grid'`` -> ``lr * grid_lr_weight``). Our grid's parameters
  are named ``grid.core.latents``, ``grid.core.decoder.*``, ``grid.core.prior.*``;
  ``train.rate.refine_param_groups`` then moves them into groups of their own with
  the SHACIRA learning rates and no weight decay (the prior must never decay).
* versions: :func:`torch_problem` and :func:`wisp_version_error` word the one-line
  errors of the adapter's version gates (torch >= 2.0; Wisp ``main`` with ``wisp.config``).
* exports: :func:`user_config` keeps only the user's own values of a Wisp (hydra-zen)
  config: no ``_target_``, ``_zen_*``, ``_convert_``, ``__ctor_name__`` ... keys.
* rate: ``train.rate.RateTerm`` adds ``lambda * bits / entries`` to the gradients
  just before each optimiser step (an optimiser step pre-hook), whatever form of loss
  and loss scaling the Wisp trainer version uses; the quantisation phase it returns
  for a step is passed to :func:`interpolate_wisp` by the adapter's grid (the Wisp
  edge, whose ``interpolate`` signature is Wisp's).
"""
from __future__ import annotations

import dataclasses
import os
import re
from typing import Any, Literal

import torch
from torch import nn

from wisp_shacira.codec.model_io import ShacModel, read_shac, write_shac
from wisp_shacira.config import require
from wisp_shacira.errors import BitstreamError, ConfigError, MissingExtraError, ShaciraError
from wisp_shacira.fields.base import CompressedField
from wisp_shacira.fields.wisp_nerf import (MULTISCALE_TYPES, WispNefConfig, WispRadianceField,
                                           wisp_coords_to_unit)
from wisp_shacira.grid.shacira_grid import GridConfig, ShaciraGrid

WISP_INSTALL_HINT = (
    "wisp_shacira.wisp needs NVIDIA Kaolin and Kaolin-Wisp on a CUDA machine: install PyTorch "
    "with CUDA, then kaolin from NVIDIA's wheels (pip install kaolin==VERSION -f "
    "https://nvidia-kaolin.s3.us-east-2.amazonaws.com/torch-TORCH_VER_cuCUDA_VER.html), then "
    "kaolin-wisp from https://github.com/NVIDIAGameWorks/kaolin-wisp (pip install -r "
    "requirements.txt -r requirements_app.txt; python setup.py develop); see docs/wisp.md"
)
WISP_TASK = "wisp_nerf"
WISP_FILE_FORMAT = 2
"""Version of the ``wisp`` section of a ``wisp_nerf`` file. 1 (no ``format`` key): the
adapter before the rebuild (nef arguments only, no scene); 2: nef architecture, tracer,
occupancy, scene and camera sections, renderable without Wisp."""
MIN_TORCH = (2, 0)
WISP_MAIN_NEEDED = ("Kaolin-Wisp main from commit 99639ae (2023-05-22, the wisp.config + "
                    "trainer-config era) or later")
WISP_YAML_NEEDED = ("Kaolin-Wisp main from commit ad6af84 (2023-08-01) or later, whose "
                    "ConfigMultiviewTrainer has rgb_loss_type and rgb_loss_denom")


class WispNotInstalled(MissingExtraError):
    """Kaolin-Wisp (or Kaolin) cannot be imported; the message says what to install."""


class WispVersionError(WispNotInstalled):
    """torch or Kaolin-Wisp is installed in a version the adapter does not support."""


def wisp_not_installed(exc: BaseException) -> WispNotInstalled:
    """The error to raise when importing Wisp failed with ``exc``: install steps + cause."""
    cause = str(exc).replace("\n", " ")
    return WispNotInstalled(f"{WISP_INSTALL_HINT} (import failed: {cause})")


def torch_problem(version: str) -> str | None:
    """Why torch ``version`` (``torch.__version__``) cannot run the adapter, or None.

    ``RateTerm.attach`` needs ``Optimizer.register_step_pre_hook`` (torch 2.0) and
    ``torch.load(weights_only=...)`` needs torch 1.13.
    """
    match = re.match(r"(\d+)\.(\d+)", version)
    if match is None:
        return f"cannot read the torch version {version!r}"
    if (int(match.group(1)), int(match.group(2))) >= MIN_TORCH:
        return None
    return (f"found torch {version}; the Kaolin-Wisp adapter needs torch >= "
            f"{MIN_TORCH[0]}.{MIN_TORCH[1]} (optimizer step pre-hooks): install a torch >= 2.0 "
            f"build with its matching kaolin wheel (see docs/wisp.md)")


def wisp_version_error(found: str, needed: str, detail: str = "") -> WispVersionError:
    """The one-line error of a Wisp that lacks what the adapter uses."""
    extra = f" ({detail})" if detail else ""
    return WispVersionError(f"found {found}{extra}; the SHACIRA adapter needs {needed}: "
                            f"git clone https://github.com/NVIDIAGameWorks/kaolin-wisp and "
                            f"install its main branch (see docs/wisp.md)")


def user_error_cause(exc: BaseException) -> ShaciraError | None:
    """Our user error behind a wrapper exception (Hydra's ``InstantiationException``), if any."""
    cause: BaseException | None = exc
    while cause is not None and not isinstance(cause, ShaciraError):
        cause = cause.__cause__
    return cause


def grid_config_from_wisp(feature_dim: int, num_lods: int, codebook_bitwidth: int,
                          min_grid_res: int, max_grid_res: int, latent_dim: int,
                          latent_init: float, prior_init_scale: float,
                          multiscale_type: str, latent_step: float = 0.0) -> GridConfig:
    """Our grid configuration from the arguments of ``ShaciraGrid.from_geometric``.

    ``num_lods`` -> levels, ``codebook_bitwidth`` -> log2 of the table size T,
    ``min/max_grid_res`` -> resolutions of the coarsest/finest level, ``latent_step`` 0 ->
    None (the decoder learns the step; Wisp's constructors take plain numbers only).

    Raises:
        ConfigError: a value out of range (named as ``grid.<argument>``).
    """
    require(multiscale_type in MULTISCALE_TYPES, f"grid.multiscale_type must be one of "
            f"{list(MULTISCALE_TYPES)}, got {multiscale_type!r}")
    require(feature_dim >= 1, f"grid.feature_dim must be >= 1, got {feature_dim}")
    require(num_lods >= 1, f"grid.num_lods must be >= 1, got {num_lods}")
    require(1 <= codebook_bitwidth <= 30,
            f"grid.codebook_bitwidth must be in 1..30, got {codebook_bitwidth}")
    require(1 <= min_grid_res <= max_grid_res,
            f"need 1 <= grid.min_grid_res <= grid.max_grid_res, got {min_grid_res}, {max_grid_res}")
    require(latent_dim >= 1, f"grid.latent_dim must be >= 1, got {latent_dim}")
    require(latent_init > 0, f"grid.latent_init must be > 0, got {latent_init}")
    require(prior_init_scale > 0, f"grid.prior_init_scale must be > 0, got {prior_init_scale}")
    require(latent_step >= 0, f"grid.latent_step must be >= 0 (0: learned), got {latent_step}")
    return GridConfig(num_levels=num_lods, min_res=min_grid_res, max_res=max_grid_res,
                      log2_table_size=codebook_bitwidth, feature_dim=feature_dim,
                      latent_dim=latent_dim, latent_init=latent_init, compressed=True,
                      prior_init_scale=prior_init_scale, latent_step=latent_step or None)


def core_lod(lod_idx: int | None, num_levels: int) -> int | None:
    """Our LOD (number of levels used, None = all) for a Wisp ``lod_idx``.

    Wisp's ``lod_idx`` indexes ``active_lods = [0, ..., L-1]`` (the finest level used);
    negative values count from the end as in Python. This is the one place where a
    Wisp index becomes a level count.
    """
    if lod_idx is None:
        return None
    index = lod_idx + num_levels if lod_idx < 0 else lod_idx
    if not 0 <= index < num_levels:
        raise ValueError(f"lod_idx {lod_idx} out of range for a grid of {num_levels} levels")
    return index + 1


def interpolate_wisp(core: ShaciraGrid, coords: torch.Tensor, lod_idx: int | None,
                     multiscale_type: str, tau: float | None = None) -> torch.Tensor:
    """``HashGrid.interpolate`` semantics on our grid.

    Args:
        coords: [N, 3] or [B, S, 3] in [-1, 1].
        lod_idx: Wisp LOD index (see :func:`core_lod`).
        multiscale_type: 'cat' (levels concatenated) or 'sum' (levels summed).
        tau: quantisation phase (``RateTerm.begin_step``); None at evaluation.
    Returns:
        [..., L * F] for 'cat', [..., F] for 'sum' (leading shape of ``coords``).
    """
    feats = core.interpolate(wisp_coords_to_unit(coords), core_lod(lod_idx, core.num_levels),
                             tau)
    if multiscale_type == "sum":
        feats = feats.view(feats.shape[0], core.num_levels, -1).sum(1)
    elif multiscale_type != "cat":
        raise ValueError(f"unknown multiscale_type {multiscale_type!r}")
    return feats.reshape(*coords.shape[:-1], feats.shape[-1])


def lod_from_slider(value: int, num_levels: int) -> int | None:
    """The renderer's ``lod_idx`` for a GUI slider over ``0..L-1`` (the top = all levels)."""
    return None if value >= num_levels - 1 else max(0, value)


def wisp_lr_factor(step: int, milestones: list[float], gamma: float) -> float:
    """The factor Wisp's ``MultiStepLR`` has applied to its groups' learning rates after
    ``step`` scheduler steps: ``gamma`` per milestone reached. Wisp's milestones are
    ``len(train_dataset) * max_epochs * (0.5, 0.75, 0.9)``, floats; ``MultiStepLR`` decays
    when its step count *equals* one, so a milestone that is not a whole number never
    fires (e.g. 100 * 3 * 0.75 = 225.0 fires, 10 * 3 * 0.75 = 22.5 does not)."""
    reached = sum(1 for m in milestones if float(m).is_integer() and m <= step)
    return gamma ** reached


def wisp_param_group(name: str) -> Literal["decoder", "grid", "rest"]:
    """The group Wisp's ``BaseTrainer.init_optimizer`` puts a nef parameter in, by name."""
    if "decoder" in name:
        return "decoder"
    return "grid" if "grid" in name else "rest"


class WispNerfExport(CompressedField):
    """A Wisp-trained grid and the nef's other modules, seen as one compressed field."""

    def __init__(self, core: ShaciraGrid, heads: nn.Module) -> None:
        super().__init__()
        self.grid = core
        self.heads = heads


def heads_of(nef: nn.Module) -> nn.ModuleDict:
    """The nef's child modules other than its grid (decoders, embedders)."""
    return nn.ModuleDict({name: child for name, child in nef.named_children() if name != "grid"})


_SCALARS = (str, int, float, bool, type(None))


def user_config(values: Any) -> Any:
    """The user's own values of a Wisp config (``Tracker.get_app_config(as_dict=True)``):
    mappings without keys that start with ``_`` (hydra-zen's ``_target_``, ``_zen_target``,
    ``_zen_exclude``, ``_zen_partial``, ``_partial_``, ``_convert_``, ``__ctor_name__``,
    ...), except that ``__ctor_name__`` is kept as ``constructor`` (the YAML's key);
    tuples become lists; values that are not JSON scalars (objects) are dropped.
    """
    if isinstance(values, dict):
        out: dict[str, Any] = {}
        ctor = values.get("__ctor_name__")
        if isinstance(ctor, str):
            out["constructor"] = ctor
        for key, value in values.items():
            if str(key).startswith("_"):
                continue
            kept = user_config(value)
            if kept is not _DROP:
                out[str(key)] = kept
        return out
    if isinstance(values, (list, tuple)):
        items = [user_config(v) for v in values]
        return _DROP if any(item is _DROP for item in items) else items
    return values if isinstance(values, _SCALARS) else _DROP


_DROP = object()


def nef_config_of(nef: nn.Module) -> WispNefConfig:
    """The architecture of a Wisp ``NeuralRadianceField`` (from its attributes).

    Raises:
        ConfigError: ``nef`` is not a Wisp radiance field, or has parts that cannot be
            stored and rebuilt without Wisp (``tcnn`` embedders, spectral norm).
    """
    needed = ("pos_embedder_type", "view_embedder_type", "activation_type", "layer_type",
              "hidden_dim", "num_layers", "bias")
    missing = [name for name in needed if not hasattr(nef, name)]
    if missing:
        raise ConfigError(f"{type(nef).__name__} is not Wisp's NeuralRadianceField (no "
                          f"{missing[0]}): its .shac file could not be rendered without Wisp")
    pos, view = getattr(nef, "pos_embedder", None), getattr(nef, "view_embedder", None)
    cfg = WispNefConfig(
        pos_embedder=nef.pos_embedder_type, view_embedder=nef.view_embedder_type,
        pos_multires=int(getattr(pos, "num_freq", 10)),
        view_multires=int(getattr(view, "num_freq", 4)),
        position_input=bool(getattr(pos, "include_input", pos is not None)),
        activation_type=nef.activation_type, layer_type=nef.layer_type,
        hidden_dim=int(nef.hidden_dim), num_layers=int(nef.num_layers), bias=bool(nef.bias))
    cfg.check()
    return cfg


def check_rebuildable(grid_config: GridConfig, nef_cfg: WispNefConfig, multiscale_type: str,
                      nef_heads: nn.Module) -> None:
    """The pure-PyTorch rebuild has exactly the parameters of the Wisp nef's heads.

    Raises:
        ConfigError: names or shapes differ (the first difference is named).
    """
    with torch.device("meta"):
        probe = WispRadianceField(grid_config, nef_cfg, multiscale_type).heads
    want = {k: tuple(p.shape) for k, p in probe.named_parameters()}
    have = {k: tuple(p.shape) for k, p in nef_heads.named_parameters()}
    for key in sorted(set(want) | set(have)):
        if want.get(key) != have.get(key):
            raise ConfigError(f"the nef's parameter {key} ({have.get(key)}) differs from Wisp's "
                              f"NeuralRadianceField rebuilt from {nef_cfg} ({want.get(key)})")


def export_wisp_nerf(core: ShaciraGrid, nef_heads: nn.Module, path: str | os.PathLike,
                     sections: dict, precision: int = 16) -> int:
    """Write a Wisp-trained radiance field as a ``.shac`` file (atomically).

    Rounds the head weights to their file precision and hardens the latents in place
    first, so that the model in memory is the model in the file.

    Args:
        nef_heads: every learned module of the nef except the grid (see :func:`heads_of`).
        sections: the CONFIG besides ``task`` and ``grid`` (JSON-storable): ``nef``,
            ``wisp``, ``tracer``, ``occupancy``, ``scene``, ``camera`` (see
            ``tasks.wisp_nerf``).
    Returns:
        The file size in bytes.
    """
    field_ = WispNerfExport(core, nef_heads)
    field_.round_weights()
    config = {"task": WISP_TASK, "grid": dataclasses.asdict(core.config), **sections}
    return write_shac(path, field_.to_shac_model(config, precision), precision)


def grid_config_of_file(model: ShacModel, name: str) -> GridConfig:
    """The grid configuration recorded in a Wisp ``.shac`` file."""
    if model.config.get("task") != WISP_TASK:
        raise BitstreamError(f"{name}: holds a {model.config.get('task')!r} model, "
                             f"not a {WISP_TASK!r} one")
    try:
        return GridConfig(**model.config["grid"])
    except (KeyError, TypeError) as exc:
        raise BitstreamError(f"{name}: malformed grid configuration ({exc})") from exc


def load_wisp_nerf(path: str | os.PathLike, core: ShaciraGrid, nef_heads: nn.Module) -> ShacModel:
    """Load a file written by :func:`export_wisp_nerf` into an identically built model.

    Raises:
        BitstreamError: not a Wisp NeRF file, or a grid/heads layout that differs.
    """
    model = read_shac(path)
    if grid_config_of_file(model, str(path)) != core.config:
        raise BitstreamError(f"{path}: grid configuration differs from the model's")
    WispNerfExport(core, nef_heads).load_shac_model(model)
    return model


__all__ = [
    "MIN_TORCH", "MULTISCALE_TYPES", "WISP_FILE_FORMAT", "WISP_INSTALL_HINT", "WISP_MAIN_NEEDED",
    "WISP_TASK", "WISP_YAML_NEEDED", "WispNotInstalled", "WispVersionError", "check_rebuildable",
    "core_lod", "export_wisp_nerf", "grid_config_from_wisp", "grid_config_of_file", "heads_of",
    "interpolate_wisp", "load_wisp_nerf", "lod_from_slider", "nef_config_of", "torch_problem",
    "user_config", "user_error_cause", "wisp_coords_to_unit", "wisp_not_installed",
    "wisp_lr_factor", "wisp_param_group", "wisp_version_error", "WispNerfExport",
]
