"""The judge quality report: each statistic on a hand-computed case, the majority rules, the
self-preference split, the management command (table, JSON, plot) and its errors."""

import io
from datetime import timedelta

import numpy as np
import orjson
import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone
from sklearn.metrics import cohen_kappa_score

from scoring.report import (
    JudgeReportError,
    accuracy,
    bin_index,
    bootstrap_intervals,
    brier_score,
    cohen_kappa,
    expected_calibration_error,
    involves_family,
    judge_report,
    judge_report_rows,
    reliability_bins,
    reliability_plot_png,
    tie_majority,
    true_rate,
)
from tests.factories import ComparisonFactory, LMLabelFactory, ProjectFactory

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def judge_label(comparison, choice, *, p_a=None, consistent=None, judge="j", version="", **kw):
    return LMLabelFactory(
        comparison=comparison,
        judge_name=judge,
        judge_version=version,
        choice=choice,
        strength="unknown" if choice == "tie" else "clearly",
        p_a=p_a,
        position_consistent=consistent,
        **kw,
    )


# --- Pure statistics -------------------------------------------------------------------------


def test_accuracy_counts_judge_ties_as_wrong_and_leaves_out_human_ties():
    judge = np.array(["A", "B", "tie", "A", "B", "A"])
    human = np.array(["A", "A", "A", "B", "B", "tie"])
    # Scored: the first five (the human Tie is left out); right: 1st and 5th.
    assert accuracy(judge, human) == pytest.approx(2 / 5)
    assert accuracy(np.array(["tie"]), np.array(["A"])) == 0.0
    assert accuracy(np.array([], dtype=object), np.array([], dtype=object)) is None


def test_kappa_matches_a_hand_computation():
    judge = np.array(["A", "A", "B", "B", "tie", "A"])
    human = np.array(["A", "B", "B", "B", "A", "A"])
    # p_o = 4/6; marginals judge A3 B2 tie1, human A3 B3 -> p_e = (9 + 6) / 36 = 15/36;
    # kappa = (24/36 - 15/36) / (21/36) = 9/21.
    assert cohen_kappa(judge, human) == pytest.approx(9 / 21)
    assert cohen_kappa(judge, human) == pytest.approx(cohen_kappa_score(judge, human))


def test_kappa_matches_scikit_learn_on_random_labels():
    rng = np.random.default_rng(3)
    for _ in range(5):
        judge = rng.choice(["A", "B", "tie"], size=60, p=[0.45, 0.45, 0.1])
        human = np.where(rng.random(60) < 0.7, judge, rng.choice(["A", "B"], size=60))
        human = np.where(human == "tie", "A", human)
        assert cohen_kappa(judge, human) == pytest.approx(cohen_kappa_score(judge, human))


def test_kappa_is_undefined_when_both_raters_use_one_category():
    assert cohen_kappa(np.array(["A", "A"]), np.array(["A", "A"])) is None
    assert cohen_kappa(np.array([], dtype=object), np.array([], dtype=object)) is None


def test_brier_and_ece_by_hand():
    p = np.array([0.9, 0.95, 0.2, 0.25, 0.3])
    won = np.array([1, 0, 0, 0, 1])
    # (0.01 + 0.9025 + 0.04 + 0.0625 + 0.49) / 5
    assert brier_score(p, won) == pytest.approx(1.505 / 5)
    # bin 9: mean 0.925, observed 0.5 -> 2/5 * 0.425; bin 2: mean 0.225, observed 0 -> 2/5 *
    # 0.225; bin 3: 0.3 vs 1 -> 1/5 * 0.7. Total 0.17 + 0.09 + 0.14.
    assert expected_calibration_error(p, won) == pytest.approx(0.4)
    bins = reliability_bins(p, won)
    assert len(bins) == 10 and sum(b.count for b in bins) == 5
    assert (bins[9].count, bins[9].mean_p_a, bins[9].observed) == (2, pytest.approx(0.925), 0.5)
    assert (bins[2].count, bins[2].mean_p_a, bins[2].observed) == (2, pytest.approx(0.225), 0.0)
    assert (bins[3].low, bins[3].high, bins[3].count) == (0.3, 0.4, 1)
    assert bins[5].count == 0 and bins[5].mean_p_a is None and bins[5].observed is None
    assert brier_score(np.array([]), np.array([])) is None
    assert expected_calibration_error(np.array([]), np.array([])) is None


