"""The analytics report's figures as PNG bytes (matplotlib's Agg canvas, no pyplot state).

Drawn once per report by the worker that computes it and stored with it, so that serving a
figure is a read of bytes and the web process never imports matplotlib.
"""

from __future__ import annotations

import io

from annotator.analytics.arrays import SCALE

_FIGSIZE = (7.5, 3.2)
_COLOURS = {"final": "#3b6ea5", "human": "#c0504d", "lm": "#6b9a3c"}


def _figure(size=_FIGSIZE):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=size, dpi=100)
    FigureCanvasAgg(figure)
    return figure


def _png(figure) -> bytes:
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()


def _empty(axes, text: str) -> None:
    axes.text(0.5, 0.5, text, ha="center", va="center", transform=axes.transAxes, color="#666")
    axes.set_xticks([])
    axes.set_yticks([])


def labels_png(distributions: dict) -> bytes:
    """Share of each label on the 5-point scale (plus A/B of unknown strength): humans and
    each judge side by side."""
    figure = _figure()
    axes = figure.subplots()
    series = {"humans": distributions["human_labels"]}
    series.update({f"LM: {j}": d for j, d in distributions["lm_labels"].items()})
    names = [*SCALE, "A", "B"]
    total_width = 0.8
    width = total_width / max(len(series), 1)
    plotted = False
    for k, (name, counts) in enumerate(series.items()):
        total = sum(counts.get(n, 0) for n in names)
        if not total:
            continue
        plotted = True
        xs = [i - total_width / 2 + width * (k + 0.5) for i in range(len(names))]
        axes.bar(xs, [counts.get(n, 0) / total for n in names], width=width, label=name)
    if plotted:
        axes.set_xticks(range(len(names)))
        axes.set_xticklabels(
            ["A clearly", "A slightly", "Tie", "B slightly", "B clearly", "A (?)", "B (?)"]
        )
        axes.set_ylabel("share of labels")
        axes.legend(fontsize="small")
    else:
        _empty(axes, "no labels yet")
    axes.set_title("label strength and ties (overall)")
    return _png(figure)


def confidence_png(distributions: dict) -> bytes:
    """Annotator confidence counts, and Dawid-Skene confidence (max posterior) per comparison."""
    figure = _figure()
    left, right = figure.subplots(1, 2)
    confidence = distributions["confidence"]
    if sum(confidence.values()):
        left.bar(list(confidence), list(confidence.values()), color="#3b6ea5")
        left.set_ylabel("labels")
    else:
        _empty(left, "no human labels")
    left.set_title("annotator confidence")
    posterior = distributions["posterior_confidence"]
    if sum(posterior["counts"]):
        edges = posterior["edges"]
        right.stairs(posterior["counts"], edges, fill=True, color="#6b9a3c")
        right.set_xlim(edges[0], edges[-1])
        right.set_xlabel("P(most likely label)")
        right.set_ylabel("comparisons")
    else:
        _empty(right, "no human labels")
    right.set_title("label confidence (Dawid-Skene)")
    return _png(figure)


def time_png(distributions: dict) -> bytes:
    """Time on task per label, on a log scale."""
    figure = _figure()
    axes = figure.subplots()
    time = distributions["time_on_task"]
    if sum(time["counts"]):
        axes.stairs(time["counts"], time["edges"], fill=True, color="#3b6ea5")
        axes.set_xscale("log")
        axes.set_xlabel("seconds per label")
        axes.set_ylabel("labels")
        if time["median"] is not None:
            axes.axvline(time["median"], color="#c0504d", linestyle="--", label="median")
            axes.legend(fontsize="small")
    else:
        _empty(axes, "no times recorded")
    axes.set_title("time on task")
    return _png(figure)


def position_png(annotators: list[dict], band: tuple[float, float]) -> bytes:
    """Per annotator: share of decided labels that chose the response shown on the left."""
    rows = [a for a in annotators if a["left_share"] is not None]
    rows.sort(key=lambda a: a["left_share"])
    height = max(2.5, min(0.22 * len(rows) + 1.2, 14))
    figure = _figure((7.5, height))
    axes = figure.subplots()
    if rows:
        colours = ["#c0504d" if a["flags"] else "#3b6ea5" for a in rows]
        axes.barh(range(len(rows)), [a["left_share"] for a in rows], color=colours)
        axes.set_yticks(range(len(rows)))
        axes.set_yticklabels([a["annotator"] for a in rows], fontsize="small")
        axes.axvline(0.5, color="#333", linewidth=1)
        axes.axvspan(*band, color="#eee", zorder=0)
        axes.set_xlim(0, 1)
        axes.set_xlabel("share of decided labels choosing the left response")
    else:
        _empty(axes, "no shown order recorded")
    axes.set_title("position bias per annotator")
    return _png(figure)


