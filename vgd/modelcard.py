"""MODEL_CARD.md, the one writer: for a promoted registry version (data, test metrics, config,
intended use and limits, provenance) and for the built-in model (its corpus, cross-validated
metrics, calibration, limits, recipe and how to rebuild it).

Pure text from objects: the registry and scripts/release_model.py gather the inputs and write
the file.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml

from vgd.checkpoint import LoadedModel
from vgd.config import TrainConfig, to_dict
from vgd.manifest import Clip, LabelStats, stats
from vgd.model import count_parameters
from vgd.splits import select


@dataclass(frozen=True)
class DataSummary:
    """Clips, speakers and hours per label for the parts of a manifest a model saw."""

    manifest: str
    corpora: tuple[LabelStats, ...]  # one row per corpus (the ``label`` field holds its name)
    parts: tuple[tuple[str, tuple[LabelStats, ...]], ...]  # ("training (train, val)", rows)


def summarize_data(
    clips: Sequence[Clip], config: TrainConfig, manifest: str, test_split: str = "test"
) -> DataSummary:
    """Per-label statistics of the training, validation and test clips of a split manifest."""
    train_splits = tuple(config.data.train_splits)
    groups = [(f"training ({', '.join(train_splits)})", select(clips, train_splits))]
    if config.data.val_split and config.data.val_split not in train_splits:
        groups.append(
            (f"validation ({config.data.val_split})", select(clips, [config.data.val_split]))
        )
    groups.append((f"test ({test_split})", select(clips, [test_split])))
    used = [c for _, part in groups for c in part]
    corpora = sorted({c.corpus for c in used})
    by_corpus = [
        LabelStats(name or "(unnamed)", *_totals([c for c in used if c.corpus == name]))
        for name in corpora
    ]
    return DataSummary(
        manifest=manifest,
        corpora=tuple(by_corpus),
        parts=tuple((name, tuple(stats(part))) for name, part in groups if part),
    )


def _totals(clips: Sequence[Clip]) -> tuple[int, int, float]:
    row = stats(clips)[-1]
    return row.clips, row.speakers, row.hours


def model_card(
    loaded: LoadedModel,
    metrics: Mapping[str, Any],
    data_stats: DataSummary,
    version_info: Mapping[str, Any],
) -> str:
    """The markdown model card of a promoted version."""
    name = version_info.get("version", "")
    labels = ", ".join(loaded.labels)
    head = [
        f"# Voice gender classifier {name}",
        "",
        f"A log-mel CNN ({count_parameters(loaded.model):,} parameters) that labels a speech "
        f"recording as one of: {labels}. Promoted {version_info.get('created', '')} on "
        f"{version_info.get('metric')} = {_num(version_info.get('score'))}.",
        *_encoder_lines(loaded.recipe),
    ]
    sections = [
        head,
        _data_section(data_stats, version_info),
        _metrics_section(metrics),
        _config_section(loaded.recipe),
        _use_section(loaded, metrics, data_stats),
        _provenance_section(loaded, version_info),
    ]
    return "\n\n".join("\n".join(s) for s in sections) + "\n"


def _encoder_lines(config: TrainConfig) -> list[str]:
    """What a model with a speaker encoder adds, and whose weights those are."""
    if config.model.encoder == "none":
        return []
    return [
        "",
        "Beside the CNN, a pretrained speaker encoder (the GE2E encoder of Resemblyzer 0.1.4,",
        "Apache License 2.0: `vgd/pretrained/SPEAKER_ENCODER_LICENSE`) embeds each window, a",
        "logistic regression fitted on the training clips' embeddings reads gender from it, and",
        "the model answers the mean of the two's probabilities.",
    ]


def _num(value: Any, digits: int = 4) -> str:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return f"{value:.{digits}f}"
    return "n/a"


def _data_section(data: DataSummary, info: Mapping[str, Any]) -> list[str]:
    lines = [
        "## Data",
        "",
        f"Manifest `{info.get('manifest', data.manifest)}`, data version "
        f"`{info.get('data_version', '?')}` ({info.get('data_version_source', '?')}).",
        "",
        "| corpus | clips | speakers | hours |",
        "|---|---:|---:|---:|",
    ]
    lines += [f"| {r.label} | {r.clips} | {r.speakers} | {r.hours:.2f} |" for r in data.corpora]
    lines += ["", "| part | gender | clips | speakers | hours |", "|---|---|---:|---:|---:|"]
    for part, rows in data.parts:
        lines += [
            f"| {part} | {r.label} | {r.clips} | {r.speakers} | {r.hours:.2f} |" for r in rows
        ]
    return lines


def _metrics_section(m: Mapping[str, Any]) -> list[str]:
    unreadable = m.get("n_unreadable") or 0
    lines = [
        "## Metrics",
        "",
        f"On {m.get('n_clips', '?')} evaluation clips from {m.get('n_speakers', '?')} speakers "
        "(vgd evaluate and the pipeline score the test split: speakers never heard in training)"
        + (f"; {unreadable} unreadable clip(s) left out." if unreadable else "."),
        "",
        "| metric | value |",
        "|---|---:|",
        f"| accuracy | {_num(m.get('accuracy'))} |",
        f"| balanced accuracy | {_num(m.get('balanced_accuracy'))} |",
        f"| macro F1 | {_num(m.get('f1_macro'))} |",
        f"| ROC-AUC | {_num(m.get('roc_auc'))} |",
        f"| speaker-level accuracy | {_num(m.get('speaker_accuracy'))} |",
        f"| speaker-level balanced accuracy | {_num(m.get('speaker_balanced_accuracy'))} |",
        "",
        "| gender | precision | recall | F1 | clips |",
        "|---|---:|---:|---:|---:|",
    ]
    for label, c in (m.get("per_class") or {}).items():
        lines.append(
            f"| {label} | {_num(c.get('precision'))} | {_num(c.get('recall'))} "
            f"| {_num(c.get('f1'))} | {c.get('support', '?')} |"
        )
    lines.append("")
    lines.append(
        "Speaker-level accuracy pools each speaker's clip probabilities into one decision."
    )
    return lines


def _recipe_yaml(config: TrainConfig) -> str:
    return yaml.safe_dump(to_dict(config), sort_keys=False).rstrip()


def _config_section(config: TrainConfig) -> list[str]:
    return ["## Config", "", "```yaml", _recipe_yaml(config), "```"]


def _use_section(loaded: LoadedModel, metrics: Mapping[str, Any], data: DataSummary) -> list[str]:
    labels = " or ".join(f'"{x}"' for x in loaded.labels)
    corpora = ", ".join(r.label for r in data.corpora) or "the training corpora"
    lines = [
        "## Intended use",
        "",
        "Estimating the perceived voice category of adult speech in aggregate: describing or "
        "balancing speech corpora, and research on speech technology. Not for inferring, "
        "verifying or recording any person's gender identity, and not for decisions about "
        "individuals.",
        "",
        "## Limits",
        "",
        f"- **A binary label.** The model always answers {labels}. Speakers who are neither "
        "female nor male, non-binary people and people whose voice does not match their gender "
        "still receive one of these labels; its probabilities measure how the voice resembles the "
        "training voices, not anyone's gender.",
        "- **Children's voices.** Not labelled as a group in the training data and not "
        "evaluated; children's higher pitch and shorter vocal tracts overlap adult female "
        "voices, so many children are likely to be labelled female whatever their gender.",
        "- **Recording conditions unlike the training data.** Measured on held-out speakers of "
        f"{corpora}; other microphones, telephone or compressed audio, noise, reverberation, "
        f"languages, accents or ages can lower accuracy. Clips much shorter than the "
        f"{loaded.spec.window.seconds:g} s training window carry less evidence.",
    ]
    recall = {k: v.get("recall") for k, v in (metrics.get("per_class") or {}).items()}
    known = {k: v for k, v in recall.items() if isinstance(v, (int, float))}
    if len(known) >= 2:
        low, high = min(known, key=known.get), max(known, key=known.get)
        if known[high] - known[low] >= 0.02:
            lines.append(
                f"- **Unequal errors.** Recall is {_num(known[low], 3)} for {low} and "
                f"{_num(known[high], 3)} for {high} voices on the test set."
            )
    if any(r.label == "synth" for r in data.corpora):
        lines.append(
            "- **Synthetic training data.** The `synth` corpus is generated voices, not "
            "recordings of people: these metrics say nothing about accuracy on real speech."
        )
    return lines


def _provenance_section(loaded: LoadedModel, info: Mapping[str, Any]) -> list[str]:
    rows = [
        ("version", info.get("version")),
        ("promoted", info.get("created")),
        ("source checkpoint", info.get("source")),
        ("source metrics", info.get("source_metrics")),
        ("checkpoint sha256", info.get("sha256")),
        ("git commit", info.get("git_commit")),
        ("data version", f"{info.get('data_version')} ({info.get('data_version_source')})"),
        ("vgd version (trained / promoted)", f"{loaded.vgd_version} / {info.get('vgd_version')}"),
    ]
    if info.get("forced"):
        rows.append(("forced", "yes: promoted with --force, without the usual checks"))
    if loaded.spec.bias:
        rows.append(("adapted (vgd adapt)", _adapted(loaded)))
    lines = ["## Provenance", "", "| | |", "|---|---|"]
    return lines + [f"| {k} | `{v}` |" for k, v in rows]


def _adapted(loaded: LoadedModel) -> str:
    """The bias ``vgd adapt`` fitted, and on what (the record it left in the metrics)."""
    bias = loaded.spec.bias[-1]
    text = f"bias {bias:+.2f} on {loaded.labels[-1]}"
    fitted = loaded.metrics.get("adapted") or {}
    if fitted.get("speakers"):
        speakers = " and ".join(f"{n} {label}" for label, n in fitted["speakers"].items())
        text += f", fitted on {fitted['clips']} clips of {speakers} speakers"
    return text


# ----------------------------------------------------------------------------- built-in model


CREDITS = {
    "librispeech": (
        "LibriSpeech train-clean-100: audiobooks read by LibriVox volunteers. (c) 2014 Vassil "
        "Panayotov, Creative Commons Attribution 4.0 (CC BY 4.0); labels from its SPEAKERS.TXT."
    ),
    "speechocean762": (
        "speechocean762 (train half, adults): English read by Mandarin-L1 speakers in quiet "
        "rooms. Free for commercial and non-commercial use (the corpus's README and paper; "
        'Apache-2.0 on its Hugging Face copy). Credit: "speechocean762: An Open-Source '
        'Non-native English Speech Corpus for Pronunciation Assessment", Zhang et al., '
        "Interspeech 2021; labels from its spk2gender."
    ),
}


def _spread(s: Mapping[str, float]) -> str:
    return f"{s['mean']:.4f} | {s['std']:.4f} | {s['min']:.4f}"


def _header(*columns: str) -> list[str]:
    """A Markdown table's header and separator rows."""
    return ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]


