"""A peer for the release comparison: a linear probe on a speaker encoder that heard thousands.

    python scripts/embedding_peer.py results/release/compare/results.json \
        --manifest results/release/pooled.csv --frontend windows \
        --cache /tmp/emb.npz --out results/cross_corpus/embedding_peer/windows

The encoder is Resemblyzer's GE2E speaker encoder (a 3-layer LSTM over 40 mel bands, trained
for speaker verification), whose weights vgd ships (vgd.encoder). Each clip is embedded once and
the embeddings are cached in ``--cache``:

- ``--frontend resemblyzer``: Resemblyzer's own path (its volume normalisation, WebRTC VAD
  trimming, librosa mel, the mean of its 1.6 s partials): one embedding per clip. Needs
  `pip install resemblyzer`, which is not a vgd dependency;
- ``--frontend windows``: vgd's windows of the recipe (``--config``; the windows `vgd predict`
  scores), each embedded by ``vgd.encoder``: one embedding per window, as a model with
  ``model.encoder: ge2e`` computes them (round 27 measured it with a copy of this code reading
  the package's weights; the two agree to 2.5e-7).

Then, on exactly the runs of the comparison report (its fold seeds and count; leave-one-corpus-out
with the same validation speakers), a logistic regression is fitted on the training speakers'
window embeddings, weighted as vgd balances (each speaker equal within its corpus × gender), its
C chosen on the validation speakers; each test clip's probability is its windows' mean, as vgd
pools. It is scored alone, beside the report's own run of ``--recipe`` (its saved logits), and
as the mean of the two's probabilities: what more speakers, heard by an encoder, would add.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from vgd.audio import load_audio
from vgd.calibration import nll, pooled_probs
from vgd.config import LABELS, load_config
from vgd.crossval import leave_corpus_out, test_fold_clips
from vgd.evaluate import compute_metrics
from vgd.inference import wave_windows
from vgd.io import atomic_write_json
from vgd.manifest import Clip, read_manifest
from vgd.splits import corpora_of, speaker_folds, speaker_key

C_GRID = (0.01, 0.1, 1.0, 10.0)
THRESHOLD = 0.7


def resemblyzer_embedder() -> Callable[[Clip], np.ndarray]:
    """Resemblyzer's own path: one (1, 256) embedding per clip."""
    from resemblyzer import VoiceEncoder, preprocess_wav

    encoder = VoiceEncoder("cpu", verbose=False)
    return lambda clip: encoder.embed_utterance(preprocess_wav(load_audio(clip.path), 16000))[None]


def window_embedder(recipe: Path) -> Callable[[Clip], np.ndarray]:
    """vgd's windows of ``recipe``, each embedded by vgd's copy of the encoder (vgd.encoder:
    the same weights, a torchaudio mel; what a model with ``model.encoder: ge2e`` computes)."""
    import torch

    from vgd.encoder import load_speaker_encoder

    spec, encoder = load_config(recipe).spec, load_speaker_encoder()

    @torch.no_grad()
    def embed(clip: Clip) -> np.ndarray:
        windows = np.stack(list(wave_windows(load_audio(clip.path), spec, clip.path)))
        return encoder(torch.from_numpy(windows)).numpy()

    return embed


def embed_clips(
    clips: list[Clip], embed: Callable[[], Callable], cache: Path | None
) -> list[np.ndarray]:
    """Each clip's window embeddings, read from ``cache`` when it holds exactly these paths."""
    paths = [c.path for c in clips]
    if cache is not None and cache.exists():
        saved = np.load(cache, allow_pickle=False)
        if list(saved["paths"]) == paths:
            return np.split(saved["emb"], np.cumsum(saved["counts"])[:-1])
    one, out, start = embed(), [], time.monotonic()
    for i, clip in enumerate(clips, 1):
        out.append(np.asarray(one(clip), dtype=np.float32))
        if i % 100 == 0 or i == len(clips):
            rate = i / (time.monotonic() - start)
            eta = (len(clips) - i) / rate
            print(f"embedding: {i}/{len(clips)} {rate:.1f} clips/s ETA {eta:.0f} s")
    if cache is not None:
        counts = np.array([len(e) for e in out])
        np.savez(cache, paths=np.array(paths), counts=counts, emb=np.concatenate(out))
    return out


def balance_weights(clips: list[Clip]) -> np.ndarray:
    """Each speaker weighs the same within its corpus × gender, each such stratum the same."""
    per_speaker = Counter(speaker_key(c) for c in clips)
    speakers_in = Counter((c.corpus, c.label) for c in {speaker_key(c): c for c in clips}.values())
    share = [per_speaker[speaker_key(c)] * speakers_in[(c.corpus, c.label)] for c in clips]
    w = 1.0 / np.array(share, dtype=float)
    return w * len(clips) / w.sum()


def clip_probs(probe, emb: list[np.ndarray], rows: list[int]) -> np.ndarray:
    """Each clip's probabilities: the mean over its windows, as vgd pools them."""
    return np.stack([probe.predict_proba(emb[i]).mean(axis=0) for i in rows])


