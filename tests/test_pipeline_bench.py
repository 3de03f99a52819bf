"""The benchmark's override parsing (the runs themselves are measured, not unit-tested)."""
import pytest

from facetrack.bench import EVERY_FRAME, merged, parse_set


def test_set_overrides_parse_yaml_values_and_merge_without_touching_the_original():
    base = {"pipeline": {"detect_interval": 3, "embed_policy": "needed"}, "detector": {"input_size": 640}}
    over = parse_set(["pipeline.detect_interval=2", "detector.input_size=480"])
    assert over == {"pipeline": {"detect_interval": 2}, "detector": {"input_size": 480}}
    out = merged(base, over)
    assert out["pipeline"] == {"detect_interval": 2, "embed_policy": "needed"} and base["detector"]["input_size"] == 640
    assert merged(base, EVERY_FRAME)["pipeline"] == {"detect_interval": 1, "warmup_detect_interval": 1,
                                                     "embed_policy": "all", "crop_detection": False}


@pytest.mark.parametrize("item", ["pipeline.detect_interval", "detect_interval=2"])
def test_malformed_overrides_exit(item):
    with pytest.raises(SystemExit):
        parse_set([item])
