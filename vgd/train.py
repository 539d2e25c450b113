"""The training loop: AdamW + LR schedule, early stopping on validation balanced accuracy.

It knows nothing of Ray or Optuna. Callers watch it through callbacks (one metrics dict per
epoch, nothing returned), and it can resume: with a ``state_dir`` it writes its full state
there after each epoch and continues from it when started again.
"""

from __future__ import annotations

import copy
import logging
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from vgd.audio import AudioError, audio_info
from vgd.batches import DeviceBatcher
from vgd.cache import AudioCache, prefill
from vgd.calibration import calibrate
from vgd.checkpoint import build_model, save_checkpoint, torch_load, torch_save
from vgd.config import (
    AUDIO_CACHE_GB,
    AudioConfig,
    ConfigError,
    RunConfig,
    TrainConfig,
    save_config,
    to_dict,
)
from vgd.dataset import IGNORE, class_weights, make_reader
from vgd.device import autocast, resolve_device, resolve_memory_format, resolve_precision
from vgd.evaluate import compute_metrics, pooled_loss, score_clips
from vgd.features import SpecAugment
from vgd.inference import Reader
from vgd.io import atomic_write_json
from vgd.manifest import Clip, ManifestError, check_labels, read_manifest
from vgd.model import VoiceGenderNet, count_parameters
from vgd.probe import Embeddings, fit_model_probe
from vgd.progress import format_duration
from vgd.splits import ensure_splits, select, speaker_key
from vgd.train_input import LoaderBatches, training_batches

log = logging.getLogger(__name__)

Callback = Callable[[dict[str, Any]], None]
STATE_FILE = "state.pt"


@dataclass
class TrainResult:
    """The trained model (best epoch's weights) and how it got there."""

    model: VoiceGenderNet
    config: TrainConfig
    labels: tuple[str, ...]
    history: list[dict[str, Any]]
    best_epoch: int
    best: dict[str, Any]
    stopped_early: bool
    seconds: float
    parameters: int
    unreadable: list[str] = field(default_factory=list)
    calibration: dict[str, float] = field(default_factory=dict)  # temperature, ECE before/after


@dataclass
class _Data:
    train: DeviceBatcher | LoaderBatches
    val: list[Clip]
    reader: Reader
    unreadable: list[str]
    train_clips: list[Clip] = field(default_factory=list)


def load_clips(
    config: TrainConfig, manifest: str, clips: Sequence[Clip] | None = None
) -> list[Clip]:
    """The manifest's clips (or the given ones) with speaker-disjoint splits assigned."""
    clips = read_manifest(manifest) if clips is None else list(clips)
    check_labels(clips, config.data.labels, manifest)
    return ensure_splits(clips, config.split)


def usable_clips(
    clips: Sequence[Clip],
    audio: AudioConfig,
    cache_dir: str = "",
    progress: bool = False,
    reader: Reader | None = None,
    cache_gb: float = AUDIO_CACHE_GB,
) -> tuple[list[Clip], list[str]]:
    """Drop clips that cannot be read, listing why; with a cache this decodes each file once.

    With a ``reader`` (e.g. audio already in memory) each clip is tried through it instead.
    """
    if reader is not None:
        failed = _unreadable(clips, reader)
    elif cache_dir:
        cache = AudioCache(cache_dir, audio, cache_gb)
        report = prefill(cache, [c.path for c in clips], progress=progress)
        failed = report.failed
    else:
        failed = _unreadable(clips, audio_info)
    for path, reason in failed.items():
        log.warning("left out unreadable clip %s: %s", path, reason)
    return [c for c in clips if c.path not in failed], [f"{p}: {r}" for p, r in failed.items()]


def _unreadable(clips: Sequence[Clip], check: Callable[[str], Any]) -> dict[str, str]:
    """Each clip that ``check`` (a reader, or a header check) refuses, with its reason."""
    failed = {}
    for c in clips:
        try:
            check(c.path)
        except AudioError as e:
            failed[c.path] = e.reason
    return failed