def _corpus_rows(metrics: Mapping[str, Any]) -> list[str]:
    rows = _header("corpus", "clips", "female speakers", "male speakers", "source and licence")
    for name, c in metrics["corpora"].items():
        sp = c["speakers"]
        credit = CREDITS.get(name, "(no credit recorded)")
        rows.append(f"| {name} | {c['clips']} | {sp['female']} | {sp['male']} | {credit} |")
    return rows


def _cv_rows(cv: Mapping[str, Any]) -> list[str]:
    rows = _header(
        "scored on", "balanced accuracy", "± std", "min", "recall female", "recall male", "gap"
    )
    for name, m in cv["per_corpus"].items():
        f, mm = m["recall_female"]["mean"], m["recall_male"]["mean"]
        rows.append(
            f"| {name} | {_spread(m['balanced_accuracy'])} | {f:.4f} | {mm:.4f} "
            f"| {abs(f - mm):.4f} |"
        )
    rows.append(f"| macro over corpora | {_spread(cv['macro_balanced_accuracy'])} | | | |")
    return rows


def _cross_rows(cross: Sequence[Mapping[str, Any]]) -> list[str]:
    rows = _header(
        "trained on",
        "scored on",
        "runs",
        "balanced accuracy",
        "recall female",
        "recall male",
        "unknown",
    )
    for x in cross:
        rows.append(
            f"| {x['train']} | {x['test']} | {x['runs']} | {x['balanced_accuracy']:.4f} "
            f"| {x['recall_female']:.4f} | {x['recall_male']:.4f} | {x['unknown']:.3f} |"
        )
    return rows


