"""Calibration helpers: ROC AUC, thresholds, metrics, pairs CSV, plot."""
from __future__ import annotations

import numpy as np
import pytest

from gallery import calibrate as cal


def _brute_auc(s, y):
    pos, neg = s[y], s[~y]
    return np.mean([(p > n) + 0.5 * (p == n) for p in pos for n in neg])


@pytest.mark.parametrize("scores, labels, expected", [
    ([0.9, 0.8, 0.1, 0.2], [1, 1, 0, 0], 1.0),
    ([0.1, 0.2, 0.9, 0.8], [1, 1, 0, 0], 0.0),
    ([0.5, 0.5, 0.5, 0.5], [1, 0, 1, 0], 0.5),
    ([0.9, 0.3, 0.5, 0.1], [1, 0, 1, 0], 1.0),
    ([0.9, 0.6, 0.5, 0.1], [1, 0, 1, 0], 0.75),
])
def test_roc_auc_table(scores, labels, expected):
    assert cal.roc_auc(np.array(scores), np.array(labels)) == pytest.approx(expected)


def test_roc_auc_matches_brute_force_with_ties():
    rng = np.random.default_rng(0)
    s = np.round(rng.normal(size=200), 1)            # many ties
    y = rng.random(200) < 0.3
    assert cal.roc_auc(s, y) == pytest.approx(_brute_auc(s, y))
    assert np.isnan(cal.roc_auc(s, np.zeros(200, bool)))


def test_roc_curve_endpoints():
    far, tar, thr = cal.roc_curve(np.array([0.9, 0.4, 0.3, 0.1]), np.array([1, 1, 0, 0]))
    assert (far[0], tar[0]) == (0.0, 0.0) and thr[0] == np.inf
    assert (far[-1], tar[-1]) == (1.0, 1.0)


def test_confusion_and_rates():
    c = cal.confusion(np.array([0.9, 0.6, 0.4, 0.7, 0.1]), np.array([1, 1, 1, 0, 0], bool), 0.5)
    assert (c.tp, c.fp, c.tn, c.fn) == (2, 1, 1, 1)
    assert c.precision == pytest.approx(2 / 3) and c.recall == pytest.approx(2 / 3)
    assert c.f1 == pytest.approx(2 / 3) and c.accuracy == pytest.approx(3 / 5) and c.far == pytest.approx(0.5)


def test_two_sigma_is_mean_minus_two_std_of_same_pairs():
    s = np.array([0.8, 0.6, 0.7, 0.1, 0.0])
    y = np.array([1, 1, 1, 0, 0], bool)
    assert cal.two_sigma_threshold(s, y) == pytest.approx(0.7 - 2 * np.std([0.8, 0.6, 0.7]))


def test_stump_splits_separable_data_between_the_classes():
    rng = np.random.default_rng(1)
    s = np.concatenate([rng.uniform(0.5, 0.9, 40), rng.uniform(-0.2, 0.3, 200)])
    y = np.arange(240) < 40
    t, gain = cal.stump_threshold(s, y)
    assert s[~y].max() < t < s[y].min()
    assert cal.confusion(s, y, t).accuracy == 1.0
    assert gain > 0.5


def test_stump_maximises_information_gain():
    rng = np.random.default_rng(2)
    s = np.concatenate([rng.normal(0.6, 0.15, 60), rng.normal(0.2, 0.15, 200)])
    y = np.arange(260) < 60
    t, gain = cal.stump_threshold(s, y)

    def info_gain(th):
        def h(p):
            return 0.0 if p in (0, 1) else -(p * np.log2(p) + (1 - p) * np.log2(1 - p))
        left, right = y[s < th], y[s >= th]
        return h(y.mean()) - len(left) / len(y) * h(left.mean()) - len(right) / len(y) * h(right.mean())

    for th in np.linspace(0.0, 0.8, 161):
        assert info_gain(th) <= gain + 1e-9
    assert info_gain(t) == pytest.approx(gain)


