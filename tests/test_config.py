"""Config loading and dotted overrides."""
import json
import os

import pytest

from conftest import ROOT
from utils import apply_overrides, load_config


def test_overrides_parse_json_values_and_walk_lists(tmp_path):
    cfg = {"arch": {"args": {"attention": "sdpa", "video_params": {"num_frames": 16}}},
           "data_loader": [{"args": {"batch_size": 24}}]}
    apply_overrides(cfg, ["arch.args.video_params.num_frames=8", "arch.args.attention=plain",
                          "data_loader.0.args.batch_size=4"])
    assert cfg["arch"]["args"]["video_params"]["num_frames"] == 8
    assert cfg["arch"]["args"]["attention"] == "plain"
    assert cfg["data_loader"][0]["args"]["batch_size"] == 4


def test_unknown_override_keys_and_bad_files_are_named(tmp_path):
    with pytest.raises(KeyError, match="arch.arg"):
        apply_overrides({"arch": {"args": {}}}, ["arch.arg.x=1"])
    with pytest.raises(ValueError, match="key.sub=value"):
        apply_overrides({}, ["arch"])
    with pytest.raises(FileNotFoundError, match="nope.json"):
        load_config(tmp_path / "nope.json")
    (tmp_path / "bad.json").write_text("{\n  'a': 1\n}")
    with pytest.raises(ValueError, match="bad.json"):
        load_config(tmp_path / "bad.json")


@pytest.mark.parametrize("name", ["dist-yt-pt", "dist-cc-web-pt", "demo-cpu"])
def test_shipped_configs_parse(name):
    cfg = load_config(os.path.join(ROOT, "configs", f"{name}.json"))
    assert cfg["arch"]["type"] == "TVTS"
    json.dumps(cfg)
