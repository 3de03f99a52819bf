"""KalmanFilter: against filterpy on random sequences, gating, vectorised predict."""
from __future__ import annotations

import numpy as np
import pytest
from filterpy.kalman import KalmanFilter as FilterPyKF
from scipy.stats import chi2

from tracker import KalmanFilter
from tracker.kalman_filter import CHI2INV95
from tracker.track import Track, predict_tracks


def _random_box(rng):
    return np.array([rng.uniform(50, 600), rng.uniform(50, 400), rng.uniform(0.6, 1.0), rng.uniform(20, 200)])


@pytest.mark.parametrize("seed", range(5))
def test_predict_update_match_filterpy_on_random_sequences(seed):
    rng = np.random.default_rng(seed)
    kf = KalmanFilter()
    z0 = _random_box(rng)
    mean, cov = kf.initiate(z0)

    oracle = FilterPyKF(dim_x=8, dim_z=4)
    oracle.x = mean.copy()
    oracle.P = cov.copy()
    oracle.F = kf.motion_mat
    oracle.H = kf.update_mat

    velocity = rng.normal(scale=3, size=4) * [1, 1, 0.001, 0.3]
    z = z0.copy()
    for step in range(40):
        # Noise depends on the current height: hand the same Q and R to filterpy.
        oracle.Q = kf.process_noise(oracle.x)
        oracle.predict()
        mean, cov = kf.predict(mean, cov)
        np.testing.assert_allclose(mean, oracle.x, rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(cov, oracle.P, rtol=1e-9, atol=1e-9)
        if rng.random() < 0.2:  # a missed frame: predict only
            continue
        z = z + velocity + rng.normal(scale=1.0, size=4) * [1, 1, 0.001, 0.5]
        oracle.R = kf.measurement_noise(oracle.x)
        oracle.update(z)
        mean, cov = kf.update(mean, cov, z)
        np.testing.assert_allclose(mean, oracle.x, rtol=1e-7, atol=1e-7)
        np.testing.assert_allclose(cov, oracle.P, rtol=1e-6, atol=1e-7)


def test_multi_predict_equals_per_track_predict():
    rng = np.random.default_rng(1)
    kf = KalmanFilter()
    means, covs = [], []
    for _ in range(17):
        m, c = kf.initiate(_random_box(rng))
        for _ in range(rng.integers(0, 5)):
            m, c = kf.predict(m, c)
            m, c = kf.update(m, c, m[:4] + rng.normal(size=4) * [2, 2, 0.01, 1])
        means.append(m)
        covs.append(c)
    multi_m, multi_c = kf.multi_predict(np.stack(means), np.stack(covs))
    for i, (m, c) in enumerate(zip(means, covs)):
        pm, pc = kf.predict(m, c)
        np.testing.assert_allclose(multi_m[i], pm, rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(multi_c[i], pc, rtol=1e-12, atol=1e-12)


def test_predict_tracks_equals_track_predict():
    rng = np.random.default_rng(2)
    kf = KalmanFilter()
    a = [Track(*kf.initiate(_random_box(rng)), track_id=i, n_init=3, max_age=30) for i in range(5)]
    b = [Track(t.mean.copy(), t.covariance.copy(), t.track_id, 3, 30) for t in a]
    predict_tracks(kf, a)
    for t in b:
        t.predict(kf)
    for ta, tb in zip(a, b):
        np.testing.assert_allclose(ta.mean, tb.mean)
        np.testing.assert_allclose(ta.covariance, tb.covariance)
        assert ta.age == tb.age == 2 and ta.time_since_update == tb.time_since_update == 1


def test_chi2_table_is_the_095_quantile():
    for dof, value in CHI2INV95.items():
        assert value == pytest.approx(chi2.ppf(0.95, dof), abs=1e-3)


def test_gating_distance_is_squared_mahalanobis():
    rng = np.random.default_rng(3)
    kf = KalmanFilter()
    mean, cov = kf.initiate(_random_box(rng))
    mean, cov = kf.predict(mean, cov)
    proj_mean, proj_cov = kf.project(mean, cov)
    z = proj_mean + rng.normal(size=(6, 4)) * [5, 5, 0.05, 5]
    expected = [(d @ np.linalg.inv(proj_cov) @ d) for d in z - proj_mean]
    np.testing.assert_allclose(kf.gating_distance(mean, cov, z), expected, rtol=1e-9)
    pos_cov = proj_cov[:2, :2]
    expected_pos = [(d @ np.linalg.inv(pos_cov) @ d) for d in (z - proj_mean)[:, :2]]
    np.testing.assert_allclose(kf.gating_distance(mean, cov, z, only_position=True), expected_pos, rtol=1e-9)


def test_gate_accepts_near_and_rejects_far_measurements():
    kf = KalmanFilter()
    mean, cov = kf.initiate(np.array([100.0, 100.0, 0.8, 50.0]))
    mean, cov = kf.predict(mean, cov)
    near = np.array([[101.0, 99.0, 0.8, 51.0]])
    far = np.array([[300.0, 100.0, 0.8, 50.0]])
    assert kf.gating_distance(mean, cov, near)[0] < CHI2INV95[4]
    assert kf.gating_distance(mean, cov, far)[0] > CHI2INV95[4]
    assert kf.gating_distance(mean, cov, far, only_position=True)[0] > CHI2INV95[2]


def test_multi_gating_distance_matches_per_track():
    rng = np.random.default_rng(4)
    kf = KalmanFilter()
    states = [kf.predict(*kf.initiate(_random_box(rng))) for _ in range(4)]
    z = np.stack([_random_box(rng) for _ in range(7)])
    multi = kf.multi_gating_distance(np.stack([m for m, _ in states]), np.stack([c for _, c in states]), z)
    assert multi.shape == (4, 7)
    for i, (m, c) in enumerate(states):
        np.testing.assert_allclose(multi[i], kf.gating_distance(m, c, z), rtol=1e-10)


def test_noise_scales_with_height():
    kf = KalmanFilter()
    small = kf.initiate(np.array([0, 0, 1, 20.0]))[1]
    large = kf.initiate(np.array([0, 0, 1, 200.0]))[1]
    assert large[0, 0] == pytest.approx(100 * small[0, 0])


@pytest.mark.parametrize("name", ["std_weight_position", "std_weight_velocity", "dt"])
@pytest.mark.parametrize("value", [0, -1.0, float("nan"), "x"])
def test_bad_parameters_name_themselves(name, value):
    with pytest.raises(ValueError, match=name):
        KalmanFilter(**{name: value})


def test_multi_update_equals_per_track_update():
    rng = np.random.default_rng(6)
    kf = KalmanFilter()
    states = [kf.predict(*kf.initiate(_random_box(rng))) for _ in range(9)]
    z = np.stack([m[:4] + rng.normal(size=4) * [3, 3, 0.01, 2] for m, _ in states])
    means, covs = kf.multi_update(np.stack([m for m, _ in states]), np.stack([c for _, c in states]), z)
    for i, (m, c) in enumerate(states):
        um, uc = kf.update(m, c, z[i])
        np.testing.assert_allclose(means[i], um, rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(covs[i], uc, rtol=1e-10, atol=1e-10)


def test_update_tracks_equals_track_update():
    from tracker.track import update_tracks

    rng = np.random.default_rng(7)
    kf = KalmanFilter()
    a = [Track(*kf.predict(*kf.initiate(_random_box(rng))), track_id=i, n_init=2, max_age=30) for i in range(4)]
    b = [Track(t.mean.copy(), t.covariance.copy(), t.track_id, 2, 30) for t in a]
    a[3].motion_stale = b[3].motion_stale = True  # re-initialised, not corrected
    z = np.stack([t.mean[:4] + rng.normal(size=4) for t in a])
    feats = rng.normal(size=(4, 8))
    update_tracks(kf, a, z, [5, 6, 7, 8], feats, [0.1, 0.2, 0.3, 0.4])
    for i, t in enumerate(b):
        t.update(kf, z[i], 5 + i, feats[i], 0.1 * (i + 1))
    for ta, tb in zip(a, b):
        np.testing.assert_allclose(ta.mean, tb.mean, rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(ta.covariance, tb.covariance, rtol=1e-10, atol=1e-10)
        assert (ta.det_index, ta.hits, ta.state, ta.motion_stale) == (tb.det_index, tb.hits, tb.state, False)
        assert ta.confidence == pytest.approx(tb.confidence)
        np.testing.assert_array_equal(ta.pending_features[-1], tb.pending_features[-1])
    np.testing.assert_allclose(a[3].mean[:4], z[3])