def fit_probe(emb: list[np.ndarray], split: list[Clip], idx: dict[str, list[int]], grid=C_GRID):
    """The logistic regression whose C scores best on the validation speakers: the macro over
    corpora, ties (small validation sets tie often) broken by the lower log loss."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    train = idx["train"]
    x = np.concatenate([emb[i] for i in train])
    y = np.concatenate([[LABELS.index(split[i].label)] * len(emb[i]) for i in train])
    clip_w = balance_weights([split[i] for i in train])
    w = np.concatenate([[clip_w[j] / len(emb[i])] * len(emb[i]) for j, i in enumerate(train)])
    val = [split[i] for i in idx["val"]]
    best = None
    for c in grid:
        probe = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=5000))
        probe.fit(x, y, logisticregression__sample_weight=w)
        probs = clip_probs(probe, emb, idx["val"])
        score = (metrics(probs, val)["macro"], -nll(probs, [LABELS.index(c.label) for c in val]))
        if best is None or score > best[0]:
            best = (score, c, probe)
    return best[1], best[2]


def metrics(probs: np.ndarray, test: list[Clip]) -> dict[str, Any]:
    """Per corpus: balanced accuracy, recalls, the "unknown" share at 0.7 and the accuracy of
    the clips answered; and the macro over corpora."""
    y = np.array([LABELS.index(c.label) for c in test])
    corpus = np.array([c.corpus for c in test])
    m = compute_metrics(y, probs, LABELS, corpora=list(corpus))
    per = {}
    for name, cm in m["per_corpus"].items():
        p, t = probs[corpus == name], y[corpus == name]
        answered = p.max(axis=1) >= THRESHOLD
        right = p.argmax(axis=1) == t
        per[name] = {
            **cm,
            "unknown": float(1 - answered.mean()),
            "forced": float(right.mean()),
            "answered": float(right[answered].mean()) if answered.any() else None,
        }
    return {"per_corpus": per, "macro": m["macro_balanced_accuracy"]}


def vgd_probs(vgd: dict[str, Any], test: list[Clip]) -> np.ndarray:
    """The comparison run's clip probabilities (its temperature), in the order of ``test``."""
    probs = np.zeros((len(test), len(LABELS)))
    for name, saved in vgd["oof"].items():
        rows = [i for i, c in enumerate(test) if c.corpus == name]
        if saved["targets"] != [LABELS.index(test[i].label) for i in rows]:
            raise ValueError(
                f"{vgd['kind']} seed {vgd['seed']} fold {vgd['fold']}: its saved "
                f"{name} clips are not this split's (another manifest or folds)"
            )
        logits = [np.asarray(z) for z in saved["logits"]]
        probs[rows] = pooled_probs(logits, vgd.get("temperature", 1.0))
    return probs


def one_run(split: list[Clip], emb: list[np.ndarray], run: dict[str, Any], vgd: dict | None, grid):
    """The probe fitted on the run's train speakers, scored on its test clips; and beside it the
    report's run on the same split, and the mean of the two's probabilities."""
    idx = {s: [i for i, c in enumerate(split) if c.split == s] for s in ("train", "val", "test")}
    c, probe = fit_probe(emb, split, idx, grid)
    test = [split[i] for i in idx["test"]]
    probs = {"probe": clip_probs(probe, emb, idx["test"])}
    if vgd is not None:
        probs["vgd"] = vgd_probs(vgd, test)
        probs["mean"] = (probs["probe"] + probs["vgd"]) / 2
    out = {name: {**run, "C": c, **metrics(p, test)} for name, p in probs.items()}
    print(f"{run} C={c}: " + ", ".join(f"{n} {m['macro']:.4f}" for n, m in out.items()))
    return out


def splits(clips: list[Clip], report: dict[str, Any], val_fraction: float) -> Iterator[tuple]:
    """(run, its clips with splits) for every leave-one-corpus-out and pooled run of the report."""
    for seed in report["seeds"]:
        for corpus in corpora_of(clips):
            train = "+".join(n for n in corpora_of(clips) if n != corpus)
            run = {"kind": "loco", "train": train, "seed": seed, "fold": 0}
            yield run, leave_corpus_out(clips, corpus, val_fraction, seed)
        folds = speaker_folds(clips, report["folds"], seed)
        for k in range(report["folds"]):
            run = {"kind": "pooled", "train": "pooled", "seed": seed, "fold": k}
            yield run, test_fold_clips(clips, folds, k, seed)


def runs(clips, emb, report, val_fraction: float, recipe: str, grid=C_GRID) -> dict[str, list]:
    """Every run of the report, for the probe, the recipe's saved run and their mean."""
    saved = {
        (r["kind"], r["train"], r["seed"], r["fold"]): r
        for r in report["runs"]
        if r["recipe"] == recipe
    }
    out: dict[str, list[dict[str, Any]]] = {}
    for run, split in splits(clips, report, val_fraction):
        for name, r in one_run(split, emb, run, saved.get(tuple(run.values())), grid).items():
            out.setdefault(name, []).append(r)
    return out