def _data(
    config: TrainConfig,
    run: RunConfig,
    clips: Sequence[Clip],
    device: torch.device,
    reader: Reader | None = None,
) -> _Data:
    d = config.data
    reader = reader or make_reader(config.audio, run.cache_dir, run.audio_cache_gb)
    train_clips = select(clips, d.train_splits)
    if not train_clips:
        raise ManifestError(f"{run.manifest}: no clips in training split(s) {list(d.train_splits)}")
    val_clips = select(clips, [d.val_split]) if d.val_split else []
    if d.val_split and not val_clips:
        raise ManifestError(f"{run.manifest}: no clips in validation split {d.val_split!r}")
    train, failed = training_batches(config, run, train_clips, reader, device)
    return _Data(train, val_clips, reader, failed, train_clips)


def _scheduler(
    config: TrainConfig, optimizer: torch.optim.Optimizer, steps_per_epoch: int
) -> torch.optim.lr_scheduler.LRScheduler:
    o = config.optim
    total = o.epochs * steps_per_epoch
    if o.schedule == "onecycle":
        # A warm-up of exactly one step has zero length in OneCycleLR, which divides by it.
        pct_start = 2 / total if abs(0.2 * total - 1) < 1e-9 else 0.2
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=o.lr, total_steps=total, pct_start=pct_start
        )
    if o.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=total)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)