def _risk_rows(metrics: Mapping[str, Any]) -> list[str]:
    rows = _header(
        "corpus", "threshold", "unknown", "accuracy answered", "balanced accuracy answered"
    )
    for name, points in metrics["risk_coverage"].items():
        for x in points:
            mark = " (default)" if x["threshold"] == metrics["default_threshold"] else ""
            forced = " (forced choice)" if x["threshold"] == 0.5 else ""
            rows.append(
                f"| {name} | {x['threshold']:.1f}{mark}{forced} | {x['unknown']:.3f} "
                f"| {x['accuracy']:.4f} | {x['balanced_accuracy']:.4f} |"
            )
    return rows


SCHEDULE_KEYS = ("epochs", "crops_per_clip")  # what a schedule is: epochs of how many crops


def _schedule_lines(schedule: Mapping[str, Any] | None) -> list[str]:
    """What the comparison trained each recipe on, and whether the search ranked on the same."""
    if not schedule:
        return []
    lines = ["", f"Each recipe is compared on {_per_epoch(schedule)},"]
    if not (search := schedule.get("search")):
        return [*lines, "the schedule the final model trains on."]
    same = all(search.get(key) == schedule[key] for key in SCHEDULE_KEYS)
    ranked = "the same schedule" if same else f"{_per_epoch(search)}, the schedule of its space"
    return [
        *lines,
        "the schedule the final model trains on;",
        f"the search ranked its trials on {ranked}.",
    ]