def test_far_threshold_meets_the_target():
    rng = np.random.default_rng(3)
    s = np.concatenate([rng.normal(0.7, 0.1, 100), rng.normal(0.0, 0.1, 1000)])
    y = np.arange(1100) < 100
    for far in (0.0, 0.01, 0.05):
        t = cal.far_threshold(s, y, far)
        c = cal.confusion(s, y, t)
        assert c.fp <= far * 1000
        assert cal.confusion(s, y, np.nextafter(t, -np.inf) - 1e-9).fp > far * 1000  # the lowest such threshold
    with pytest.raises(ValueError, match="target_far"):
        cal.far_threshold(s, y, 1.0)


def test_report_and_yaml():
    s = np.array([0.8, 0.7, 0.75, 0.2, 0.1, 0.0, -0.1])
    y = np.array([1, 1, 1, 0, 0, 0, 0], bool)
    r = cal.threshold_report(s, y, target_far=0.0)
    assert r.n_same == 3 and r.n_different == 4 and r.auc == 1.0
    assert set(r.rows) == {"two_sigma", "stump", "far"}
    text = cal.format_report(r)
    assert "SIMILARITIES" in text and "precision" in text and "TP" in text
    snippet = cal.yaml_snippet(r, model_name="m")
    import yaml
    assert yaml.safe_load(snippet)["identifier"]["similarity_threshold"] == pytest.approx(r.chosen_threshold, abs=1e-4)
    with pytest.raises(ValueError, match="both"):
        cal.threshold_report(s[:3], y[:3])
    with pytest.raises(ValueError, match="chosen"):
        cal.threshold_report(s, y, chosen="best")


def test_pair_scores_and_labelled_pairs():
    a = np.array([[1.0, 0.0], [0.0, 2.0]])
    b = np.array([[1.0, 0.0], [3.0, 0.0]])
    np.testing.assert_allclose(cal.pair_scores(a, b), [1.0, 0.0])
    i, j, same = cal.labelled_pairs(["a", "b", "a"])
    assert list(zip(i, j, same)) == [(0, 1, False), (0, 2, True), (1, 2, False)]
    with pytest.raises(ValueError, match="shape"):
        cal.pair_scores(a, b[:1])


def test_read_pairs_csv_formats(tmp_path):
    for name in ("deepface_img1.jpg", "deepface_img2.jpg", "x.jpg"):
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "master.csv").write_text("file_x,file_y,Decision\r\nimg1.jpg,img2.jpg,Yes\r\nimg1.jpg,x.jpg,No\r\n")
    pairs = cal.read_pairs_csv(tmp_path / "master.csv")
    assert [(a.name, b.name, s) for a, b, s in pairs] == [
        ("deepface_img1.jpg", "deepface_img2.jpg", True), ("deepface_img1.jpg", "x.jpg", False)]
    (tmp_path / "p.csv").write_text("x.jpg,deepface_img2.jpg,1\n")
    assert cal.read_pairs_csv(tmp_path / "p.csv")[0][2] is True
    (tmp_path / "bad.csv").write_text("a,b,same\nx.jpg,x.jpg,maybe\n")
    with pytest.raises(ValueError, match="maybe"):
        cal.read_pairs_csv(tmp_path / "bad.csv")
    (tmp_path / "missing.csv").write_text("x.jpg,nothere.jpg,1\n")
    with pytest.raises(ValueError, match="nothere.jpg"):
        cal.read_pairs_csv(tmp_path / "missing.csv")
    (tmp_path / "empty.csv").write_text("a,b,same\n")
    with pytest.raises(ValueError, match="no pairs"):
        cal.read_pairs_csv(tmp_path / "empty.csv")


def test_plot_is_written(tmp_path):
    rng = np.random.default_rng(4)
    s = np.concatenate([rng.normal(0.7, 0.1, 30), rng.normal(0.0, 0.1, 100)])
    y = np.arange(130) < 30
    out = cal.plot_distributions(s, y, cal.threshold_report(s, y), tmp_path / "cal.png")
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(ValueError, match="does not exist"):
        cal.plot_distributions(s, y, cal.threshold_report(s, y), tmp_path / "no" / "cal.png")