class Trainer:
    """Fits a VoiceGenderNet to a manifest's training split, minGPT-style with callbacks."""

    def __init__(
        self,
        config: TrainConfig,
        run: RunConfig = RunConfig(),
        clips: Sequence[Clip] | None = None,
        state_dir: str | Path | None = None,
        progress: bool = True,
        init_state: dict[str, torch.Tensor] | None = None,
        reader: Reader | None = None,
        embeddings: Embeddings | None = None,
    ):
        check_validation_schedule(config, run.validate_every)
        self.config = config
        self.run = run
        self.init_state = init_state  # starting weights (fine-tuning); a resumed run overrides
        self.reader = reader  # path -> waveform; None: the files, through run.cache_dir
        self.embeddings = embeddings  # the speaker encoder's, shared by runs (vgd.probe)
        self.labels = tuple(config.data.labels)
        self.clips, self.unreadable = usable_clips(
            load_clips(config, run.manifest, clips),
            config.audio,
            run.cache_dir,
            progress,
            reader,
            run.audio_cache_gb,
        )
        self.state_dir = Path(state_dir) if state_dir else None
        self.progress = progress
        self.callbacks: list[Callback] = []
        self.device = resolve_device(run.device)
        self.precision = resolve_precision(run.precision, self.device)
        self.memory_format = resolve_memory_format(run.memory_format, self.device)

    def add_callback(self, callback: Callback) -> None:
        """Call ``callback(metrics)`` after every epoch."""
        self.callbacks.append(callback)

    def fit(self) -> TrainResult:
        """Train until the schedule ends or validation stops improving; return the best model."""
        session = self.start()
        while not session.done:
            session.step()
        return session.finish()

    def start(self) -> Session:
        """Set up data, model and optimiser (resuming saved state): a session to step by epoch."""
        cfg, o = self.config, self.config.optim
        if self.run.threads:
            torch.set_num_threads(self.run.threads)
        torch.manual_seed(cfg.seed)
        data = _data(cfg, self.run, self.clips, self.device, self.reader)
        self.unreadable += data.unreadable
        model = build_model(cfg.spec).to(self.device)
        model.cnn.to(memory_format=self.memory_format)
        if self.init_state is not None:
            model.load_state_dict(self.init_state)
        optimizer = torch.optim.AdamW(model.parameters(), lr=o.lr, weight_decay=o.weight_decay)
        scheduler = _scheduler(cfg, optimizer, data.train.num_batches)
        scaler = torch.amp.GradScaler(self.device.type, enabled=self.precision == "fp16")
        weights = (
            class_weights(data.train.item_labels.tolist(), len(self.labels))
            if cfg.data.balance == "loss"
            else None
        )
        loss_fn = torch.nn.CrossEntropyLoss(
            weight=None if weights is None else weights.to(self.device),
            label_smoothing=o.label_smoothing,
            ignore_index=IGNORE,
        )
        session = Session(
            self,
            data,
            model,
            optimizer,
            scheduler,
            scaler,
            loss_fn,
            SpecAugment(cfg.augment, cfg.audio.sample_rate).to(self.device),
            _State.fresh(model),
            WeightAverage(model, o.ema_decay) if o.ema_decay > 0 else None,
        )
        resumed = self._resume(session.state, model, optimizer, scheduler, scaler, session.ema)
        log.info(
            "training %d parameters on %s (%s), %d crops an epoch, %d val clips%s",
            count_parameters(model),
            self.device,
            self.precision,
            len(data.train),
            len(data.val),
            f", resumed after epoch {session.state.epoch}" if resumed else "",
        )
        session.started = time.perf_counter() - session.state.seconds
        return session

    def _train_epoch(
        self, model, batches, epoch, optimizer, scheduler, scaler, loss_fn, spec_augment, ema=None
    ):
        model.train()
        # The loss is summed on the device and read once an epoch: no sync per step.
        total = torch.zeros((), device=self.device)
        n, t0 = 0, time.perf_counter()
        for wave, label in batches.epoch(epoch):
            with autocast(self.device, self.precision):
                feats = spec_augment.features(model.frontend, wave).contiguous(
                    memory_format=self.memory_format
                )
                loss = loss_fn(model.cnn(feats).float(), label)
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            if self.config.optim.grad_clip > 0:
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(model.parameters(), self.config.optim.grad_clip)
            scaler.step(optimizer)
            scaler.update()
            if ema is not None:
                ema.update(model)
            if scheduler.last_epoch < scheduler_total(scheduler):
                scheduler.step()
            total += loss.detach() * label.shape[0]
            n += label.shape[0]
        return float(total) / max(n, 1), n / (time.perf_counter() - t0)

    def _validate(self, model, data: _Data) -> dict[str, Any]:
        """Validation through the inference path that evaluate and predict take."""
        if not data.val:
            return {}
        batch = max(self.config.optim.batch_size, 64)
        probs, targets = score_clips(
            model, self.config.spec, data.val, batch, self.precision, data.reader
        )
        m = compute_metrics(
            targets,
            probs,
            self.labels,
            [speaker_key(c) for c in data.val],
            [c.corpus for c in data.val],
        )
        return {
            "val_loss": pooled_loss(probs, targets),
            "val_accuracy": m["accuracy"],
            "val_balanced_accuracy": m["balanced_accuracy"],
            "val_macro_balanced_accuracy": m["macro_balanced_accuracy"],
            "val_f1_macro": m["f1_macro"],
            "val_roc_auc": m["roc_auc"],
            "val_speaker_accuracy": m["speaker_accuracy"],
            **corpus_metrics(m),
        }

    def _report(self, metrics: dict[str, Any], state: _State) -> None:
        if not self.progress:
            return
        o = self.config.optim
        per_epoch = state.seconds / max(state.epoch, 1)
        left = 0 if state.stopped else (o.epochs - state.epoch) * per_epoch
        val = (
            f" val_loss {metrics['val_loss']:.4f}"
            f" val_bal_acc {metrics['val_balanced_accuracy']:.4f}"
            if "val_loss" in metrics
            else ""
        )
        log.info(
            "epoch %d/%d train_loss %.4f%s lr %.2e %.0f clips/s elapsed %s ETA %s%s",
            state.epoch,
            o.epochs,
            metrics["train_loss"],
            val,
            metrics["lr"],
            metrics["clips_per_s"],
            format_duration(state.seconds),
            format_duration(left),
            " (early stop)" if state.stopped else "",
        )

    # ------------------------------------------------------------------ resumable state

    def _state_path(self) -> Path | None:
        return self.state_dir / STATE_FILE if self.state_dir else None

    def _save_state(self, state, model, optimizer, scheduler, scaler, ema=None) -> None:
        path = self._state_path()
        if path is None:
            return
        torch_save(
            {
                "config": to_dict(self.config),
                "labels": list(self.labels),
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "scaler": scaler.state_dict(),
                **({"ema": ema.state_dict()} if ema is not None else {}),
                **state.to_dict(),
            },
            path,
        )

    def _resume(self, state, model, optimizer, scheduler, scaler, ema=None) -> bool:
        path = self._state_path()
        if path is None or not path.exists():
            return False
        data = torch_load(path)
        if data.get("config") != to_dict(self.config):
            raise ConfigError(
                f"{path}: saved state is from a different training config (start afresh: "
                "--restart); run settings such as the device or the workers may change"
            )
        model.load_state_dict(data["model"])
        optimizer.load_state_dict(data["optimizer"])
        scheduler.load_state_dict(data["scheduler"])
        scaler.load_state_dict(data["scaler"])
        if ema is not None:
            ema.load_state_dict(data["ema"])
        state.load(data)
        return True


