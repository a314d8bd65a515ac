"""Print a model card as Markdown tables: headline numbers, ensemble/TTA choice, per-class metrics,
confusion matrix and learning curve (what docs/model.md shows).

    python scripts/model_report.py models/fer2013.keras
"""

import sys

from fer.model.cards import ModelCard, read_card


def table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    return "\n".join(lines + ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows])


def card_markdown(card: ModelCard) -> str:
    """The card's numbers as Markdown."""
    parts = [f"**{card.name}** ({card.network or card.preset}), exported {card.exported or '?'}",
             table(["split", "images", "accuracy", "loss"],
                   [[split, f"{m['images']:,}", f"{m['accuracy']:.4f}", f"{m['loss']:.4f}"]
                    for split, m in card.metrics.items()])]
    selection = card.selection
    if selection:
        passes = selection.get("forward_passes", {})
        parts.append(table(["choice (models + test-time views)", "passes per face",
                            f"{selection['selected_on']} accuracy"],
                           [[("**" + choice + "**") if choice == selection["choice"] else choice,
                             passes.get(choice, "?"), f"{accuracy:.4f}"]
                            for choice, accuracy in selection["validation_accuracy"].items()]))
        budget = f" among those of at most {selection['max_passes']} passes" if selection.get("max_passes") else ""
        parts.append(f"Chosen: the cheapest within {selection.get('min_gain', 0):g} of the most accurate choice"
                     f"{budget}.")
    if card.ensemble:
        parts.append("\n".join(f"- member {member['source']} (epoch {member['epoch']}): validation accuracy "
                               f"{member['validation_accuracy']:.4f} alone" for member in card.ensemble))
    report = card.validation_report
    if report:
        parts.append(f"{report['split']} split, {report['images']:,} images: accuracy {report['accuracy']:.4f}, "
                     f"balanced accuracy {report['balanced_accuracy']:.4f}, macro F1 {report['macro_f1']:.4f}, "
                     f"ECE {report['expected_calibration_error']:.4f}")
        parts.append(table(["class", "precision", "recall (class accuracy)", "F1", "images"],
                           [[name, f"{m['precision']:.3f}", f"{m['recall']:.3f}", f"{m['f1']:.3f}", m["support"]]
                            for name, m in report["per_class"].items()]))
        classes = report["classes"]
        parts.append("Confusion matrix (rows: true class, columns: predicted)\n\n" + table(
            ["true \\ predicted", *classes],
            [[name, *counts] for name, counts in zip(classes, report["confusion_matrix"])]))
    history = card.history
    if history:
        parts.append(table(["epoch", "train acc", "val acc", "val loss", "lr", "seconds", "images/s"],
                           [[m["epoch"], f"{m.get('accuracy', 0):.4f}", f"{m.get('val_accuracy', 0):.4f}",
                             f"{m.get('val_loss', 0):.4f}", f"{m.get('lr', 0):.4g}", round(m.get("seconds", 0)),
                             m.get("images_per_second")] for m in history if not m.get("partial")]))
    return "\n\n".join(parts) + "\n"


if __name__ == "__main__":
    print(card_markdown(read_card(sys.argv[1])))
