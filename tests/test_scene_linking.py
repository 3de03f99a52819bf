"""Scene linking: the torso cue, shot threading, the linker's rules, and the pipeline with linking on."""
from __future__ import annotations

import numpy as np
import pytest

from gallery.identifier import Identifier
from gallery.index import GalleryIndex
from models.torso import TorsoDescriber
from pipeline.linking import SceneLinking
from pipeline.runner import Pipeline
from pipeline.scene_cut import HistogramSceneCutDetector
from pipeline.scene_links import GALLERY_TOP, SceneLinker
from pipeline.scenes import SceneThreader
from tracker.detections import Detections
from tracker.tracker import Tracker

W, H = 320, 240
RED, BLUE, GREEN, WHITE = (30, 30, 220), (220, 60, 30), (40, 180, 40), (235, 235, 235)


def frame_with(people, background=(90, 90, 90)):
    """A frame with each ``(x, y, size, torso_bgr)`` face drawn grey and its torso below it."""
    img = np.empty((H, W, 3), np.uint8)
    img[:] = background
    for x, y, size, torso in people:
        img[y:y + size, x:x + size] = (150, 160, 170)
        top = y + size + size // 3
        img[top:top + 2 * size, max(0, x - size // 2):x + size + size // 2] = torso
    return img


def torso_of(img, box):
    return TorsoDescriber().describe(img, np.asarray([box], np.float32))


# ----------------------------------------------------------------- torso cue
def test_the_same_clothes_match_at_any_face_size_and_other_colours_do_not():
    small = frame_with([(40, 20, 16, RED)])
    large = frame_with([(100, 20, 48, RED)])
    blue = frame_with([(100, 20, 48, BLUE)])
    a, b, c = torso_of(small, (40, 20, 56, 36)), torso_of(large, (100, 20, 148, 68)), torso_of(blue, (100, 20, 148, 68))
    assert a.valid.all() and b.valid.all() and c.valid.all()
    assert float(a.descriptor[0] @ b.descriptor[0]) > 0.9
    assert float(b.descriptor[0] @ c.descriptor[0]) < 0.6
    assert np.allclose(np.linalg.norm(b.descriptor, axis=1), 1.0, atol=1e-5)


def test_white_and_black_clothes_differ_although_neither_has_a_hue():
    white = frame_with([(100, 20, 48, WHITE)], background=(120, 40, 40))
    black = frame_with([(100, 20, 48, (10, 10, 10))], background=(120, 40, 40))
    box = (100, 20, 148, 68)
    assert float(torso_of(white, box).descriptor[0] @ torso_of(black, box).descriptor[0]) < 0.5


def test_a_torso_mostly_outside_the_frame_gives_no_descriptor():
    img = frame_with([(100, 180, 48, RED)])
    cue = torso_of(img, (100, 180, 148, 228))
    assert not cue.valid[0] and not cue.descriptor.any()


@pytest.mark.parametrize("kw", [dict(width_factor=0), dict(hue_bins=1), dict(min_visible=0), dict(top_gap=-1)])
def test_torso_describer_rejects_bad_keywords(kw):
    with pytest.raises(ValueError):
        TorsoDescriber(**kw)


# ----------------------------------------------------------------- shots into scenes
def _threader(**kw):
    return SceneThreader(lambda a, b: float(abs(a[0] - b[0])), **kw)


def test_cross_cutting_between_set_ups_is_one_scene_and_a_new_place_is_another():
    th = _threader(max_distance=0.1)
    wide, close_a, close_b, elsewhere = [np.array([v], np.float32) for v in (0.0, 0.5, 0.8, 0.3)]
    shots = [th.new_shot(h) for h in (wide, close_a, wide, close_b, close_a)]
    assert len({th.scene_of(s) for s in shots}) == 1          # every shot threaded across
    new = th.new_shot(elsewhere)
    assert th.scene_of(new) != th.scene_of(shots[0])
    assert not th.same_scene(shots[-1], new) and th.same_scene(shots[0], shots[3])


def test_a_shot_beyond_the_window_starts_a_new_scene():
    th = _threader(max_distance=0.1, window_shots=2)
    first = th.new_shot(np.array([0.0], np.float32))
    for v in (0.5, 0.7, 0.9):
        th.new_shot(np.array([v], np.float32))
    back = th.new_shot(np.array([0.0], np.float32))
    assert th.scene_of(back) != th.scene_of(first)


# ----------------------------------------------------------------- the linker's rules
RED_T = np.array([1.0, 0.0, 0.0], np.float32)
BLUE_T = np.array([0.0, 1.0, 0.0], np.float32)
REDDISH_T = np.array([0.95, 0.0, 0.312], np.float32) / np.linalg.norm([0.95, 0.0, 0.312])


def _observe(linker, frames, ids, shot, names, torsos, faces=None):
    for _ in range(frames):
        linker.observe(ids, shot, names, None if torsos is None else np.asarray(torsos, np.float32),
                       None if torsos is None else np.ones(len(ids), bool))
        links = linker.link(ids, lambda a, b: (a < 10) == (b < 10),   # shots 0-9: scene 1, 10+: scene 2
                            None if faces is None else faces.get)
    return links


def test_a_track_dressed_like_a_named_one_of_the_scene_shows_that_name():
    linker = SceneLinker()
    _observe(linker, 5, [1], 0, ["ann"], [RED_T])
    links = _observe(linker, 5, [2], 1, [None], [RED_T])
    assert links.names == ["ann"] and links.linked.tolist() == [True]
    assert links.identity_ids[0] == linker.identity_of(1)


def test_two_people_who_swap_places_across_a_cut_keep_their_identities():
    linker = SceneLinker()
    _observe(linker, 5, [1, 2], 0, ["ann", "bob"], [RED_T, BLUE_T])
    # After the cut the person on the left wears blue: clothes follow people, not positions.
    links = _observe(linker, 5, [3, 4], 1, [None, None], [BLUE_T, RED_T])
    assert links.names == ["bob", "ann"]
    assert linker.identity_of(3) == linker.identity_of(2) and linker.identity_of(4) == linker.identity_of(1)


def test_two_people_dressed_alike_on_screen_together_are_never_merged():
    linker = SceneLinker()
    links = _observe(linker, 8, [1, 2], 0, ["ann", None], [RED_T, RED_T])
    assert links.names == ["ann", None]
    assert linker.identity_of(1) != linker.identity_of(2)
    # A third track in the same clothes could be either of them: it stays unlinked.
    links = _observe(linker, 5, [3], 1, [None], [RED_T])
    assert links.names == [None] and linker.identity_of(3) not in (linker.identity_of(1), linker.identity_of(2))


def test_a_name_never_crosses_into_a_new_scene_through_clothing_alone():
    linker = SceneLinker()
    _observe(linker, 5, [1], 0, ["ann"], [RED_T])
    links = _observe(linker, 5, [2], 10, [None], [RED_T])
    assert links.names == [None]
    # ...but a face still names a track in the new scene, and tracks of that scene link to it.
    _observe(linker, 5, [3], 11, ["ann"], [RED_T])
    links = _observe(linker, 5, [4], 12, [None], [REDDISH_T])
    assert links.names == ["ann"]


def test_a_face_decision_for_someone_else_wins_over_the_clothes():
    linker = SceneLinker()
    _observe(linker, 5, [1], 0, ["ann"], [RED_T])
    assert _observe(linker, 5, [2], 1, [None], [RED_T]).names == ["ann"]
    links = _observe(linker, 1, [2], 1, ["bob"], [RED_T])          # its face now says bob
    assert links.names == ["bob"] and not links.linked[0]
    assert linker.identity_of(2) != linker.identity_of(1)
    assert _observe(linker, 1, [1], 0, ["ann"], [RED_T]).names == ["ann"]


def test_faces_that_clearly_disagree_veto_a_clothing_link():
    linker = SceneLinker(min_face_similarity=0.0)
    faces = {1: np.array([1.0, 0.0], np.float32), 2: np.array([-1.0, 0.0], np.float32)}
    _observe(linker, 5, [1], 0, ["ann"], [RED_T], faces)
    for _ in range(5):
        linker.observe([2], 1, [None], RED_T[None], np.ones(1, bool))
        links = linker.link([2], lambda a, b: True, faces.get)
    assert links.names == [None]


def _face(*v):
    v = np.asarray(v, np.float32)
    return v / np.linalg.norm(v)


ANN_F, BOB_F = _face(1, 0, 0, 0), _face(0, 1, 0, 0)


def test_an_unnamed_track_whose_face_matches_a_named_one_of_the_scene_shows_that_name():
    linker = SceneLinker()
    faces = {1: ANN_F, 2: BOB_F, 3: _face(0.8, 0.1, 0.5, 0.3)}     # 3: ann's face, small and blurred
    _observe(linker, 5, [1, 2], 0, ["ann", "bob"], None, faces)
    links = _observe(linker, 3, [3], 1, [None], None, faces)     # no torso at all: the face alone links
    assert links.names == ["ann"] and links.linked.tolist() == [True]
    assert linker.identity_of(3) == linker.identity_of(1)


def test_a_face_link_waits_for_enough_embedded_frames_and_stays_in_its_scene():
    linker = SceneLinker(min_face_observations=3)
    faces = {1: ANN_F, 2: ANN_F, 3: ANN_F}
    _observe(linker, 5, [1], 0, ["ann"], None, faces)
    assert _observe(linker, 2, [2], 1, [None], None, faces).names == [None]
    assert _observe(linker, 1, [2], 1, [None], None, faces).names == ["ann"]
    assert _observe(linker, 5, [3], 10, [None], None, faces).names == [None]     # another scene


def test_a_face_between_two_named_people_or_against_the_clothes_stays_unlinked():
    linker = SceneLinker()
    faces = {1: ANN_F, 2: BOB_F, 3: _face(1, 0.9, 0.3, 0), 4: _face(1, 0.1, 0.3, 0)}
    _observe(linker, 5, [1, 2], 0, ["ann", "bob"], [RED_T, BLUE_T], faces)
    assert _observe(linker, 5, [3], 1, [None], None, faces).names == [None]     # face: ann ~ bob, no margin
    linker = SceneLinker()
    _observe(linker, 5, [1, 2], 0, ["ann", "bob"], [RED_T, BLUE_T], faces)
    links = _observe(linker, 5, [4], 2, [None], [BLUE_T], faces)                   # face: ann, clothes: bob
    assert links.names == [None] and linker.identity_of(4) not in (linker.identity_of(1), linker.identity_of(2))


def test_tracks_on_screen_together_are_never_linked_by_face():
    linker = SceneLinker()
    faces = {1: ANN_F, 2: ANN_F}
    links = _observe(linker, 6, [1, 2], 0, ["ann", None], None, faces)
    assert links.names == ["ann", None] and linker.identity_of(1) != linker.identity_of(2)


def test_a_link_waits_for_enough_torso_observations():
    linker = SceneLinker(min_torso_observations=3)
    _observe(linker, 3, [1], 0, ["ann"], [RED_T])
    assert _observe(linker, 2, [2], 1, [None], [RED_T]).names == [None]
    assert _observe(linker, 1, [2], 1, [None], [RED_T]).names == ["ann"]


def _enrolled(face):
    """The gallery of the face tests: ann, bob and cid are the first three axes."""
    return ["ann", "bob", "cid"], np.asarray(face[:3])


def _gallery(scores):
    return lambda face: (list(scores), np.asarray(list(scores.values())))


def test_a_track_whose_own_face_ranks_another_person_clearly_higher_is_not_linked_by_clothes():
    faces = {1: ANN_F, 2: _face(0.05, 0, 0.35, 0.93)}            # 2: weak, but closer to cid than to ann
    for gallery, expected in ((None, ["ann"]), (_enrolled, [None])):
        linker = SceneLinker(gallery_scores=gallery)
        _observe(linker, 5, [1], 0, ["ann"], [RED_T], faces)
        links = _observe(linker, 5, [2], 1, [None], [RED_T], faces)
        assert links.names == expected
    assert linker.identity_of(2) != linker.identity_of(1)


def test_in_a_large_gallery_a_linked_name_far_below_the_best_people_is_vetoed_too():
    # 200 people from 0.3 down, and ann far below the first 16.
    gallery = _gallery({**{f"p{i}": 0.3 - 0.02 * i for i in range(200)}, "ann": -0.15})
    faces = {1: ANN_F, 2: _face(0.05, 0, 0.35, 0.93)}
    linker = SceneLinker(gallery_scores=gallery)
    _observe(linker, 5, [1], 0, ["ann"], [RED_T], faces)
    assert _observe(linker, 5, [2], 1, [None], [RED_T], faces).names == [None]
    # The track keeps only its best people's scores, not a copy of the gallery.
    assert len(linker._tracks[2].gallery) == GALLERY_TOP
    # A name close to the best people is kept even when it is not among the first ones kept.
    linker = SceneLinker(gallery_scores=_gallery({**{f"p{i}": 0.3 for i in range(200)}, "ann": 0.29}))
    _observe(linker, 5, [1], 0, ["ann"], [RED_T], faces)
    assert _observe(linker, 5, [2], 1, [None], [RED_T], faces).names == ["ann"]


def test_a_weak_face_that_does_not_rank_anyone_clearly_above_the_link_keeps_it():
    linker = SceneLinker(gallery_scores=_enrolled, max_name_deficit=0.08)
    faces = {1: ANN_F, 2: _face(0.2, 0, 0.25, 0.95)}             # cid leads ann by 0.05 only
    _observe(linker, 5, [1], 0, ["ann"], [RED_T], faces)
    links = _observe(linker, 5, [2], 1, [None], [RED_T], faces)
    assert links.names == ["ann"] and links.linked.tolist() == [True]


def test_a_track_leaves_an_identity_once_it_is_named_for_someone_its_face_ranks_clearly_lower():
    linker = SceneLinker(gallery_scores=_enrolled)
    faces = {1: ANN_F, 2: _face(0.05, 0, 0.35, 0.93)}
    _observe(linker, 5, [1], 0, [None], [RED_T], faces)          # nobody named yet: the clothes link 2 to 1
    _observe(linker, 5, [2], 1, [None], [RED_T], faces)
    assert linker.identity_of(2) == linker.identity_of(1)
    _observe(linker, 1, [1], 0, ["ann"], [RED_T], faces)         # 1's face now names ann
    links = _observe(linker, 1, [2], 1, [None], [RED_T], faces)
    assert links.names == [None] and linker.identity_of(2) != linker.identity_of(1)


def test_the_gallery_veto_waits_for_enough_embedded_frames():
    linker = SceneLinker(gallery_scores=_enrolled, min_face_observations=3, min_torso_observations=1)
    faces = {1: ANN_F, 2: _face(0.05, 0, 0.35, 0.93)}
    _observe(linker, 5, [1], 0, ["ann"], [RED_T], faces)
    assert _observe(linker, 1, [2], 1, [None], [RED_T], faces).names == ["ann"]   # one frame: no veto yet
    assert _observe(linker, 2, [2], 1, [None], [RED_T], faces).names == [None]


@pytest.mark.parametrize("kw", [dict(min_similarity=1.5), dict(min_margin=-0.1), dict(min_torso_observations=0),
                                dict(min_face_similarity=2), dict(max_tracks=0), dict(min_face_link_similarity=-2),
                                dict(min_face_link_margin=-0.1), dict(min_face_observations=0),
                                dict(max_name_deficit=-0.1), dict(gallery_scores=5)])
def test_scene_linker_rejects_bad_keywords(kw):
    with pytest.raises(ValueError):
        SceneLinker(**kw)


def test_the_linker_forgets_its_oldest_tracks_beyond_max_tracks():
    linker = SceneLinker(max_tracks=3)
    for tid in range(1, 6):
        linker.observe([tid], 0, [None], RED_T[None], np.ones(1, bool))
    assert linker.identity_of(1) == -1 and linker.identity_of(5) != -1


# ----------------------------------------------------------------- the pipeline with linking
DIM = 64
SEEDS = {"ann": 11, "bob": 12}      # embedding seeds of the enrolled people (turned faces draw 10,000+)


def _unit(seed):
    v = np.random.default_rng(seed).normal(size=DIM).astype(np.float32)
    return v / np.linalg.norm(v)


#: (first frame, background, [(person, x, y, size, torso, face visible)])
SHOTS = [
    (0, (40, 120, 40), [("ann", 60, 30, 40, RED, True), ("bob", 200, 30, 40, BLUE, True)]),
    (30, (150, 60, 60), [("bob", 120, 40, 60, BLUE, True)]),                                  # close-up
    (60, (40, 120, 40), [("ann", 200, 30, 40, RED, False), ("bob", 60, 30, 40, BLUE, False)]),  # back to the wide
    (100, (20, 100, 220), [("ann", 120, 30, 40, RED, False)]),                                # another scene
]
END = 140


def _shot_at(t):
    return [s for s in SHOTS if s[0] <= t][-1]


class ShotDetector:
    def detect(self, frame):
        t = int(frame[0, 0, 0])
        people = _shot_at(t)[2]
        boxes = [[x, y, x + s, y + s] for _, x, y, s, _, _ in people]
        return Detections(np.asarray(boxes, np.float32).reshape(-1, 4), np.full(len(boxes), 0.9, np.float32))


class ShotEmbedder:
    """A visible face embeds as its person; a turned one as noise that matches nobody."""

    def __init__(self):
        self.rng = np.random.default_rng(1)

    def embed(self, frame, detections):
        t = int(frame[0, 0, 0])
        people = _shot_at(t)[2]
        out = []
        for box in detections.xyxy:
            name, *_, visible = min(people, key=lambda p: abs(p[1] - box[0]) + abs(p[2] - box[1]))
            v = (_unit(SEEDS[name]) if visible else _unit(int(self.rng.integers(10_000, 20_000))))
            out.append(v)
        return np.asarray(out, np.float32).reshape(-1, DIM)


def _render(t):
    _, background, people = _shot_at(t)
    img = frame_with([(x, y, s, torso) for _, x, y, s, torso, _ in people], background)
    img[0, 0] = (t, 0, 0)
    return img


def _run(linking: bool):
    index = GalleryIndex(["ann", "bob"], np.stack([_unit(SEEDS["ann"]), _unit(SEEDS["bob"])]))
    identifier = Identifier(index, similarity_threshold=0.5, min_margin=0.05, min_observations=2)
    cuts = HistogramSceneCutDetector()
    scene_linking = SceneLinking(SceneThreader(cuts.distance), cuts.histogram) if linking else None
    pipe = Pipeline(ShotDetector(), ShotEmbedder(), Tracker(n_init=2, reid_min_confidence=0.0), identifier, cuts,
                    detect_interval=1, warmup_detect_interval=1, embed_policy="all", fast_motion_fraction=0.0,
                    scene_linking=scene_linking)
    return [pipe.process(_render(t), t, t / 25.0) for t in range(END)]


def _names_at(results, t):
    r = results[t]
    return {(int(b[0]) // 100): n for b, n in zip(r.xyxy, r.names)}


def test_the_pipeline_names_turned_faces_by_their_clothes_within_the_scene_only():
    plain, linked = _run(False), _run(True)
    # Shot 3 returns to the wide set-up with both faces turned: only linking names them.
    assert set(_names_at(plain, 90).values()) == {None}
    assert _names_at(linked, 90) == {2: "ann", 0: "bob"}
    # Shot 4 is another place: ann's clothes alone do not carry her name there.
    assert _names_at(linked, 130) == {1: None}
    assert linked[90].scene == linked[10].scene != linked[130].scene
    ann_ids = {int(i) for r in (linked[20], linked[90]) for i, n in zip(r.identity_ids, r.names) if n == "ann"}
    assert len(ann_ids) == 1                                   # one identity for ann in the scene
    # Visible faces are named alike with and without linking.
    assert _names_at(plain, 20) == _names_at(linked, 20) == {0: "ann", 2: "bob"}