@dataclass(eq=False)
class Session:
    """One training run in progress: ``step()`` trains and validates an epoch, ``finish()``
    returns the best model, calibrated. ``Trainer.fit`` steps one; cross-validation steps K."""

    trainer: Trainer
    data: _Data
    model: VoiceGenderNet
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler
    loss_fn: torch.nn.Module
    spec_augment: SpecAugment
    state: _State
    ema: WeightAverage | None = None
    started: float = 0.0

    @property
    def judged(self) -> VoiceGenderNet:
        """The weights validated and kept: the moving average when there is one."""
        return self.ema.model if self.ema is not None else self.model

    @property
    def done(self) -> bool:
        return self.state.epoch >= self.trainer.config.optim.epochs or self.state.stopped

    def step(self) -> dict[str, Any]:
        """Train and validate one epoch, save the state, tell the callbacks; the epoch's metrics."""
        t, cfg, state = self.trainer, self.trainer.config, self.state
        epoch = state.epoch + 1
        torch.manual_seed(cfg.seed * 1000 + epoch)
        t0 = time.perf_counter()
        train_loss, rate = t._train_epoch(
            self.model,
            self.data.train,
            epoch,
            self.optimizer,
            self.scheduler,
            self.scaler,
            self.loss_fn,
            self.spec_augment,
            self.ema,
        )
        metrics = {
            "epoch": epoch,
            "train_loss": train_loss,
            "lr": self.optimizer.param_groups[0]["lr"],
            "clips_per_s": rate,
        }
        if self._ships_fused(epoch):
            # The last epoch, the one that ships, is validated as it ships: with the probe,
            # fitted now (the CNN alone's scores kept beside), so a search ranks what answers.
            cnn = t._validate(self.judged, self.data)
            metrics.update({f"cnn_{k}": v for k, v in cnn.items() if isinstance(v, float)})
            self._fit_probe(self.judged)
        if validates(epoch, cfg.optim.epochs, t.run.validate_every):
            metrics.update(t._validate(self.judged, self.data))
        metrics["epoch_seconds"] = time.perf_counter() - t0
        state.record(metrics, self.judged, cfg.optim.patience, cfg.optim.select)
        metrics.update(best_so_far(state.best_metrics))
        metrics.update(recent_means(state.history))
        metrics.update(last_epoch(state.history))
        metrics["best_epoch"] = state.best_epoch
        metrics["early_stopped"] = state.stopped
        state.seconds = time.perf_counter() - self.started
        t._save_state(state, self.model, self.optimizer, self.scheduler, self.scaler, self.ema)
        t._report(metrics, state)
        for callback in t.callbacks:
            callback(metrics)
        return metrics

    def _ships_fused(self, epoch: int) -> bool:
        """Whether ``epoch`` is the validated last epoch of a run that keeps its last epoch
        (optim.select=last) with a speaker encoder; otherwise ``finish`` fits the probe on the
        epoch kept, which the CNN's own scores chose."""
        o = self.trainer.config.optim
        return (
            self.judged.probe is not None
            and bool(self.data.val)
            and o.select == "last"
            and epoch >= o.epochs
        )

    def _fit_probe(self, model: VoiceGenderNet) -> None:
        """Fit ``model``'s speaker-encoder probe on the training clips (vgd.probe)."""
        t = self.trainer
        probe = fit_model_probe(
            model,
            t.config.spec,
            self.data.train_clips,
            self.data.reader,
            t.config.model.encoder_c,
            t.embeddings,
        )
        log.info("speaker-encoder probe: %(windows)d windows of %(clips)d clips", probe)

    def finish(self) -> TrainResult:
        """The best epoch's weights in eval mode, temperature-scaled on validation if any."""
        t, state, model, data = self.trainer, self.state, self.model, self.data
        model.load_state_dict(state.best_state)
        model.eval()
        if model.probe is not None and not bool(model.probe.fitted):
            self._fit_probe(model)
        calibration = calibrate(model, t.config.spec, data.val, data.reader) if data.val else {}
        if calibration:
            log.info(
                "calibration: temperature %.3f, validation ECE %.4f → %.4f",
                calibration["temperature"],
                calibration["val_ece_before"],
                calibration["val_ece_after"],
            )
        return TrainResult(
            model=model,
            config=t.config,
            labels=t.labels,
            history=state.history,
            best_epoch=state.best_epoch,
            best=state.best_metrics,
            stopped_early=state.stopped,
            seconds=state.seconds,
            parameters=count_parameters(model),
            unreadable=t.unreadable,
            calibration=calibration,
        )


