"""A stateless constant-velocity Kalman filter for boxes in ``xyah`` space.

The state is 8-dimensional, ``(cx, cy, a, h, vx, vy, va, vh)``: box centre,
aspect ratio ``a = w / h``, height, and their velocities. The measurement is
``(cx, cy, a, h)``. Process and measurement noise scale with the box height,
so a large face close to the camera may move more pixels per frame than a
small one far away (as in deep_sort).

The filter holds no per-track state: every method takes a mean and a
covariance and returns new ones, so one filter serves every track and can be
injected into the tracker. ``multi_predict`` predicts many tracks at once (as
ByteTrack does) and ``gating_distance`` / ``multi_gating_distance`` give the
squared Mahalanobis distance used for gating against :data:`CHI2INV95`.
"""
from __future__ import annotations

from typing import Tuple

import numpy as np

#: The 0.95 quantile of the chi-square distribution with N degrees of freedom
#: (N = 1..9), from deep_sort; used as the Mahalanobis gating threshold
#: (4 for the full measurement, 2 for position only).
CHI2INV95 = {
    1: 3.8415,
    2: 5.9915,
    3: 7.8147,
    4: 9.4877,
    5: 11.070,
    6: 12.592,
    7: 14.067,
    8: 15.507,
    9: 16.919,
}

_NDIM = 4