def _per_epoch(schedule: Mapping[str, Any]) -> str:
    crops = schedule["crops_per_clip"]
    per_epoch = "every window of each clip" if crops == 0 else f"{crops} crop(s) of each clip"
    return f"{schedule['epochs']} epochs of {per_epoch}"


def _choice_rows(choice: Mapping[str, Any]) -> list[str]:
    rows = []
    for other, p in choice["paired"].items():
        base = p["base"]
        rows += _header("scored on", base, other, f"{other} − {base}", "± spread", "wins", "losses")
        for name, x in p.items():
            if isinstance(x, dict):
                rows.append(
                    f"| {name} | {x[base]:.4f} | {x[other]:.4f} | {x['mean_diff']:+.4f} "
                    f"| {x['spread']:.4f} | {x['wins']} | {x['losses']} |"
                )
    return rows


def _elsewhere_section(elsewhere: Mapping[str, Any]) -> list[str]:
    """The shipped file on voices no corpus here holds: the built-in synthetic ones."""
    if not (synth := elsewhere.get("synthetic")):
        return []
    rows = _header(
        "draw (seed)",
        "clips",
        "balanced accuracy",
        "recall female",
        "recall male",
        "ROC AUC",
        "unknown",
    )
    for d in synth["draws"]:
        rows.append(
            f"| {d['seed']} | {d['clips']} | {d['balanced_accuracy']:.4f} "
            f"| {d['recall_female']:.4f} | {d['recall_male']:.4f} | {_num(d['roc_auc'])} "
            f"| {d['unknown']:.3f} |"
        )
    s = synth["summary"]
    rows.append(
        f"| mean ± std | | {s['balanced_accuracy']['mean']:.4f} ± "
        f"{s['balanced_accuracy']['std']:.4f} | {s['recall_female']['mean']:.4f} "
        f"| {s['recall_male']['mean']:.4f} | {_num(s['roc_auc']['mean'])} "
        f"| {s['unknown']['mean']:.3f} |"
    )
    return [
        "## Elsewhere: synthetic voices",
        "No corpus of real voices beyond the two above is here, so this file is also scored on",
        "the built-in synthetic voices (`vgd data synth`: source-filter voices with a glottal",
        "pulse, formants and jitter, which this model never heard), as `vgd evaluate` scores",
        f"them: {len(synth['draws'])} seeded draws of {synth['speakers']} speakers × "
        f"{synth['utterances']} clips, every clip.",
        f"Unknown: the share under the default threshold ({synth['threshold']:g}).",
        "",
        *rows,
        "",
    ]


def _outside_lines(elsewhere: Mapping[str, Any], macro: Mapping[str, float]) -> list[str]:
    """The Limits line on voices outside the training data: measured, or said not to be."""
    if not (synth := elsewhere.get("synthetic")):
        return [
            "  rooms): other languages, children, telephone or far-field recordings and synthetic",
            "  voices are outside its data, and its accuracy there is not measured here.",
        ]
    accuracy = synth["summary"]["balanced_accuracy"]
    return [
        "  rooms): other languages, children, telephone or far-field recordings are outside its",
        "  data, and its accuracy there is not measured here. Synthetic voices are outside it",
        f"  too; on the built-in ones (above) it scores {accuracy['mean']:.4f} ± "
        f"{accuracy['std']:.4f} balanced accuracy,",
        f"  against {macro['mean']:.4f} on unheard speakers of its own corpora.",
    ]