def test_bins_are_equal_width_with_the_edges_in_the_upper_bin():
    # 0.3 * 10 is 3.0000000000000004 and 0.7 * 10 is 7.000000000000001: both stay put; 1.0
    # belongs to the last bin.
    assert bin_index(np.array([0.0, 0.0999, 0.1, 0.3, 0.6, 0.7, 0.9999, 1.0])).tolist() == [
        0,
        0,
        1,
        3,
        6,
        7,
        9,
        9,
    ]


def test_perfectly_calibrated_bins_have_no_ece():
    p = np.array([0.25] * 4 + [0.75] * 4)
    won = np.array([1, 0, 0, 0, 1, 1, 1, 0])
    assert expected_calibration_error(p, won) == pytest.approx(0.0)


def test_bootstrap_interval_contains_the_estimate_and_is_reproducible():
    rng = np.random.default_rng(7)
    human = rng.choice(["A", "B"], size=80)
    judge = np.where(rng.random(80) < 0.75, human, rng.choice(["A", "B", "tie"], size=80))
    first = bootstrap_intervals(judge, human, seed=11, n_bootstrap=500)
    assert first == bootstrap_intervals(judge, human, seed=11, n_bootstrap=500)
    assert first != bootstrap_intervals(judge, human, seed=12, n_bootstrap=500)
    low, high = first["accuracy"]
    assert low <= accuracy(judge, human) <= high and high - low < 0.5
    low, high = first["kappa"]
    assert low <= cohen_kappa(judge, human) <= high


def test_bootstrap_matches_resampling_the_comparisons():
    """Drawing the confusion matrix multinomially is the same as resampling rows."""
    rng = np.random.default_rng(1)
    human = rng.choice(["A", "B"], size=50)
    judge = np.where(rng.random(50) < 0.7, human, rng.choice(["A", "B", "tie"], size=50))
    ours = bootstrap_intervals(judge, human, seed=0, n_bootstrap=4000)
    idx = np.random.default_rng(99).integers(0, 50, size=(4000, 50))
    naive = [accuracy(judge[i], human[i]) for i in idx]
    low, high = np.percentile(naive, [2.5, 97.5])
    assert ours["accuracy"][0] == pytest.approx(low, abs=0.03)
    assert ours["accuracy"][1] == pytest.approx(high, abs=0.03)


def test_bootstrap_without_resamples_or_rows_gives_no_interval():
    judge, human = np.array(["A", "B"]), np.array(["A", "A"])
    assert bootstrap_intervals(judge, human, n_bootstrap=0) == {"accuracy": None, "kappa": None}
    empty = np.array([], dtype=object)
    assert bootstrap_intervals(empty, empty) == {"accuracy": None, "kappa": None}
    # Every resample of a single category has an undefined kappa.
    same = bootstrap_intervals(np.array(["A", "A"]), np.array(["A", "A"]), n_bootstrap=50)
    assert same == {"accuracy": (1.0, 1.0), "kappa": None}


def test_true_rate_ignores_unknown_flags():
    assert true_rate([True, False, None, True]) == (pytest.approx(2 / 3), 3)
    assert true_rate([None]) == (None, 0)


def test_tie_majority_and_family_matching():
    assert tie_majority([("tie", "unknown"), ("tie", "unknown"), ("A", "clearly")])
    assert tie_majority([("tie", "unknown")])
    assert not tie_majority([("tie", "unknown"), ("A", "clearly")])  # a tied vote
    assert not tie_majority([("A", "clearly"), ("A", "slightly"), ("tie", "unknown")])
    assert involves_family("GPT-4o-mini", "llama", "gpt")
    assert involves_family("", "Meta-Llama-3", "LLAMA")
    assert not involves_family("mistral", "qwen", "gpt")
    assert not involves_family("gpt-4", "x", None) and not involves_family("gpt-4", "x", "")


# --- The report on the database --------------------------------------------------------------