def table(results: list[dict[str, Any]]) -> list[str]:
    """The comparison's rows: train → test, mean ± std, min, recalls, unknown, answered − forced."""
    lines = [
        f"{'train → test':<34} {'runs':>4} {'bal acc':>8} {'± std':>7} {'min':>7} "
        f"{'rec F':>7} {'rec M':>7} {'unknown':>7} {'answered':>8} {'forced':>7}"
    ]
    groups: dict[str, list[dict[str, Any]]] = {}
    for r in results:
        for name, m in r["per_corpus"].items():
            groups.setdefault(f"{r['train']} → {name}", []).append(m)
    for key in sorted(groups, key=lambda k: (k.startswith("pooled"), k)):
        ms = groups[key]
        ba = np.array([m["balanced_accuracy"] for m in ms])
        rec = [np.mean([m["recall"][g] for m in ms]) for g in LABELS]
        unknown, forced = (np.mean([m[k] for m in ms]) for k in ("unknown", "forced"))
        answered = [m["answered"] for m in ms if m["answered"] is not None]
        shown = f"{np.mean(answered):>8.4f}" if answered else f"{'-':>8}"
        lines.append(
            f"{key:<34} {len(ms):>4} {ba.mean():>8.4f} {std(ba):>7.4f} {ba.min():>7.4f} "
            f"{rec[0]:>7.4f} {rec[1]:>7.4f} {unknown:>7.3f} {shown} {forced:>7.4f}"
        )
    macro = np.array([r["macro"] for r in results if r["kind"] == "pooled"])
    lines.append(
        f"{'pooled → macro':<34} {len(macro):>4} {macro.mean():>8.4f} {std(macro):>7.4f} "
        f"{macro.min():>7.4f}"
    )
    return lines


def paired(results: dict[str, list[dict[str, Any]]], base: str = "vgd") -> list[str]:
    """Each other model minus ``base`` on the same pooled folds: mean, spread, wins, losses."""
    if base not in results:
        return []
    lines = [
        f"paired by pooled fold: model − {base}",
        f"{'model':<8} {'scored on':<16} {base:>8} {'model':>8} {'diff':>8} {'± spread':>9} "
        f"{'wins':>5} {'losses':>6}",
    ]
    ref = [r for r in results[base] if r["kind"] == "pooled"]
    for name, rs in results.items():
        if name == base:
            continue
        ours = [r for r in rs if r["kind"] == "pooled"]
        for on in ["macro", *ref[0]["per_corpus"]]:
            a = np.array([score(r, on) for r in ref])
            b = np.array([score(r, on) for r in ours])
            d = b - a
            lines.append(
                f"{name:<8} {on:<16} {a.mean():>8.4f} {b.mean():>8.4f} {d.mean():>+8.4f} "
                f"{std(d):>9.4f} {int((d > 0).sum()):>5} {int((d < 0).sum()):>6}"
            )
    return lines


def score(run: dict[str, Any], on: str) -> float:
    """A run's macro, or one corpus's balanced accuracy."""
    return run["macro"] if on == "macro" else run["per_corpus"][on]["balanced_accuracy"]


def std(x: np.ndarray) -> float:
    """The sample standard deviation, as the comparison's table reports it."""
    return float(np.std(x, ddof=1)) if len(x) > 1 else 0.0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("report", type=Path, help="a scripts/cross_corpus.py results.json (its runs)")
    p.add_argument("--manifest", required=True, type=Path)
    p.add_argument("--frontend", choices=("resemblyzer", "windows"), default="windows")
    p.add_argument(
        "--config",
        type=Path,
        default=Path("vgd/pretrained/recipe.yaml"),
        help="the recipe whose windows --frontend windows embeds",
    )
    p.add_argument("--recipe", default="default", help="the report's recipe to pair with")
    p.add_argument(
        "--c",
        type=float,
        nargs="+",
        default=list(C_GRID),
        help="the probe's inverse L2 strengths to choose from on validation",
    )
    p.add_argument("--val-fraction", type=float, default=0.2, help="LOCO's validation speakers")
    p.add_argument("--cache", type=Path, help="an .npz to keep the embeddings in")
    p.add_argument("--out", type=Path, help="a folder for results.json and table.txt")
    args = p.parse_args(argv)
    report = json.loads(args.report.read_text())
    clips = read_manifest(args.manifest)
    if args.frontend == "resemblyzer":
        emb = embed_clips(clips, resemblyzer_embedder, args.cache)
    else:
        emb = embed_clips(clips, lambda: window_embedder(args.config), args.cache)
    results = runs(clips, emb, report, args.val_fraction, args.recipe, tuple(args.c))
    lines = [line for name, rs in results.items() for line in (f"{name}:", *table(rs), "")]
    lines += paired(results)
    print("\n".join(lines))
    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        meta = {
            "report": str(args.report),
            "frontend": args.frontend,
            "recipe": args.recipe,
            "seeds": report["seeds"],
            "folds": report["folds"],
            "c": args.c,
        }
        atomic_write_json(args.out / "results.json", {**meta, "runs": results})
        (args.out / "table.txt").write_text("\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