def validates(epoch: int, epochs: int, every: int) -> bool:
    """Whether ``epoch`` of ``epochs`` is validated when validating every ``every``: the first
    (so a search has its metric from the start), every ``every``-th, and the last."""
    return every <= 1 or epoch == 1 or epoch % every == 0 or epoch >= epochs


def validated(metrics: dict[str, Any]) -> bool:
    """Whether an epoch's metrics hold its validation (each epoch, or every Nth: validate_every)."""
    return "val_loss" in metrics


def check_validation_schedule(config: TrainConfig, every: int) -> None:
    """Refuse to skip validation where an epoch left unvalidated could be chosen or stop a run."""
    if every > 1 and config.optim.select != "last":
        raise ConfigError(
            f"validate_every: {every} needs optim.select=last (here {config.optim.select}): an "
            "epoch it does not validate could be the best one"
        )


def corpus_metrics(m: dict[str, Any]) -> dict[str, float]:
    """With 2+ validation corpora, each one's balanced accuracy and recalls as flat keys
    (``val_balanced_accuracy@librispeech``, ``val_recall_female@librispeech``)."""
    per = m.get("per_corpus") or {}
    if len(per) < 2:
        return {}
    out = {}
    for corpus, c in per.items():
        out[f"val_balanced_accuracy@{corpus}"] = c["balanced_accuracy"]
        for label, recall in c["recall"].items():
            if recall is not None:
                out[f"val_recall_{label}@{corpus}"] = recall
    return out


def best_so_far(best: dict[str, Any]) -> dict[str, float]:
    """``best_val_*``: each validation score of the best epoch so far, which a scheduler can rank
    trials by where a single epoch's score swings with the learning rate."""
    return {
        f"best_{k}": float(v)
        for k, v in best.items()
        if k.startswith("val_") and isinstance(v, (int, float)) and not isinstance(v, bool)
    }


