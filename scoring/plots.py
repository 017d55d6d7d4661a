"""Training curves as PNG images (matplotlib, imported lazily, no global pyplot state)."""

import io


def training_curves_png(metrics: list[dict], *, title: str = "") -> bytes:
    """Loss and accuracy against the optimizer step, from a run's logged series."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    train = [m for m in metrics if m.get("kind") == "train"]
    evals = [m for m in metrics if m.get("kind") == "eval"]
    figure = Figure(figsize=(8, 3.2), dpi=100)
    FigureCanvasAgg(figure)
    loss_axes, accuracy_axes = figure.subplots(1, 2)
    if train:
        loss_axes.plot([m["step"] for m in train], [m["loss"] for m in train], label="train loss")
    loss_axes.set_xlabel("step")
    loss_axes.set_title("loss")
    if train and any(m.get("accuracy") is not None for m in train):
        accuracy_axes.plot(
            [m["step"] for m in train if m.get("accuracy") is not None],
            [m["accuracy"] for m in train if m.get("accuracy") is not None],
            label="train",
        )
    if evals:
        accuracy_axes.plot(
            [m["step"] for m in evals], [m["val_accuracy"] for m in evals], "o-", label="validation"
        )
    accuracy_axes.set_ylim(0, 1)
    accuracy_axes.set_xlabel("step")
    accuracy_axes.set_title("pairwise accuracy")
    accuracy_axes.legend(loc="lower right")
    if not metrics:
        loss_axes.text(0.5, 0.5, "no steps logged yet", ha="center", transform=loss_axes.transAxes)
    figure.suptitle(title)
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