@pytest.fixture
def labelled(db):
    """Five comparisons with both kinds of label, one with only a judge, one with only humans."""
    project = ProjectFactory(slug="proj")
    c1 = ComparisonFactory(
        project=project,
        external_id="c1",
        human_votes=["A", "A", "B"],
        model_a="gpt-4o",
        model_b="llama",
    )
    c2 = ComparisonFactory(
        project=project, external_id="c2", human_votes=["B", "B"], model_a="qwen", model_b="llama"
    )
    c3 = ComparisonFactory(
        project=project, external_id="c3", human_votes=["A", "B"], model_a="x", model_b="GPT-3.5"
    )
    c4 = ComparisonFactory(project=project, external_id="c4", human_votes=["tie", "tie", "A"])
    c5 = ComparisonFactory(project=project, external_id="c5", human_votes=["A"])
    c6 = ComparisonFactory(project=project, external_id="c6")
    c7 = ComparisonFactory(project=project, external_id="c7", human_votes=["B"])
    judge_label(c1, "A", p_a=0.8, consistent=True)
    judge_label(c2, "B", p_a=0.3, consistent=False)
    judge_label(c3, "A", p_a=0.6)
    judge_label(c4, "tie", p_a=0.5)
    judge_label(c5, "tie", p_a=0.52, consistent=True)
    judge_label(c6, "A", p_a=0.9, consistent=False)
    judge_label(c7, "A", judge="other")
    other = ProjectFactory(slug="other")
    judge_label(ComparisonFactory(project=other, external_id="o1", human_votes=["B"]), "A", p_a=0.9)
    return project


def test_report_on_a_hand_checked_project(labelled):
    report = judge_report(project=labelled, judge_name="j", judge_family="GPT", n_bootstrap=200)
    assert (report.n_judge_labelled, report.n_human_labelled, report.n) == (6, 6, 5)
    # c3 is a tied vote, c4 a Tie majority: counted, not scored.
    assert (report.n_no_majority, report.n_tie_majority) == (1, 1)
    overall = report.overall
    # Scored: c1 (A vs A), c2 (B vs B), c5 (judge tie vs A: wrong).
    assert (overall.n, overall.n_scored, overall.n_judge_ties) == (5, 3, 1)
    assert overall.accuracy == pytest.approx(2 / 3)
    # Judge A B tie vs humans A B A: p_o 2/3, p_e (1*2 + 1*1) / 9 -> (6/9 - 3/9) / (6/9).
    assert overall.kappa == pytest.approx(0.5)
    assert overall.accuracy_ci[0] <= overall.accuracy <= overall.accuracy_ci[1]
    calibration = report.calibration
    assert calibration.n == 3
    assert calibration.brier == pytest.approx((0.2**2 + 0.3**2 + 0.48**2) / 3)
    assert calibration.ece == pytest.approx((0.2 + 0.3 + 0.48) / 3)  # one label per bin
    # Over c1..c5: True, False, None, None, True.
    assert report.position_consistency.n == 2 + 1
    assert report.position_consistency.rate == pytest.approx(2 / 3)
    assert report.judge_versions == [""] and report.judge_version is None


def test_self_preference_split(labelled):
    report = judge_report(project=labelled, judge_name="j", judge_family="GPT", n_bootstrap=0)
    # c1 (gpt-4o) and c3 (GPT-3.5) involve the family; c3 is not scored.
    assert (report.with_family.n, report.with_family.n_scored) == (2, 1)
    assert report.with_family.accuracy == 1.0
    assert (report.without_family.n, report.without_family.n_scored) == (3, 2)
    assert report.without_family.accuracy == 0.5
    assert report.without_family.n_judge_ties == 1
    plain = judge_report(project=labelled, judge_name="j", n_bootstrap=0)
    assert plain.judge_family is None and plain.with_family.n == 0
    assert plain.without_family == plain.overall


def test_majority_rules_exclude_tied_votes_and_tie_majorities(db):
    project = ProjectFactory(slug="proj")
    votes = {
        "tied-ab": ["A", "B"],
        "tied-three": ["A", "B", "tie"],
        "tied-with-tie": ["tie", "tie", "A", "A"],
        "tie-majority": ["tie", "tie", "B"],
        "only-tie": ["tie"],
        "b": ["B", "B", "A"],
    }
    for name, humans in votes.items():
        judge_label(
            ComparisonFactory(project=project, external_id=name, human_votes=humans), "B", p_a=0.1
        )
    report = judge_report(project=project, judge_name="j", n_bootstrap=0)
    assert (report.n, report.n_no_majority, report.n_tie_majority) == (6, 3, 2)
    assert (report.overall.n_scored, report.overall.accuracy) == (1, 1.0)
    assert report.calibration.n == 1


