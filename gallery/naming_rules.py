"""The two rules that turn a track's evidence into a name or Unknown.

* :class:`MeanSimilarityRule`: the cosine similarity of the track's
  quality-weighted mean embedding to the best person's template must reach a
  threshold, with a margin over the runner-up; sticky with hysteresis. The
  threshold is one for every face size, or, with a
  :class:`~gallery.size_threshold.SizeAwareThreshold`, follows the track's
  face height and the gallery's size.
* :class:`EvidenceRule`: the open-set posterior of :mod:`gallery.evidence`,
  which knows how informative a face of each height is.

Both need ``min_observations`` pieces of evidence before any name, and both
keep a name while the evidence still supports it.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import List, Optional

import numpy as np

from gallery.evidence import EvidenceModel, posteriors
from gallery.size_threshold import SizeAwareThreshold
from tracker.checks import check_int, check_number

logger = logging.getLogger(__name__)

RULES = ("mean", "evidence")


@dataclass(frozen=True)
class Decision:
    """A rule's verdict: the name (None = Unknown), the index of the person it rests on, its posterior.

    ``confident`` is False for a name whose score is below the rule's
    threshold of large faces (the size-aware band of small faces), which the
    identifier may ask the scene's context to corroborate.
    """

    name: Optional[str]
    person: int
    posterior: float = float("nan")
    confident: bool = True


class MeanSimilarityRule:
    """Threshold, margin and hysteresis on the mean embedding's similarities (see the Identifier's keywords).

    ``by_size``: the threshold of a track of faces of its height in a gallery
    of its size; None: ``similarity_threshold`` for every track.
    """

    def __init__(self, similarity_threshold: float, min_margin: float, hysteresis: float, min_observations: int,
                 by_size: Optional[SizeAwareThreshold] = None):
        self.similarity_threshold = check_number("similarity_threshold", similarity_threshold, -1, 1)
        self.min_margin = check_number("min_margin", min_margin, 0, 2)
        self.hysteresis = check_number("hysteresis", hysteresis, 0, 1)
        self.min_observations = check_int("min_observations", min_observations, 1)
        self.by_size = by_size

    def threshold(self, height: float, gallery_size: int) -> float:
        """The similarity a track of faces ``height`` px tall needs in a gallery of ``gallery_size`` people."""
        if self.by_size is None or not np.isfinite(height):
            return self.similarity_threshold
        return self.by_size.at(height, gallery_size)

    def decide(self, scores: np.ndarray, people: List[str], current: Optional[str], observations: int,
               evidence=None, height: float = float("nan")) -> Decision:
        """``scores``: ``(P,)`` similarities of the track's mean embedding; ``current``: its name so far;
        ``height``: the track's (evidence-weighted) face height in pixels."""
        threshold = self.threshold(height, len(people))
        best = int(np.argmax(scores))
        best_score = float(scores[best])
        if current is not None and current in people:
            cur = people.index(current)
            challenger_wins = (best != cur and best_score >= threshold
                               and best_score - float(scores[cur]) >= self.min_margin)
            if float(scores[cur]) >= threshold - self.hysteresis and not challenger_wins:
                return Decision(current, cur, confident=float(scores[cur]) >= self.similarity_threshold)
            logger.debug("name %r withdrawn (score %.3f, best %r %.3f)", current, scores[cur], people[best], best_score)
        if (observations >= self.min_observations and best_score >= threshold
                and margin_of(scores, best) >= self.min_margin):
            return Decision(people[best], best, confident=best_score >= self.similarity_threshold)
        return Decision(None, best)


class EvidenceRule:
    """Name the most probable person once the open-set posterior reaches ``min_posterior``.

    A named track keeps its name while that person's posterior stays at or
    above ``keep_posterior`` and nobody else reaches ``min_posterior``.
    """

    def __init__(self, model: EvidenceModel, unknown_prior: float, min_posterior: float, keep_posterior: float,
                 min_observations: int):
        self.model = model
        self.unknown_prior = check_number("unknown_prior", unknown_prior, 0, 1, low_open=True, high_open=True)
        self.min_posterior = check_number("min_posterior", min_posterior, 0, 1, low_open=True)
        self.keep_posterior = check_number("keep_posterior", keep_posterior, 0, self.min_posterior, low_open=True)
        self.min_observations = check_int("min_observations", min_observations, 1)

    def decide(self, scores: np.ndarray, people: List[str], current: Optional[str], observations: int,
               evidence=None, height: float = float("nan")) -> Decision:
        """``evidence``: the track's :class:`gallery.evidence.TrackEvidence` (which knows its heights)."""
        if evidence is None or evidence.precision <= 0:
            return Decision(None, int(np.argmax(scores)))
        post, _ = posteriors(self.model.llr(evidence), self.unknown_prior)
        best = int(np.argmax(post))
        if current is not None and current in people:
            cur = people.index(current)
            challenger_wins = best != cur and post[best] >= self.min_posterior
            if post[cur] >= self.keep_posterior and not challenger_wins:
                return Decision(current, cur, float(post[cur]))
        if observations >= self.min_observations and post[best] >= self.min_posterior:
            return Decision(people[best], best, float(post[best]))
        return Decision(None, best, float(post[best]))


def margin_of(scores: np.ndarray, i: int) -> float:
    """``scores[i]`` minus the best other score (a single person's runner-up, "nobody", scores 0)."""
    if len(scores) == 1:
        return float(scores[i])
    return float(scores[i] - np.delete(scores, i).max())