RECENT_EPOCHS = 3
RECENT_KEYS = ("val_balanced_accuracy", "val_macro_balanced_accuracy")


def recent_means(history: list[dict[str, Any]], n: int = RECENT_EPOCHS) -> dict[str, float]:
    """``last3_val_*``: the mean of the last ``n`` validated epochs' balanced accuracies, a
    ranking that a single lucky epoch of a noisy curve cannot win (fewer epochs at the start)."""
    recent = {k: _validated(history, k)[-n:] for k in RECENT_KEYS}
    return {f"last{n}_{k}": sum(v) / len(v) for k, v in recent.items() if v}


def last_epoch(history: list[dict[str, Any]]) -> dict[str, float]:
    """``last_val_*``: the last validated epoch's balanced accuracies, for ranking trials by
    the epoch that ships (optim.select=last; with model.encoder, the one validated fused)."""
    last = {k: _validated(history, k)[-1:] for k in RECENT_KEYS}
    return {f"last_{k}": v[0] for k, v in last.items() if v}


def _validated(history: list[dict[str, Any]], key: str) -> list[float]:
    """``key``'s score at each epoch that has it (every epoch, or every Nth: validate_every)."""
    return [float(h[key]) for h in history if key in h]


def selection_score(metrics: dict[str, Any]) -> float:
    """What picks the best epoch: the macro over corpora of validation balanced accuracy (the
    balanced accuracy itself with one corpus), validation loss breaking ties."""
    score = metrics.get("val_macro_balanced_accuracy", metrics["val_balanced_accuracy"])
    return score - 1e-3 * metrics["val_loss"]


def scheduler_total(scheduler: torch.optim.lr_scheduler.LRScheduler) -> int:
    """Steps a scheduler allows (OneCycleLR raises if stepped past its total)."""
    return getattr(scheduler, "total_steps", 1 << 62)


@dataclass
class _State:
    """What the loop carries between epochs and across a resume."""

    epoch: int = 0
    history: list[dict[str, Any]] = field(default_factory=list)
    best_epoch: int = 0
    best_score: float = -math.inf
    best_metrics: dict[str, Any] = field(default_factory=dict)
    best_state: dict[str, torch.Tensor] = field(default_factory=dict)
    bad_epochs: int = 0
    stopped: bool = False
    seconds: float = 0.0

    @classmethod
    def fresh(cls, model: torch.nn.Module) -> _State:
        return cls(best_state=_cpu_copy(model))

    def record(
        self, metrics: dict[str, Any], model: torch.nn.Module, patience: int, select: str = "best"
    ) -> None:
        """Append an epoch; keep the best weights; decide on early stopping."""
        self.epoch = metrics["epoch"]
        self.history.append(metrics)
        # Without validation (or with select=last) the last epoch is the model; with it, the best
        # balanced accuracy wins, validation loss breaking ties so a plateau at 1.0 still selects
        # sensibly.
        judged = select == "best" and "val_balanced_accuracy" in metrics
        score = selection_score(metrics) if judged else float(self.epoch)
        if score > self.best_score:
            self.best_score, self.best_epoch, self.bad_epochs = score, self.epoch, 0
            self.best_metrics = dict(metrics)
            self.best_state = _cpu_copy(model)
        else:
            self.bad_epochs += 1
            self.stopped = patience > 0 and self.bad_epochs >= patience

    def to_dict(self) -> dict[str, Any]:
        return {
            "epoch": self.epoch,
            "history": self.history,
            "best_epoch": self.best_epoch,
            "best_score": self.best_score,
            "best_metrics": self.best_metrics,
            "best_state": self.best_state,
            "bad_epochs": self.bad_epochs,
            "stopped": self.stopped,
            "seconds": self.seconds,
        }

    def load(self, data: dict[str, Any]) -> None:
        for key in self.to_dict():
            setattr(self, key, data[key])


