"""Official-format checkpoints (DDP `module.` keys and a pickled ConfigParser) and strict loading."""
import argparse
import collections
import os
import pathlib
import sys
import types

import pytest
import torch

from conftest import make_batch, tiny_args, tiny_model
from model import TVTS, CheckpointError, load_checkpoint, read_checkpoint


def _official_config_object():
    """A stand-in for `parse_config_dist_multi.ConfigParser` holding what the official one holds."""
    module = types.ModuleType("parse_config_dist_multi")

    class ConfigParser:
        pass

    ConfigParser.__module__ = "parse_config_dist_multi"
    ConfigParser.__qualname__ = "ConfigParser"
    module.ConfigParser = ConfigParser
    cp = ConfigParser()
    cp.args = argparse.Namespace(config="configs/dist-yt-pt.json", resume=None, local_rank=0, schedule=[12, 16])
    cp.cfg_fname = pathlib.Path("configs/dist-yt-pt.json")
    cp.resume = None
    cp._config = collections.OrderedDict(name="yttemporal", arch={"type": "TVTS"})
    cp._save_dir = pathlib.Path("results/TVTS/models/yttemporal/0101_000000")
    cp._log_dir = pathlib.Path("results/TVTS/log/yttemporal/0101_000000")
    cp.log_levels = {0: 30, 1: 20, 2: 10}
    return module, cp


def write_official_checkpoint(model, path):
    """Save as the official trainer does: DDP-prefixed state_dict, HF-AdamW-shaped optimizer state, config object."""
    module, cp = _official_config_object()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, eps=1e-6, weight_decay=0)
    sys.modules["parse_config_dist_multi"] = module
    try:
        torch.save({"arch": "DistributedDataParallel", "epoch": 20,
                    "state_dict": collections.OrderedDict(("module." + k, v) for k, v in model.state_dict().items()),
                    "optimizer": opt.state_dict(), "monitor_best": 0.25, "config": cp}, path)
    finally:
        del sys.modules["parse_config_dist_multi"]


def test_official_checkpoint_loads_strictly_without_the_official_code(tmp_path, caplog):
    source = tiny_model(seed=1).eval()
    path = tmp_path / "TVTS_yt_pt.pth"
    write_official_checkpoint(source, path)
    assert "parse_config_dist_multi" not in sys.modules
    with caplog.at_level("INFO"):
        target = TVTS(**tiny_args(load_checkpoint=str(path))).eval()
    assert "parse_config_dist_multi.ConfigParser" in caplog.text and "never executed" in caplog.text
    assert "config, epoch, monitor_best, optimizer" in caplog.text
    for (name, a), b in zip(source.state_dict().items(), target.state_dict().values()):
        assert torch.equal(a, b), name
    batch = make_batch()
    with torch.no_grad():
        for a, b in zip(source(batch), target(batch)):
            assert torch.equal(a, b)


def test_the_config_object_is_kept_as_inert_data(tmp_path):
    path = tmp_path / "ckpt.pth"
    write_official_checkpoint(tiny_model(), path)
    ckpt = read_checkpoint(path)
    cfg = ckpt["config"]
    assert cfg.pickled_name == "parse_config_dist_multi.ConfigParser"
    assert cfg.state["_config"]["name"] == "yttemporal"
    assert cfg.state["args"].state["schedule"] == [12, 16]


class _Exploit:
    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_arbitrary_pickled_code_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "pwned"
    exploit = _Exploit()
    exploit.marker = marker
    path = tmp_path / "evil.pth"
    torch.save({"state_dict": {}, "config": exploit}, path)
    with pytest.raises(CheckpointError, match="evil.pth"):
        read_checkpoint(path)
    assert not marker.exists()


def test_missing_unexpected_and_misshapen_keys_are_named(tmp_path):
    model = tiny_model()
    state = model.state_dict()
    state.pop("pred_model.head.bias")
    state["module.video_model.extra"] = torch.zeros(1)
    state["txt_proj.1.weight"] = torch.zeros(3, 3)
    path = tmp_path / "bad.pth"
    torch.save({"state_dict": state}, path)
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(model, path)
    message = str(err.value)
    assert "bad.pth" in message and "pred_model.head.bias" in message and "video_model.extra" in message
    assert "txt_proj.1.weight: expected (32, 64), file has (3, 3)" in message


def test_files_without_state_dict_or_missing_are_clear_errors(tmp_path):
    path = tmp_path / "weights_only.pth"
    torch.save({"model": {}}, path)
    with pytest.raises(CheckpointError, match="no 'state_dict'.*model"):
        load_checkpoint(tiny_model(), path)
    with pytest.raises(CheckpointError, match="not found.*nowhere.pth"):
        read_checkpoint(tmp_path / "nowhere.pth")
    (tmp_path / "truncated.pth").write_bytes(path.read_bytes()[:50])
    with pytest.raises(CheckpointError, match="truncated.pth"):
        read_checkpoint(tmp_path / "truncated.pth")


def test_test_py_says_in_one_line_that_a_file_is_not_a_checkpoint(tmp_path):
    import test as evaluate_script
    from conftest import ROOT
    config = tmp_path / "notes.pth"
    config.write_text('{"arch": {}}')
    with pytest.raises(SystemExit, match=r"^error: .*notes.pth is not a PyTorch checkpoint: it looks like a JSON"):
        evaluate_script.main(["-r", str(config), "-c", os.path.join(ROOT, "configs", "tvtsv2-demo-cpu.json"),
                              f"data_loader.0.args.data_dir={tmp_path}", f"data_loader.0.args.meta_dir={tmp_path}"])
