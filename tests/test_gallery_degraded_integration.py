"""The degraded-pairs protocol through the real detector and embedder on ../shared (skipped when it is absent)."""
from __future__ import annotations

import json

import numpy as np
import pytest

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def models(detector_weights, embedder_weights):
    from models.detector import FaceDetector
    from models.embedder import FaceEmbedder

    return FaceDetector(detector_weights, device="cpu"), FaceEmbedder(embedder_weights, device="cpu")


@pytest.fixture(scope="module")
def few_pairs(shared_data):
    """Four same-person and four different-person pairs of the shared verification list."""
    from gallery.pairs import read_pairs_csv

    pairs = read_pairs_csv(shared_data / "verification_pairs.csv")
    return [p for p in pairs if p[2]][:4] + [p for p in pairs if not p[2]][:4]


def test_the_protocol_through_the_real_models_at_two_heights(models, few_pairs):
    from gallery.degraded import run_degraded_pairs
    from gallery.degraded_stats import format_degraded_table

    result = run_degraded_pairs(few_pairs, *models, heights=(24, 112))
    print("\n" + format_degraded_table(result))
    assert result.left_out == []
    full, h24, h112 = result.stats
    assert (full.height, h24.height, h112.height) == (None, 24, 112)
    assert full.detection_rate == 1.0 and h112.detection_rate == 1.0
    # the detector's box of a 112 px face is about 112 px high; the small face is found where it was put
    assert abs(h112.box_height.p50 - 112) < 15 and abs(h24.box_height.p50 - 24) < 6
    assert h112.same.mean > h112.different.mean + 0.2
    assert full.same.mean > h24.same.mean                     # a 24 px face carries less identity
    json.dumps(result.to_dict(), allow_nan=False)
    rows = [r for r in result.rows if r.height == 112]
    assert all(np.isfinite(r.similarity) and 0.5 <= r.det_score <= 1 for r in rows)


def test_calibrate_heights_command_writes_table_json_and_plot(models, few_pairs, shared_models, tmp_path, capsys):
    from facetrack.gallery_cli import main

    csv = tmp_path / "pairs.csv"
    csv.write_text("path_a,path_b,same_person\n" + "".join(f"{a},{b},{int(s)}\n" for a, b, s in few_pairs[2:6]))
    out_json, out_png = tmp_path / "d.json", tmp_path / "d.png"
    code = main(["calibrate", str(csv), "--heights", "32", "64", "--models-dir", str(shared_models), "--device", "cpu",
                 "--embedder", "edgeface_xs", "--quiet", "--json", str(out_json), "--plot", str(out_png)])
    text = capsys.readouterr().out
    assert code == 0, text
    assert "32px" in text and "64px" in text and "TAR@1%" in text
    d = json.loads(out_json.read_text())
    assert [h["height"] for h in d["heights"]] == [None, 32, 64] and len(d["rows"]) == 4 * 3
    assert d["settings"]["embedder"] == "edgeface_xs" and out_png.stat().st_size > 1000