def leaderboard_png(leaderboards: dict) -> bytes:
    """Scores with 95% intervals per model: final labels, human only, LM only side by side."""
    models: list[str] = []
    for board in leaderboards.values():
        for row in board["models"]:
            if row["model"] not in models:
                models.append(row["model"])
    final = {r["model"]: r["score"] for r in leaderboards["final"]["models"]}
    models.sort(key=lambda m: final.get(m, float("-inf")))
    height = max(2.5, min(0.35 * len(models) + 1.2, 14))
    figure = _figure((7.5, height))
    axes = figure.subplots()
    if models:
        offsets = {"final": 0.0, "human": 0.22, "lm": -0.22}
        for source, board in leaderboards.items():
            rows = {r["model"]: r for r in board["models"]}
            ys, xs, low, high = [], [], [], []
            for y, model in enumerate(models):
                row = rows.get(model)
                if row is None:
                    continue
                ys.append(y + offsets[source])
                xs.append(row["score"])
                ci = row["score_ci"] or [row["score"], row["score"]]
                # A small bootstrap's percentile interval can miss the estimate itself.
                low.append(max(row["score"] - ci[0], 0.0))
                high.append(max(ci[1] - row["score"], 0.0))
            if xs:
                axes.errorbar(
                    xs,
                    ys,
                    xerr=[low, high],
                    fmt="o",
                    capsize=3,
                    label=source,
                    color=_COLOURS[source],
                )
        axes.set_yticks(range(len(models)))
        axes.set_yticklabels(models, fontsize="small")
        axes.set_xlabel("score (Elo scale, 95% bootstrap interval)")
        axes.legend(fontsize="small")
    else:
        _empty(axes, "no comparisons between named models")
    axes.set_title("model leaderboard (Bradley-Terry, Davidson ties)")
    return _png(figure)


def agreement_png(agreement: dict, judges: list[dict]) -> bytes:
    """Alpha and kappa per aspect, and human-human vs judge-human kappa, with 95% intervals."""
    figure = _figure()
    left, right = figure.subplots(1, 2)
    rows = []
    for aspect, summary in agreement.items():
        for key, label in (
            ("alpha_ordinal", "alpha ord."),
            ("alpha_nominal", "alpha nom."),
            ("fleiss_kappa", "Fleiss"),
        ):
            estimate = summary.get(key)
            if estimate and estimate["value"] is not None:
                rows.append((f"{aspect} {label}", estimate))
    _forest(left, rows, "human-human agreement")
    judge_rows = []
    for judge in judges:
        for side, label in (("human_human", "human-human"), ("judge_human", judge["judge"])):
            estimate = judge[side]["kappa"]
            if estimate["value"] is not None:
                judge_rows.append(
                    (
                        f"{label} ({judge['judge']})"
                        if side == "human_human"
                        else f"{label} vs humans",
                        estimate,
                    )
                )
    _forest(right, judge_rows, "kappa: judges vs humans")
    return _png(figure)


def _forest(axes, rows: list[tuple[str, dict]], title: str) -> None:
    if not rows:
        _empty(axes, "not enough overlapping labels")
        axes.set_title(title)
        return
    for y, (_, estimate) in enumerate(rows):
        ci = estimate["ci"] or [estimate["value"], estimate["value"]]
        axes.plot(ci, [y, y], color="#3b6ea5")
        axes.plot([estimate["value"]], [y], "o", color="#3b6ea5")
    axes.set_yticks(range(len(rows)))
    axes.set_yticklabels([name for name, _ in rows], fontsize="small")
    axes.axvline(0, color="#999", linewidth=1)
    lows = [estimate["ci"][0] for _, estimate in rows if estimate["ci"]]
    axes.set_xlim(min([-0.1, *lows]), 1)
    axes.set_title(title)


def report_plots(report: dict) -> dict[str, bytes]:
    """Every figure of a report, by name."""
    return {
        "agreement": agreement_png(report["agreement"], report["judges"]),
        "leaderboard": leaderboard_png(report["leaderboard"]),
        "labels": labels_png(report["distributions"]),
        "confidence": confidence_png(report["distributions"]),
        "time": time_png(report["distributions"]),
        "position": position_png(
            report["competence"]["annotators"], tuple(report["thresholds"]["position_band"])
        ),
    }
