"""Clustering Unknown faces and the query benchmark helper."""
from __future__ import annotations

import numpy as np
import pytest

from gallery.bench import benchmark_query, format_bench, random_unit_vectors
from gallery.cluster import cluster_embeddings, summarize_clusters
from gallery.index import l2_normalize
from test_gallery_fakes import DIM, person_vector


def _faces(people, per_person, noise, rng):
    rows, truth = [], []
    for k in range(per_person):
        for p in people:
            rows.append(l2_normalize(person_vector(p) + noise * rng.standard_normal(DIM) / np.sqrt(DIM)))
            truth.append(p)
    return np.stack(rows), truth


def test_recovers_people_from_noisy_track_means():
    rng = np.random.default_rng(0)
    x, truth = _faces(["u1", "u2", "u3", "u4"], 5, noise=1.0, rng=rng)   # cos to own centre ~0.7
    labels = cluster_embeddings(x, similarity_threshold=0.35)
    assert len(set(labels)) == 4
    for lab in set(labels):
        assert len({t for t, l in zip(truth, labels) if l == lab}) == 1   # pure clusters
    assert labels[0] == 0 and labels[1] == 1            # numbered by first appearance
    clusters = summarize_clusters(x, labels, min_size=2)
    assert [len(c.members) for c in clusters] == [5, 5, 5, 5]
    assert all(c.cohesion > 0.7 for c in clusters)
    assert clusters[0].centroid.shape == (DIM,)


def test_threshold_controls_merging():
    rng = np.random.default_rng(1)
    x, _ = _faces(["u1", "u2"], 4, noise=0.3, rng=rng)
    assert len(set(cluster_embeddings(x, similarity_threshold=0.5))) == 2
    assert len(set(cluster_embeddings(x, similarity_threshold=-0.5))) == 1      # everything joins
    assert len(set(cluster_embeddings(x, similarity_threshold=0.999))) == 8     # nothing joins


def test_single_linkage_chains_average_does_not():
    # a chain a - b - c where neighbours are similar (0.6) but the ends are not (0.0)
    a = np.array([1.0, 0.0, 0.0])
    c = np.array([0.0, 1.0, 0.0])
    b = l2_normalize(a + c)            # cos(a,b) = cos(b,c) = 0.707, cos(a,c) = 0
    x = np.stack([a, b, c])
    assert len(set(cluster_embeddings(x, similarity_threshold=0.6, linkage="single"))) == 1
    assert len(set(cluster_embeddings(x, similarity_threshold=0.6, linkage="average"))) == 2


def test_edge_cases_and_validation():
    assert cluster_embeddings(np.zeros((0, 4))).shape == (0,)
    assert list(cluster_embeddings(np.ones((1, 4)))) == [0]
    with pytest.raises(ValueError, match="linkage"):
        cluster_embeddings(np.ones((2, 4)), linkage="ward")
    with pytest.raises(ValueError, match="similarity_threshold"):
        cluster_embeddings(np.ones((2, 4)), similarity_threshold=2)
    with pytest.raises(ValueError, match="min_size"):
        summarize_clusters(np.ones((2, 4)), np.zeros(2), min_size=0)


def test_bench_runs_small_sizes():
    rng = np.random.default_rng(0)
    v = random_unit_vectors(1000, 64, rng, chunk=300)
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    results = benchmark_query([100, 1000], batch=4, dim=64, repeats=2)
    assert [r.embeddings for r in results] == [100, 1000] and results[1].people == 100
    assert all(r.query_ms_median > 0 for r in results)
    assert "query ms" in format_bench(results)
    with pytest.raises(ValueError, match="sizes"):
        benchmark_query([0])
