"""Config loading and dotted overrides."""
import glob
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


SHIPPED = sorted(os.path.basename(p)[:-5] for p in glob.glob(os.path.join(ROOT, "configs", "*.json")))


@pytest.mark.parametrize("name", SHIPPED)
def test_shipped_configs_parse(name):
    cfg = load_config(os.path.join(ROOT, "configs", f"{name}.json"))
    method = ("TVTSv2" if name.startswith("tvtsv2") else "CPD" if name.startswith("cpd") else
              "SimVTP" if name.startswith("simvtp") else "TVTS")
    assert cfg["arch"]["type"] == method
    json.dumps(cfg)


def test_the_cpd_recipe_is_the_official_one_once_its_files_exist(tmp_path):
    """Instagram-300k: SGD 0.1 (momentum 0.9, wd 1e-4, clip 20), x0.1 after epochs 100, 201, 250 of 300; the text
    tower frozen for 150 epochs and its lr 3e-5 from epoch 150 (the official off-by-one); K 16392, tau 0.07."""
    from trainer.config import validate_config
    from utils.config import ConfigError
    cfg = load_config(os.path.join(ROOT, "configs", "cpd-ins300k.json"))
    with pytest.raises(ConfigError, match="not found"):
        validate_config(cfg, "cpd-ins300k")
    args = cfg["data_loader"][0]["args"]
    args["data_dir"], args["list_file"] = str(tmp_path), str(tmp_path / "ins_300k.json")
    (tmp_path / "ins_300k.json").write_text("{}")
    out = validate_config(cfg, "cpd-ins300k")
    assert out["optimizer"]["type"] == "SGD" and out["optimizer"]["args"] == {"lr": 0.1, "momentum": 0.9,
                                                                              "weight_decay": 1e-4}
    assert out["lr_scheduler"]["milestones"] == [100, 201, 250] and out["trainer"]["epochs"] == 300
    text = out["optimizer"]["param_groups"][0]
    assert (text["lr"], text["from_epoch"]) == (3e-5, 150) and out["loss"]["args"]["text_freeze_epochs"] == 150
    assert (out["loss"]["args"]["num_negatives"], out["loss"]["args"]["temperature"]) == (16392, 0.07)
    assert out["trainer"]["grad_clip"] == 20.0 and args["batch_size"] * 8 == 256


@pytest.mark.parametrize("name", ["dist-yt-pt", "dist-cc-web-pt"])
def test_official_recipes_pass_validation_once_their_files_exist(name, tmp_path):
    from trainer.config import validate_config
    from utils.config import ConfigError
    cfg = load_config(os.path.join(ROOT, "configs", f"{name}.json"))
    with pytest.raises(ConfigError, match="not found"):  # data and weights are not shipped
        validate_config(cfg, name)
    arch = cfg["arch"]["args"]
    for key in ("load_checkpoint",):
        if arch[key]:
            arch[key] = str(tmp_path / "ckpt.pth")
            (tmp_path / "ckpt.pth").write_bytes(b"")
    if arch["video_params"]["mae_checkpoint"]:
        arch["video_params"]["mae_checkpoint"] = str(tmp_path / "ckpt.pth")
        (tmp_path / "ckpt.pth").write_bytes(b"")
    for entry in cfg["data_loader"]:
        entry["args"]["data_dir"] = str(tmp_path)
    out = validate_config(cfg, name)
    assert out["optimizer"]["args"]["eps"] == 1e-6 and out["lr_scheduler"]["milestones"] == [12, 16]
    assert out["trainer"]["gather"] == "official" and out["trainer"]["precision"] == "fp32"


@pytest.mark.parametrize("size, ratio, batch, precision", [("b32", 0.0, 24, "fp32"), ("b16", 0.5, 12, "fp32"),
                                                          ("h14", 0.7, 2, "fp16")])
def test_tvtsv2_recipes_pass_validation_once_their_files_exist(size, ratio, batch, precision, tmp_path):
    from trainer.config import validate_config
    from utils.config import ConfigError
    cfg = load_config(os.path.join(ROOT, "configs", f"tvtsv2-{size}.json"))
    with pytest.raises(ConfigError, match="clip_checkpoint file not found"):  # CLIP weights are not shipped
        validate_config(cfg, size)
    cfg["arch"]["args"]["clip_checkpoint"] = str(tmp_path / "clip.pt")
    (tmp_path / "clip.pt").write_bytes(b"")
    for entry in cfg["data_loader"]:
        entry["args"]["data_dir"] = str(tmp_path)
    out = validate_config(cfg, size)
    assert [e["args"]["dataset_name"] for e in out["data_loader"]] == ["YTTemporal", "WebVid"]
    assert [e["args"]["mask_ratio"] for e in out["data_loader"]] == [ratio, ratio]
    assert [e["args"]["video_params"]["num_frames"] for e in out["data_loader"]] == [3, 12]
    assert all(e["args"]["batch_size"] == batch and e["args"]["masking"] == "tube" for e in out["data_loader"])
    t = out["trainer"]
    assert (t["epochs"], t["epoch_loader"], t["precision"]) == (10, 0, precision)
    assert (t["grad_scaler"], t["fp32_loss"]) == ((False, False) if size == "h14" else (True, True))
    assert out["lr_scheduler"]["milestones"] == [6, 8] and out["optimizer"]["args"]["eps"] == 1e-6
    assert out["tokenizer"]["type"] == "clip"
