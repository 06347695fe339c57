"""ImageMAE initialisation: 2-D to 3-D inflation and the strict key check."""
import pytest
import torch

from conftest import tiny_args
from model import TVTS, CheckpointError, VideoTransformer, load_mae_weights


def write_mae_file(path, vit, extra=None, drop=None, seed=0):
    """An encoder-only MAE file (`{'model': ...}`) shaped for `vit`, with random values."""
    g = torch.Generator().manual_seed(seed)
    state = {k: torch.randn(v.shape, generator=g) for k, v in vit.state_dict().items() if k != "temporal_embed"}
    state["patch_embed.proj.weight"] = state["patch_embed.proj.weight"][:, :, 0]
    state.update(extra or {})
    for k in drop or ():
        state.pop(k)
    torch.save({"model": state}, path)
    return state


def tiny_vit():
    return VideoTransformer(img_size=32, patch_size=8, embed_dim=64, depth=2, num_heads=4)


def test_every_encoder_tensor_loads_and_the_kernel_is_repeated_without_division(tmp_path):
    vit = tiny_vit()
    mae = write_mae_file(tmp_path / "mae.pth", vit)
    load_mae_weights(vit, tmp_path / "mae.pth")
    for k, v in vit.state_dict().items():
        if k == "patch_embed.proj.weight":
            assert torch.equal(v[:, :, 0], mae[k]) and torch.equal(v[:, :, 1], mae[k])
        elif k == "temporal_embed":
            assert torch.count_nonzero(v) == 0
        else:
            assert torch.equal(v, mae[k]), k


def test_mean_inflation_divides_by_the_tubelet_size(tmp_path):
    vit = tiny_vit()
    mae = write_mae_file(tmp_path / "mae.pth", vit)
    load_mae_weights(vit, tmp_path / "mae.pth", inflation="mean")
    torch.testing.assert_close(vit.patch_embed.proj.weight[:, :, 1], mae["patch_embed.proj.weight"] / 2)


def test_tvts_reads_the_mae_path_from_its_config(tmp_path):
    mae = write_mae_file(tmp_path / "mae.pth", tiny_vit())
    args = tiny_args()
    args["video_params"]["mae_checkpoint"] = str(tmp_path / "mae.pth")
    model = TVTS(**args)
    assert torch.equal(model.video_model.pos_embed, mae["pos_embed"])
    args["load_checkpoint"] = str(tmp_path / "missing_full.pth")  # a full checkpoint replaces MAE init
    with pytest.raises(CheckpointError, match="missing_full.pth"):
        TVTS(**args)


@pytest.mark.parametrize("kwargs, message", [
    ({"drop": ["blocks.1.mlp.fc2.bias"]}, "1 missing: blocks.1.mlp.fc2.bias"),
    ({"extra": {"decoder_embed.weight": torch.zeros(2, 2), "mask_token": torch.zeros(1)}}, "decoder"),
    ({"extra": {"pos_embed": torch.zeros(1, 197, 64)}}, r"pos_embed: expected \(1, 17, 64\), file has \(1, 197, 64\)"),
    ({"extra": {"patch_embed.proj.weight": torch.zeros(64, 3, 2, 8, 8)}}, "2-D kernel"),
])
def test_bad_mae_files_are_named(tmp_path, kwargs, message):
    write_mae_file(tmp_path / "mae.pth", tiny_vit(), **kwargs)
    with pytest.raises(CheckpointError, match=message):
        load_mae_weights(tiny_vit(), tmp_path / "mae.pth")


def test_mae_file_without_model_entry_or_missing(tmp_path):
    torch.save({"state_dict": {}}, tmp_path / "wrong.pth")
    with pytest.raises(CheckpointError, match="no 'model' entry"):
        load_mae_weights(tiny_vit(), tmp_path / "wrong.pth")
    with pytest.raises(CheckpointError, match="not found"):
        load_mae_weights(tiny_vit(), tmp_path / "absent.pth")
