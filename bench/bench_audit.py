"""Label audit recall on FER2013 validation with labels moved on purpose, and the time each see-inside feature takes.

    .venv/bin/python bench/bench_audit.py [--zip ../shared/datasets/fer2013/images.zip] [--model models/fer2013.keras]

Recall: 150 validation images (a fixed seed) get their label moved to another class, drawn uniformly;
the rankings are scored by how many of the 150 land among the 300 most suspicious. Rows:
- "probability of the given label": one plain pass of the model, ranked by p(given) alone;
- "audit": what fer.explain.audit ranks by, cleanlab's label quality on the mirror-averaged probabilities;
- cleanlab's other scores on the same probabilities, for the record.
The audit's score (cleanlab self_confidence) was chosen on seeds 1-3 before seed 0 (the recorded one) was run;
--seeds 1 2 3 shows the selection runs.

Timings (the machine's 2 CPU cores are shared with other engineers, so they are noisy):
the audit of the validation split (mirror-averaged predictions + ranking), Grad-CAM per face (256 faces,
the shipped ensemble's 3 networks), the feature map (penultimate features of 2,000 faces + PCA; t-SNE apart).
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_ZIP = ROOT.parent / "shared" / "datasets" / "fer2013" / "images.zip"
MOVED, TOP = 150, 300


def timed(function, *args, **kwargs):
    start = time.perf_counter()
    result = function(*args, **kwargs)
    return result, time.perf_counter() - start


def move_labels(labels: np.ndarray, seed: int, classes: int) -> tuple[np.ndarray, np.ndarray]:
    """`MOVED` labels moved to a different class drawn uniformly; returns (noisy labels, moved indexes)."""
    rng = np.random.default_rng(seed)
    moved = rng.choice(len(labels), MOVED, replace=False)
    noisy = labels.copy()
    noisy[moved] = (labels[moved] + rng.integers(1, classes, MOVED)) % classes
    return noisy, moved


def recall(order: np.ndarray, moved: np.ndarray) -> float:
    return float(np.isin(moved, order[:TOP]).mean())


def rankings(noisy: np.ndarray, plain: np.ndarray, mirrored: np.ndarray) -> dict[str, np.ndarray]:
    from cleanlab.filter import find_label_issues
    from cleanlab.rank import get_label_quality_scores

    from fer.explain.audit import label_quality

    rows = np.arange(len(noisy))
    both = (plain + mirrored) / 2
    both64 = both.astype(np.float64) / both.sum(axis=1, keepdims=True)
    ranked = {
        "probability of the given label (one pass)": np.argsort(plain[rows, noisy], kind="stable"),
        "audit: cleanlab self_confidence, mirror-averaged": np.argsort(label_quality(noisy, both), kind="stable"),
    }
    for method in ("normalized_margin", "confidence_weighted_entropy"):
        ranked[f"cleanlab {method}, mirror-averaged"] = np.argsort(
            get_label_quality_scores(noisy, both64, method=method), kind="stable")
    ranked["cleanlab self_confidence, class-adjusted"] = np.argsort(
        get_label_quality_scores(noisy, both64, adjust_pred_probs=True), kind="stable")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        issues = find_label_issues(noisy, both64, filter_by="prune_by_noise_rate",
                                   return_indices_ranked_by="self_confidence")
    rest = [i for i in np.argsort(both64[rows, noisy], kind="stable") if i not in set(issues.tolist())]
    ranked["cleanlab find_label_issues (prune_by_noise_rate) first, then the rest"] = np.concatenate([issues, rest])
    return ranked


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--zip", default=str(DEFAULT_ZIP))
    parser.add_argument("--model", default=str(ROOT / "models" / "fer2013.keras"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--tsne", action="store_true", help="also time a t-SNE map of 1,000 faces")
    parser.add_argument("--out-of-fold", action="store_true",
                        help="only: out-of-fold probabilities of the noisy validation split (3 tiny models trained on "
                             "its moved labels, first seed), their recall, and the estimated time against the real")
    args = parser.parse_args()
    if args.out_of_fold:
        return out_of_fold_run(args)

    from fer.data.datasets import open_dataset
    from fer.evaluate.scoring import align_classes, mirror, predict_probabilities
    from fer.explain.audit import audit_split
    from fer.explain.features import capped_sample, feature_map, penultimate_features
    from fer.explain.gradcam import GradCam
    from fer.model.files import load_model

    dataset = open_dataset(args.zip)
    model, card = load_model(args.model)
    images, labels = dataset.arrays("validation")
    plain = align_classes(predict_probabilities(model, images), card.classes, dataset.classes)
    mirrored = align_classes(predict_probabilities(model, mirror(images)), card.classes, dataset.classes)
    print(f"FER2013 validation: {len(labels):,} images; {MOVED} labels moved; recall = share of them among the "
          f"{TOP} most suspicious")
    table: dict[str, list[float]] = {}
    for seed in args.seeds:
        noisy, moved = move_labels(labels, seed, len(dataset.classes))
        for name, order in rankings(noisy, plain, mirrored).items():
            table.setdefault(name, []).append(recall(order, moved))
    print(f"{'ranking':<62}" + "".join(f"seed {seed:<4}" for seed in args.seeds))
    for name, values in table.items():
        print(f"{name:<62}" + "".join(f"{value:<9.3f}" for value in values))

    print("\ntimings (shared 2-core CPU)")
    audit, seconds = timed(audit_split, model, card.classes, dataset, "validation")
    print(f"audit of validation ({len(labels):,} images, 2 passes + ranking): {seconds:.1f} s")
    faces = images[:256, ..., 0]
    explainer, build = timed(GradCam, model)
    _, first = timed(explainer, faces[:1])  # Traces the gradient graph, as the first face on a page does.
    _, seconds = timed(explainer, faces)
    print(f"Grad-CAM: {1000 * seconds / len(faces):.1f} ms per face (256 faces); the first face "
          f"{build + first:.1f} s (graph set-up)")
    chosen = capped_sample(labels, 2000)
    features, seconds_features = timed(penultimate_features, model, images[chosen])
    _, seconds_pca = timed(feature_map, features, chosen, method="pca")
    print(f"feature map, {len(chosen):,} faces: features {seconds_features:.1f} s + PCA {seconds_pca:.1f} s")
    if args.tsne:
        few = capped_sample(labels, 1000)
        _, seconds_tsne = timed(feature_map, features[np.isin(chosen, few)], few, method="tsne")
        print(f"t-SNE of {len(few):,} faces: {seconds_tsne:.1f} s")



def out_of_fold_run(args) -> None:
    """Out-of-fold probabilities where the labels are the noisy ones, as a user's would be."""
    from dataclasses import replace

    from fer.data.datasets import Split, open_dataset
    from fer.explain.audit import OutOfFold, estimate_out_of_fold_seconds, label_quality, out_of_fold_probabilities

    dataset = open_dataset(args.zip)
    split = dataset.split("validation")
    noisy, moved = move_labels(split.labels, args.seeds[0], len(dataset.classes))
    noisy_dataset = replace(dataset, splits={"validation": Split(split.images, noisy, split.files)})
    config = OutOfFold()
    estimate = estimate_out_of_fold_seconds(len(noisy), config)
    probabilities, seconds = timed(out_of_fold_probabilities, noisy_dataset, "validation", config)
    accuracy = float(np.mean(probabilities.argmax(axis=1) == split.labels))
    order = np.argsort(label_quality(noisy, probabilities), kind="stable")
    print(f"out-of-fold ({config.folds} {config.preset} models x {config.epochs} epochs) on {len(noisy):,} validation "
          f"faces with {MOVED} moved labels (seed {args.seeds[0]}): estimated {estimate:.0f} s, took {seconds:.0f} s; "
          f"accuracy against the true labels {accuracy:.3f}; recall at {TOP}: {recall(order, moved):.3f}")


if __name__ == "__main__":
    main()