class WeightAverage:
    """An exponential moving average of a model's weights and buffers, updated every step.

    Averaging the last few hundred steps takes out much of the step-to-step noise that makes
    the scores of neighbouring epochs differ. The decay warms up as (1 + n) / (10 + n), so the
    average is not dominated by the initial weights.
    """

    def __init__(self, model: torch.nn.Module, decay: float):
        self.model = copy.deepcopy(model)
        self.model.requires_grad_(False)
        self.decay = decay
        self.steps = 0

    @torch.no_grad()
    def update(self, model: torch.nn.Module) -> None:
        """Move the average towards ``model``'s current weights."""
        self.steps += 1
        keep = min(self.decay, (1 + self.steps) / (10 + self.steps))
        pairs = zip(self.model.state_dict().values(), model.state_dict().values(), strict=True)
        for mine, theirs in pairs:
            if mine.is_floating_point():
                mine.lerp_(theirs.to(mine.dtype), 1.0 - keep)
            else:
                mine.copy_(theirs)

    def state_dict(self) -> dict[str, Any]:
        return {"weights": self.model.state_dict(), "steps": self.steps}

    def load_state_dict(self, data: dict[str, Any]) -> None:
        self.model.load_state_dict(data["weights"])
        self.steps = data["steps"]


def _cpu_copy(model: torch.nn.Module) -> dict[str, torch.Tensor]:
    # in the default layout whatever the training's: a checkpoint does not depend on it
    return {k: v.detach().to("cpu", copy=True).contiguous() for k, v in model.state_dict().items()}


def train(
    config: TrainConfig,
    run: RunConfig = RunConfig(),
    clips: Sequence[Clip] | None = None,
    callbacks: Iterable[Callback] = (),
    state_dir: str | Path | None = None,
    progress: bool = True,
    init_state: dict[str, torch.Tensor] | None = None,
    reader: Reader | None = None,
) -> TrainResult:
    """Train a model as ``config`` says, where ``run`` says; ``clips`` replaces the manifest's.

    The returned model is on the training device, in eval mode. ``init_state`` starts from given
    weights (e.g. a model trained on another corpus); ``reader`` reads the clips' audio instead
    of their files (e.g. a corpus shipped in memory).
    """
    trainer = Trainer(
        config,
        run,
        clips,
        state_dir=state_dir,
        progress=progress,
        init_state=init_state,
        reader=reader,
    )
    for cb in callbacks:
        trainer.add_callback(cb)
    return trainer.fit()


def checkpoint_from_state(state_path: str | Path, out_path: str | Path) -> Path:
    """Turn a training state file (as a trial leaves it) into a self-describing checkpoint."""
    from vgd.config import from_dict

    data = torch_load(state_path)
    config = from_dict(TrainConfig, data["config"])
    model = build_model(config.spec)
    model.load_state_dict(data["best_state"])
    best = {"best_epoch": data["best_epoch"], "train_seconds": data["seconds"]}
    best.update(data["best_metrics"])
    return save_checkpoint(out_path, model, config, best)


def save_outputs(result: TrainResult, out_dir: str | Path) -> dict[str, Path]:
    """Write model.pt (self-describing checkpoint), config.yaml, history.json and curves.png."""
    from vgd.plots import training_curves

    out = Path(out_dir)
    paths = {
        "model": out / "model.pt",
        "config": out / "config.yaml",
        "history": out / "history.json",
        "curves": out / "curves.png",
    }
    best = {"best_epoch": result.best_epoch, "train_seconds": result.seconds, **result.best}
    best.update(result.calibration)
    save_checkpoint(paths["model"], result.model, result.config, best)
    save_config(result.config, paths["config"])
    atomic_write_json(
        paths["history"],
        {
            "best_epoch": result.best_epoch,
            "stopped_early": result.stopped_early,
            "seconds": result.seconds,
            "parameters": result.parameters,
            "unreadable": result.unreadable,
            "calibration": result.calibration,
            "epochs": result.history,
        },
    )
    training_curves(result.history, paths["curves"])
    return paths
