"""The Python API: load a model once, then classify or segment files, folders and audio in memory.

    model = vgd.load_model()
    predictions = model.predict(["clip.flac", "recordings/", (wave, 44100)])

Which model :func:`load_model` takes is the CLI's rule: a checkpoint path, a registry version
(``v0003``), ``builtin``, or by default the registry's promoted model and, with none promoted,
the built-in model of real voices. Results are :class:`vgd.formats.Prediction` and
:class:`vgd.formats.FileSegments`, the records the CLI prints.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from vgd import pretrained
from vgd.adapt import PRIOR_SD, Adaptation, AdaptError, adapt
from vgd.audio import AudioError, Waveform, as_waveform
from vgd.checkpoint import LoadedModel, load_checkpoint, save_checkpoint
from vgd.formats import FileSegments, Prediction
from vgd.manifest import Clip, check_labels, read_manifest
from vgd.predict import PredictConfig, predict_paths
from vgd.registry import Registry, RegistryError
from vgd.segment import SegmentConfig, segment_paths

log = logging.getLogger(__name__)

DEFAULT_REGISTRY = "models"  # or $VGD_MODELS
BUILTIN = "builtin"


@dataclass(frozen=True)
class ModelSource:
    """Where a model was found: its checkpoint and how it was chosen."""

    path: Path
    kind: str  # path, version (asked for by name), promoted, builtin
    version: str = ""  # the registry version, for kinds version and promoted
    registry: str = ""  # the registry that was asked

    def describe(self) -> str:
        """One line for logs: which model answers."""
        if self.kind == "builtin":
            return f"the built-in model {pretrained.describe()}"
        if self.kind in ("version", "promoted"):
            return f"{self.kind} model {self.version} ({self.path})"
        return str(self.path)


def registry_root(registry: str | os.PathLike | None = None) -> Path:
    """The model registry folder: ``registry``, else $VGD_MODELS, else ``models``."""
    return Path(registry or os.environ.get("VGD_MODELS") or DEFAULT_REGISTRY)


def resolve_model(
    name_or_path: str | os.PathLike | None = None, registry: str | os.PathLike | None = None
) -> ModelSource:
    """The checkpoint that ``name_or_path`` means: a file, a registry version, ``builtin``, or
    (None) the promoted model, else the built-in one. Raises RegistryError when there is none."""
    root = registry_root(registry)
    if name_or_path is None or str(name_or_path) == "":
        return _default_model(Registry(root))
    name = str(name_or_path)
    if name in (BUILTIN, pretrained.NAME):
        return _builtin(root)
    if Path(name).is_file():
        return ModelSource(Path(name), "path")
    versions = {v.name: v for v in Registry(root).versions()}
    if name in versions:
        return ModelSource(versions[name].model, "version", name, str(root))
    return ModelSource(Path(name), "path")  # loading it names what is wrong with it


def _default_model(registry: Registry) -> ModelSource:
    version = registry.current_version()
    if version is not None:
        return ModelSource(version.model, "promoted", version.name, str(registry.root))
    return _builtin(registry.root)


def _builtin(root: Path) -> ModelSource:
    path = pretrained.builtin_model()
    if path is None:
        raise RegistryError(
            f"no promoted model in {root}/ and no built-in model in this checkout; "
            "pass --model or run vgd promote"
        )
    return ModelSource(path, BUILTIN, registry=str(root))


def load_model(
    name_or_path: str | os.PathLike | None = None,
    device: str | torch.device = "cpu",
    registry: str | os.PathLike | None = None,
) -> Model:
    """Load a model for :meth:`Model.predict` and :meth:`Model.segment` (see
    :func:`resolve_model` for which one); ``device``: cpu, cuda, cuda:N or auto."""
    source = resolve_model(name_or_path, registry)
    log.log(
        logging.DEBUG if source.kind == BUILTIN else logging.INFO, "using %s", source.describe()
    )
    return Model(load_checkpoint(source.path, device=device), source)


Input = Any  # a path, a folder, a Waveform, a numpy array or torch tensor, or (array, rate)


class Model:
    """A loaded voice gender model; its methods take files, folders or audio in memory."""

    def __init__(self, loaded: LoadedModel, source: ModelSource | None = None):
        self.loaded = loaded
        self.source = source or ModelSource(Path(loaded.path), "path")

    @property
    def labels(self) -> tuple[str, ...]:
        return self.loaded.labels

    @property
    def device(self) -> torch.device:
        return self.loaded.device

    def __repr__(self) -> str:
        return f"Model({self.source.describe()}, labels={self.labels}, device={self.device})"

    def predict(
        self,
        inputs: Input | Sequence[Input],
        sample_rate: int | None = None,
        config: PredictConfig = PredictConfig(),
        batch_size: int = 64,
        workers: int = 0,
        progress: bool = False,
    ) -> list[Prediction]:
        """One :class:`Prediction` per recording (folders expanded); bad inputs are error rows.

        Arrays and tensors need ``sample_rate`` (or come as ``(array, rate)`` pairs); they are
        named ``<audio N>`` by their place in ``inputs``.
        """
        sources, errors = to_sources(inputs, sample_rate)
        rows = [Prediction(e.path, error=e.reason) for e in errors]
        return rows + predict_paths(self.loaded, sources, batch_size, progress, workers, config)

    def segment(
        self,
        inputs: Input | Sequence[Input],
        sample_rate: int | None = None,
        config: SegmentConfig = SegmentConfig(),
        batch_size: int = 16,
        progress: bool = False,
    ) -> list[FileSegments]:
        """Who speaks when: one :class:`FileSegments` per recording, which writes itself as CSV,
        JSON, RTTM or TextGrid (``.write(path)``); bad inputs carry their error."""
        sources, errors = to_sources(inputs, sample_rate)
        rows = [FileSegments(e.path, error=e.reason) for e in errors]
        return rows + segment_paths(self.loaded, sources, config, batch_size, progress)

    def adapt(
        self, labelled: str | os.PathLike | Sequence[Clip], prior_sd: float = PRIOR_SD
    ) -> Adaptation:
        """Move the decision threshold to your own recordings: a bias fitted on labelled clips
        (a manifest, or :class:`vgd.manifest.Clip` records) of 10+ speakers of each label;
        ``predict`` and ``segment`` answer with it from then on. Returns the
        :class:`vgd.adapt.Adaptation`."""
        named = isinstance(labelled, str | os.PathLike)
        source = str(labelled) if named else "labelled clips"
        clips = read_manifest(labelled) if named else list(labelled)
        check_labels(clips, self.labels, source)
        try:
            return adapt(self.loaded, clips, prior_sd=prior_sd)
        except AdaptError as e:
            raise AdaptError(f"{source}: {e}") from None

    def save(self, path: str | os.PathLike) -> Path:
        """Write the model (with its bias, once adapted) as a checkpoint ``load_model`` reads."""
        loaded = self.loaded
        return save_checkpoint(path, loaded.model, loaded.recipe, loaded.metrics)


def to_sources(
    inputs: Input | Sequence[Input], sample_rate: int | None
) -> tuple[list[str | os.PathLike | Waveform], list[AudioError]]:
    """Paths kept as they are, audio in memory wrapped as Waveforms; arrays that cannot be audio
    are errors. Raises ValueError for an array without its sample rate (a call's mistake)."""
    items = [inputs] if _is_one(inputs) else list(inputs)
    sources: list[str | os.PathLike | Waveform] = []
    errors: list[AudioError] = []
    for i, item in enumerate(items):
        name = f"<audio {i}>"
        if isinstance(item, tuple) and len(item) == 2 and _is_array(item[0]):
            item, rate = item
        else:
            rate = sample_rate
        if isinstance(item, (str, os.PathLike, Waveform)):
            sources.append(item)
            continue
        if rate is None:
            raise ValueError(f"{name}: audio in memory needs its sample rate (sample_rate=...)")
        try:
            sources.append(as_waveform(item, rate, name))
        except AudioError as e:
            errors.append(e)
    return sources, errors


def _is_array(x: Any) -> bool:
    return isinstance(x, (np.ndarray, torch.Tensor))


def _is_one(inputs: Any) -> bool:
    """One recording (a path, an array, a Waveform or an (array, rate) pair), not a list."""
    if isinstance(inputs, (str, os.PathLike, Waveform)) or _is_array(inputs):
        return True
    return isinstance(inputs, tuple) and len(inputs) == 2 and _is_array(inputs[0])