def test_versions_latest_by_default_or_the_one_asked(db):
    project = ProjectFactory(slug="proj")
    comparison = ComparisonFactory(project=project, external_id="c", human_votes=["A"])
    now = timezone.now()
    judge_label(comparison, "A", version="v2", p_a=0.9, created_at=now)
    # Created after v2 in id order, but older: v2 stays the most recent.
    judge_label(comparison, "B", version="v1", p_a=0.2, created_at=now - timedelta(days=1))
    latest = judge_report(project=project, judge_name="j", n_bootstrap=0)
    assert latest.overall.accuracy == 1.0 and latest.judge_versions == ["v2"]
    v1 = judge_report(project=project, judge_name="j", judge_version="v1", n_bootstrap=0)
    assert v1.overall.accuracy == 0.0 and v1.judge_versions == ["v1"]
    with pytest.raises(JudgeReportError, match="version 'v3'"):
        judge_report(project=project, judge_name="j", judge_version="v3")


def test_rows_are_read_in_two_queries(labelled, django_assert_num_queries):
    with django_assert_num_queries(2):
        data = judge_report_rows(project=labelled, judge_name="j")
    assert [r.comparison_id for r in data.rows] == sorted(r.comparison_id for r in data.rows)
    assert len(data.rows) == 5


def test_judge_without_labels_in_the_project_is_an_error(labelled):
    with pytest.raises(JudgeReportError, match="no labels"):
        judge_report(project=labelled, judge_name="nobody")


def test_judge_without_human_overlap_gives_an_empty_report(db):
    project = ProjectFactory(slug="proj")
    judge_label(ComparisonFactory(project=project, external_id="c"), "A", p_a=0.7)
    report = judge_report(project=project, judge_name="j")
    assert report.n == 0 and report.overall.accuracy is None and report.overall.kappa is None
    assert report.overall.accuracy_ci is None and report.calibration.brier is None
    assert reliability_plot_png(report).startswith(PNG_MAGIC)


# --- The command -----------------------------------------------------------------------------


def run(*args) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("judge_report", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_command_json_and_plot(labelled, tmp_path):
    plot = tmp_path / "reliability.png"
    out, _ = run(
        "--project", "proj", "--judge", "j", "--family", "gpt", "--json", "--plot", str(plot)
    )
    data = orjson.loads(out)
    assert data["n"] == 5 and data["judge_family"] == "gpt" and data["judge_version"] is None
    assert data["overall"]["accuracy"] == pytest.approx(2 / 3)
    assert data["overall"]["kappa"] == pytest.approx(0.5)
    low, high = data["overall"]["accuracy_ci"]
    assert low <= data["overall"]["accuracy"] <= high
    assert len(data["overall"]["kappa_ci"]) == 2
    assert data["with_family"]["n"] == 2 and data["without_family"]["n"] == 3
    assert data["calibration"]["brier"] == pytest.approx(0.3604 / 3)
    assert len(data["calibration"]["bins"]) == 10
    assert data["calibration"]["bins"][8] == {
        "low": 0.8,
        "high": 0.9,
        "count": 1,
        "mean_p_a": 0.8,
        "observed": 1.0,
    }
    assert data["position_consistency"] == {"n": 3, "rate": pytest.approx(2 / 3)}
    assert data["seed"] == 0 and data["n_bootstrap"] == 1000
    assert plot.read_bytes().startswith(PNG_MAGIC)
    # The same seed, the same figures.
    assert (
        orjson.loads(run("--project", "proj", "--judge", "j", "--family", "gpt", "--json")[0])[
            "overall"
        ]
        == data["overall"]
    )


def test_command_table_and_version_flag(labelled):
    out, _ = run("--project", "proj", "--judge", "j", "--family", "gpt", "--bootstrap", "100")
    assert "accuracy" in out and "kappa" in out and "Brier" in out and "ECE" in out
    assert "involving 'gpt'" in out and "Position consistency: 0.667" in out
    assert "judge tie counts as wrong" in out
    with pytest.raises(CommandError, match="version 'v9'"):
        run("--project", "proj", "--judge", "j", "--version", "v9")
    out, _ = run("--project", "proj", "--judge", "j", "--version", "", "--json")
    assert orjson.loads(out)["judge_version"] == ""


def test_command_errors(labelled):
    with pytest.raises(CommandError, match="project 'nope' does not exist"):
        run("--project", "nope", "--judge", "j")
    with pytest.raises(CommandError, match="judge 'nobody' has no labels in project 'proj'"):
        run("--project", "proj", "--judge", "nobody")
    # The judge "other" labelled comparisons of "proj" only.
    with pytest.raises(CommandError, match="judge 'other' has no labels in project 'other'"):
        run("--project", "other", "--judge", "other")
