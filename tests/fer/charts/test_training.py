"""fer.charts.training: loss/accuracy curves, learning rate and run comparison figures."""

from fer.charts.training import comparison_figure, curves_figure, learning_rate_figure

RECORDS = [
    {"epoch": 1, "loss": 1.9, "accuracy": 0.20, "val_loss": 1.8, "val_accuracy": 0.25, "lr": 1e-3},
    {"epoch": 2, "loss": 1.6, "accuracy": 0.35, "val_loss": 1.7, "val_accuracy": 0.30, "lr": 5e-4},
    {"epoch": 3, "loss": 1.5, "accuracy": 0.40, "val_loss": 1.7, "val_accuracy": 0.31, "lr": 1e-4, "partial": True},
]


def test_loss_curves_have_train_and_validation_per_epoch():
    figure = curves_figure(RECORDS, "loss")
    train, validation = figure.data
    assert (train.name, validation.name) == ("train", "validation")
    assert list(train.x) == [1, 2, 3] and list(train.y) == [1.9, 1.6, 1.5]
    assert list(validation.y) == [1.8, 1.7, 1.7]
    assert figure.layout.title.text == "Loss per epoch"


def test_accuracy_curves_use_a_percent_axis_and_mark_a_partial_epoch():
    figure = curves_figure(RECORDS, "accuracy")
    assert figure.layout.yaxis.tickformat == ".0%"
    assert list(figure.data[0].marker.symbol) == ["circle", "circle", "circle-open"]


def test_the_accuracy_chart_marks_the_kept_epoch_with_a_star():
    figure = curves_figure(RECORDS, "accuracy", best_epoch=2)
    kept = next(trace for trace in figure.data if trace.name == "kept")
    assert (list(kept.x), list(kept.y)) == ([2], [0.30]) and kept.marker.symbol == "star"
    assert "start" not in [trace.name for trace in figure.data]  # Not a fine-tuning run: no start on record.
    assert "kept" not in [trace.name for trace in curves_figure(RECORDS, "loss", best_epoch=2).data]


def test_a_fine_tuning_runs_start_is_drawn_at_epoch_0_and_starred_when_kept():
    figure = curves_figure(RECORDS, "accuracy", start=0.32, best_epoch=0)
    start = next(trace for trace in figure.data if trace.name == "start")
    assert (list(start.x), list(start.y)) == ([0, 3], [0.32, 0.32]) and start.line.dash == "dot"
    kept = next(trace for trace in figure.data if trace.name == "kept")
    assert (list(kept.x), list(kept.y)) == ([0], [0.32])
    assert "by more than chance" in start.hovertemplate


def test_epoch_ticks_are_every_epoch_for_a_few_and_round_steps_for_many():
    few = curves_figure(RECORDS, "loss")
    assert (few.layout.xaxis.tickmode, few.layout.xaxis.dtick) == ("linear", 1)
    many = curves_figure([{"epoch": epoch, "loss": 1.0 / epoch} for epoch in range(1, 31)], "loss")
    assert (many.layout.xaxis.tickmode, many.layout.xaxis.nticks) == ("auto", 6)
    legend = many.layout.legend  # Under the epoch labels, off the title.
    assert (legend.orientation, legend.yanchor) == ("h", "top") and legend.y < 0


def test_curves_without_validation_draw_only_train():
    figure = curves_figure([{"epoch": 1, "loss": 2.0, "accuracy": 0.2}], "loss")
    assert [trace.name for trace in figure.data] == ["train"]


def test_empty_curves_say_they_are_waiting():
    figure = curves_figure([], "loss")
    assert not figure.data
    assert "Waiting for the first epoch" in figure.layout.annotations[0].text


def test_learning_rate_on_a_log_axis():
    figure = learning_rate_figure(RECORDS)
    assert list(figure.data[0].y) == [1e-3, 5e-4, 1e-4]
    assert figure.layout.yaxis.type == "log"


def test_learning_rate_missing_is_said():
    figure = learning_rate_figure([{"epoch": 1, "loss": 2.0, "lr": None}])
    assert not figure.data and figure.layout.annotations[0].text == "Not recorded for this run"


def test_comparison_has_one_line_per_run_with_the_metric():
    figure = comparison_figure({"a": RECORDS, "b": RECORDS[:1], "empty": []}, "val_accuracy")
    assert [trace.name for trace in figure.data] == ["a", "b"]
    assert list(figure.data[1].y) == [0.25]
    assert "Validation accuracy" in figure.layout.title.text


def test_comparison_of_runs_without_epochs_says_so():
    figure = comparison_figure({"a": []}, "val_loss")
    assert not figure.data and "No epochs" in figure.layout.annotations[0].text