def builtin_model_card(config: TrainConfig, metrics: Mapping[str, Any]) -> str:
    """MODEL_CARD.md text for the built-in model, from scripts/release_model.py's metrics."""
    from vgd.pretrained import NAME, REBUILD

    cal, choice = metrics["calibration"], metrics["recipe"]
    speakers = sum(sum(c["speakers"].values()) for c in metrics["corpora"].values())
    names = " and ".join(metrics["corpora"])
    folds = f"{metrics['cv_seeds']} fold seeds × {metrics['cv_k']} folds"
    if config.optim.select == "last":  # the folds keep their last epoch, as the final fit does
        final_epochs = f"{metrics['epochs']} epochs, as each fold did, and keeps the last."
        fold_epoch = "validates on one (reported, not used to pick: each keeps its last epoch)"
    else:
        final_epochs = f"the folds' median best epoch ({metrics['epochs']})."
        fold_epoch = "picks its epoch on one"
    lines = [
        f"# vgd built-in model: `{NAME}`",
        "",
        "A small CNN on log-mel features that says whether an adult voice in read English speech",
        f"is `female` or `male`, with calibrated probabilities. It learnt from {speakers} speakers",
        f"of two corpora of real speech, {names}.",
        *_encoder_lines(config),
        "",
        "## Data",
        *_corpus_rows(metrics),
        "",
        "Training samples speakers evenly (a speaker of 20 clips weighs as much as one of a",
        "single clip), with the genders even within each corpus. The final model trains on every",
        f"speaker for {final_epochs} Its temperature",
        f"({metrics['temperature']:.3f}) is fitted on all folds' {cal['clips']} out-of-fold test",
        f"clips together: ECE {cal['ece_before']:.4f} at T = 1, {cal['ece_after']:.4f} at the",
        "fitted T (on the clips it was fitted to).",
        "",
        "## Which recipe",
        f"The search's pick against the default on the same fresh folds ({folds}, paired):",
        f"{choice['why']}. **Shipped: {choice['chosen']}.**",
        *_schedule_lines(choice.get("schedule")),
        *(["", *rows, ""] if (rows := _choice_rows(choice)) else [""]),
        f"## Cross-validation ({metrics['cv_folds']} speaker-disjoint folds, on "
        f"{metrics['cv_device']})",
        f"{folds} over both corpora pooled, stratified by corpus × gender. Each fold trains on",
        f"the speakers of K-2 folds, {fold_epoch}",
        "and is scored on the last, whose voices it never heard. Per-gender recall: the share of",
        "each gender's clips labelled right; gap: their difference.",
        "",
        *_cv_rows(metrics["cv"]),
        "",
        "## Cross-corpus (leave one corpus out)",
        "The recipe trained on one corpus and scored on every clip of the other: the honest",
        "figure for recordings unlike any it learnt from.",
        "",
        *_cross_rows(metrics["cross_corpus"]),
        "",
        "## Unknown answers (risk–coverage)",
        '`vgd predict` answers "unknown" when the top calibrated probability is under the',
        f"threshold ({metrics['default_threshold']:g} by default). Out-of-fold test clips of the",
        "cross-validation above, at the shipped temperature: the share answered unknown, and",
        "accuracy on the clips that are answered (0.5: every clip answered).",
        "",
        *_risk_rows(metrics),
        "",
        *_elsewhere_section(metrics.get("elsewhere", {})),
        "## Intended use",
        "Voice gender detection of adult read speech: one voice per file, a few seconds or more.",
        "Two labels (`female`, `male`) as the corpora record them; vgd adds `unknown` under the",
        "confidence threshold and `nonspeech` where no speech is found.",
        "",
        "## Limits",
        f"- Read English by {speakers} adults, native (audiobooks) and Mandarin-accented (quiet",
        *_outside_lines(metrics.get("elsewhere", {}), metrics["cv"]["macro_balanced_accuracy"]),
        "- Gender is inferred from the voice alone; it is not a person's gender identity. Do not",
        "  use it to make decisions about individuals.",
        "- Few speakers per fold: the fold-to-fold spread above is the honest error bar.",
        "",
        "## Recipe",
        "```yaml",
        _recipe_yaml(config),
        "```",
        "",
        "## Rebuild",
        f"`{REBUILD}` (on the CPU, with ../shared/data) runs the search, the",
        "comparison and the final fit again; the same inputs on the same CPU give the same",
        "model.pt.",
        "",
    ]
    return "\n".join(lines)