class KalmanFilter:
    """Constant-velocity Kalman filter over ``(cx, cy, a, h)`` and velocities.

    Parameters
    ----------
    std_weight_position : float
        Standard deviation of the position noise, as a fraction of the box
        height (deep_sort: ``1 / 20``).
    std_weight_velocity : float
        Standard deviation of the velocity noise, as a fraction of the box
        height (deep_sort: ``1 / 160``).
    dt : float
        Time step between frames in the transition matrix (1 frame).

    Raises
    ------
    ValueError
        If a weight or ``dt`` is not a finite positive number.
    """

    def __init__(
        self,
        std_weight_position: float = 1.0 / 20,
        std_weight_velocity: float = 1.0 / 160,
        dt: float = 1.0,
    ) -> None:
        for name, value in (
            ("std_weight_position", std_weight_position),
            ("std_weight_velocity", std_weight_velocity),
            ("dt", dt),
        ):
            if not (isinstance(value, (int, float)) and np.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
        self.std_weight_position = float(std_weight_position)
        self.std_weight_velocity = float(std_weight_velocity)
        self.dt = float(dt)

        self._motion_mat = np.eye(2 * _NDIM)
        for i in range(_NDIM):
            self._motion_mat[i, _NDIM + i] = self.dt
        self._update_mat = np.eye(_NDIM, 2 * _NDIM)

    @property
    def motion_mat(self) -> np.ndarray:
        """The ``(8, 8)`` transition matrix ``F`` (a copy)."""
        return self._motion_mat.copy()

    @property
    def update_mat(self) -> np.ndarray:
        """The ``(4, 8)`` measurement matrix ``H`` (a copy)."""
        return self._update_mat.copy()

    # ------------------------------------------------------------------ noise
    def _process_std(self, height: np.ndarray) -> np.ndarray:
        """``(..., 8)`` process noise standard deviations for heights ``(...,)``."""
        h = np.asarray(height, dtype=np.float64)[..., None]
        wp, wv = self.std_weight_position, self.std_weight_velocity
        pos = np.concatenate([wp * h, wp * h, np.full_like(h, 1e-2), wp * h], axis=-1)
        vel = np.concatenate([wv * h, wv * h, np.full_like(h, 1e-5), wv * h], axis=-1)
        return np.concatenate([pos, vel], axis=-1)

    def _measurement_std(self, height: np.ndarray) -> np.ndarray:
        """``(..., 4)`` measurement noise standard deviations for heights ``(...,)``."""
        h = np.asarray(height, dtype=np.float64)[..., None]
        wp = self.std_weight_position
        return np.concatenate([wp * h, wp * h, np.full_like(h, 1e-1), wp * h], axis=-1)

    def process_noise(self, mean: np.ndarray) -> np.ndarray:
        """The ``(8, 8)`` process noise covariance ``Q`` for a state ``(8,)``."""
        return np.diag(np.square(self._process_std(mean[3])))

    def measurement_noise(self, mean: np.ndarray) -> np.ndarray:
        """The ``(4, 4)`` measurement noise covariance ``R`` for a state ``(8,)``."""
        return np.diag(np.square(self._measurement_std(mean[3])))

    # ---------------------------------------------------------------- methods
    def initiate(self, measurement: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """Create a track state from an unassociated measurement.

        Parameters
        ----------
        measurement : ndarray
            A ``(4,)`` box ``(cx, cy, a, h)``.

        Returns
        -------
        (ndarray, ndarray)
            The ``(8,)`` mean (velocities 0) and ``(8, 8)`` covariance.
        """
        z = np.asarray(measurement, dtype=np.float64).reshape(_NDIM)
        mean = np.r_[z, np.zeros(_NDIM)]
        h = z[3]
        wp, wv = self.std_weight_position, self.std_weight_velocity
        std = [2 * wp * h, 2 * wp * h, 1e-2, 2 * wp * h, 10 * wv * h, 10 * wv * h, 1e-5, 10 * wv * h]
        return mean, np.diag(np.square(std))

    def predict(self, mean: np.ndarray, covariance: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """The prediction step of one track: ``(8,)`` mean and ``(8, 8)`` covariance in and out (see :meth:`multi_predict`)."""
        means, covariances = self.multi_predict(np.asarray(mean)[None], np.asarray(covariance)[None])
        return means[0], covariances[0]

    def multi_predict(self, means: np.ndarray, covariances: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """The prediction step of many tracks: ``(N, 8)`` means and ``(N, 8, 8)`` covariances in and out.

        Equal to calling :meth:`predict` on each track, in one vectorised pass.
        """
        means, covariances = _as_states(means, covariances)
        F = self._motion_mat
        var = np.square(self._process_std(means[:, 3]))
        new_cov = F @ covariances @ F.T
        idx = np.arange(2 * _NDIM)
        new_cov[:, idx, idx] += var
        return means @ F.T, new_cov

    def project(self, mean: np.ndarray, covariance: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """One state projected to measurement space: ``(4,)`` mean and ``(4, 4)`` covariance with measurement noise."""
        means, covariances = self.multi_project(np.asarray(mean)[None], np.asarray(covariance)[None])
        return means[0], covariances[0]

    def multi_project(self, means: np.ndarray, covariances: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        """Project many states to measurement space: ``(N, 4)`` and ``(N, 4, 4)``."""
        means, covariances = _as_states(means, covariances)
        proj_cov = covariances[:, :_NDIM, :_NDIM].copy()
        idx = np.arange(_NDIM)
        proj_cov[:, idx, idx] += np.square(self._measurement_std(means[:, 3]))
        return means[:, :_NDIM].copy(), proj_cov

    def update(
        self, mean: np.ndarray, covariance: np.ndarray, measurement: np.ndarray
    ) -> Tuple[np.ndarray, np.ndarray]:
        """The correction step of one track with a ``(4,)`` ``(cx, cy, a, h)`` measurement (see :meth:`multi_update`)."""
        means, covariances = self.multi_update(np.asarray(mean)[None], np.asarray(covariance)[None],
                                               np.asarray(measurement, dtype=np.float64).reshape(1, _NDIM))
        return means[0], covariances[0]

    def multi_update(
        self, means: np.ndarray, covariances: np.ndarray, measurements: np.ndarray
    ) -> Tuple[np.ndarray, np.ndarray]:
        """The correction step of many tracks, one ``(N, 4)`` row of measurements per track.

        Takes the predicted ``(N, 8)`` means and ``(N, 8, 8)`` covariances and
        returns the corrected ones, equal to calling :meth:`update` on each track.
        """
        means, covariances = _as_states(means, covariances)
        z = np.asarray(measurements, dtype=np.float64).reshape(-1, _NDIM)
        projected_mean, projected_cov = self.multi_project(means, covariances)
        pht = covariances[:, :, :_NDIM]  # P H^T with H = [I 0]: (N, 8, 4)
        kalman_gain = np.swapaxes(np.linalg.solve(projected_cov, np.swapaxes(pht, 1, 2)), 1, 2)
        innovation = z - projected_mean
        new_means = means + np.einsum("nij,nj->ni", kalman_gain, innovation)
        new_covs = covariances - kalman_gain @ projected_cov @ np.swapaxes(kalman_gain, 1, 2)
        return new_means, new_covs

    def gating_distance(
        self,
        mean: np.ndarray,
        covariance: np.ndarray,
        measurements: np.ndarray,
        only_position: bool = False,
    ) -> np.ndarray:
        """``(M,)`` squared Mahalanobis distances of one state to ``(M, 4)`` measurements.

        Compare with ``CHI2INV95[4]`` (``CHI2INV95[2]`` with ``only_position``); see :meth:`multi_gating_distance`.
        """
        return self.multi_gating_distance(
            np.asarray(mean)[None], np.asarray(covariance)[None], measurements, only_position
        )[0]

    def multi_gating_distance(
        self,
        means: np.ndarray,
        covariances: np.ndarray,
        measurements: np.ndarray,
        only_position: bool = False,
    ) -> np.ndarray:
        """Squared Mahalanobis distances of ``N`` states to ``M`` measurements.

        Parameters
        ----------
        means : ndarray
            An ``(N, 8)`` matrix of state means.
        covariances : ndarray
            An ``(N, 8, 8)`` array of state covariances.
        measurements : ndarray
            An ``(M, 4)`` matrix of measurements ``(cx, cy, a, h)``.
        only_position : bool
            Use only the box centre (2 degrees of freedom).

        Returns
        -------
        ndarray
            An ``(N, M)`` matrix of squared Mahalanobis distances.
        """
        z = np.asarray(measurements, dtype=np.float64).reshape(-1, _NDIM)
        proj_mean, proj_cov = self.multi_project(means, covariances)
        if only_position:
            proj_mean, proj_cov, z = proj_mean[:, :2], proj_cov[:, :2, :2], z[:, :2]
        n, m = len(proj_mean), len(z)
        if n == 0 or m == 0:
            return np.zeros((n, m))
        d = z[None, :, :] - proj_mean[:, None, :]  # (N, M, k)
        # Cholesky factor L, then ||L^-1 d||^2 for every (track, measurement).
        chol = np.linalg.cholesky(proj_cov)  # (N, k, k)
        sol = np.linalg.solve(chol, np.swapaxes(d, 1, 2))  # (N, k, M)
        return np.sum(sol * sol, axis=1)


def _as_states(means, covariances) -> Tuple[np.ndarray, np.ndarray]:
    """``(N, 8)`` float64 means and ``(N, 8, 8)`` float64 covariances."""
    return (np.asarray(means, dtype=np.float64).reshape(-1, 2 * _NDIM),
            np.asarray(covariances, dtype=np.float64).reshape(-1, 2 * _NDIM, 2 * _NDIM))
