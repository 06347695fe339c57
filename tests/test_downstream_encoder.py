"""The downstream classifier and loading the video encoder out of pretraining checkpoints."""
import json

import pytest
import torch

from conftest import ROOT, tiny_model
from downstream.encoder import VideoClassifier, encoder_args, load_pretrained_encoder
from model.checkpoint import CheckpointError

TINY = dict(img_size=32, patch_size=8, embed_dim=64, depth=2, num_heads=4, num_frames=16)


def classifier(num_classes=5, seed=1, **kw):
    torch.manual_seed(seed)
    return VideoClassifier(num_classes, **{**TINY, **kw})


def save_pretraining(path, model, prefix="module."):
    """A checkpoint in the layout of the official pretraining trainer (and ours)."""
    torch.save({"arch": "TVTS", "epoch": 3, "state_dict": {prefix + k: v for k, v in model.state_dict().items()}},
               path)
    return path


def test_features_are_the_unmasked_final_norm_cls_of_the_pretraining_encoder():
    pre = tiny_model()
    clf = classifier()
    clf.load_state_dict({**pre.video_model.state_dict(), **{k: v for k, v in clf.state_dict().items()
                                                            if k.startswith("head.")}})
    video = torch.randn(2, 16, 3, 32, 32)  # pretraining layout (B, T, C, H, W)
    with torch.no_grad():
        expected = pre.video_model(video)[:, 0]
        feats = clf.forward_features(video.transpose(1, 2))
        logits = clf(video.transpose(1, 2))
    torch.testing.assert_close(feats, expected)
    torch.testing.assert_close(logits, feats @ clf.head.weight.T + clf.head.bias)
    assert logits.shape == (2, 5)


def test_head_init_and_init_scale():
    torch.manual_seed(0)
    big = VideoClassifier(400, **{**TINY, "embed_dim": 256})
    w = big.head.weight.detach()
    # trunc_normal_(std=0.02) truncates at +-2 absolute (as timm's did), i.e. effectively N(0, 0.02)
    assert abs(float(w.std()) - 0.02) < 0.0005 and abs(float(w.mean())) < 0.0005
    assert torch.count_nonzero(big.head.bias) == 0
    torch.manual_seed(0)
    scaled = VideoClassifier(400, init_scale=0.001, **{**TINY, "embed_dim": 256})
    torch.testing.assert_close(scaled.head.weight, w * 0.001)


def test_no_head_for_feature_extraction():
    clf = classifier(num_classes=0)
    assert not any(k.startswith("head.") for k in clf.state_dict())
    assert clf(torch.randn(1, 3, 16, 32, 32)).shape == (1, 64)


def test_wrong_input_layout_is_a_clear_error():
    with pytest.raises(ValueError, match="frames must be 32x32"):
        classifier().forward_features(torch.randn(1, 3, 16, 24, 24))
    with pytest.raises(ValueError, match=r"\(B, C, T, H, W\)"):
        classifier().forward_features(torch.randn(3, 16, 32, 32))


@pytest.mark.parametrize("prefix", ["module.", ""])
def test_loads_every_encoder_tensor_and_reports_the_rest(tmp_path, prefix):
    pre = tiny_model(seed=3)
    path = save_pretraining(tmp_path / "pt.pth", pre, prefix)
    clf = classifier()
    head_before = clf.head.weight.clone()
    report = load_pretrained_encoder(clf, path)
    for k, v in pre.video_model.state_dict().items():
        torch.testing.assert_close(clf.state_dict()[k], v, rtol=0, atol=0)
    torch.testing.assert_close(clf.head.weight, head_before)
    assert report["loaded"] == len(pre.video_model.state_dict())
    assert report["new"] == ["head.bias", "head.weight"]
    assert set(report["dropped"]) == {"text_model", "txt_proj", "vid_proj", "pred_model"}


def test_missing_encoder_tensor_is_refused(tmp_path):
    pre = tiny_model()
    state = {"module." + k: v for k, v in pre.state_dict().items() if k != "video_model.temporal_embed"}
    torch.save({"state_dict": state}, tmp_path / "pt.pth")
    with pytest.raises(CheckpointError, match="missing: temporal_embed"):
        load_pretrained_encoder(classifier(), tmp_path / "pt.pth")


def test_checkpoint_without_video_encoder_is_refused(tmp_path):
    pre = tiny_model()
    torch.save({"state_dict": {"module.text_model." + k: v for k, v in pre.text_model.state_dict().items()}},
               tmp_path / "text_only.pth")
    with pytest.raises(CheckpointError, match="holds no video encoder"):
        load_pretrained_encoder(classifier(), tmp_path / "text_only.pth")
    torch.save({"model": {}}, tmp_path / "other.pth")
    with pytest.raises(CheckpointError, match="no 'state_dict'"):
        load_pretrained_encoder(classifier(), tmp_path / "other.pth")


def test_architecture_mismatch_names_the_shapes(tmp_path):
    path = save_pretraining(tmp_path / "pt.pth", tiny_model())
    with pytest.raises(CheckpointError, match="wrong shape"):
        load_pretrained_encoder(classifier(num_frames=8), path)  # temporal_embed (1, 4, D) vs (1, 8, D)


def test_encoder_args_from_a_preset_and_from_a_pretraining_config(tmp_path):
    base = encoder_args("vit_base_patch16_224")
    assert (base["embed_dim"], base["depth"], base["num_heads"], base["patch_size"]) == (768, 12, 12, 16)
    demo = encoder_args(f"{ROOT}/configs/demo-cpu.json", input_size=32)
    with open(f"{ROOT}/configs/demo-cpu.json") as f:
        vp = json.load(f)["arch"]["args"]["video_params"]
    assert (demo["embed_dim"], demo["depth"], demo["num_heads"], demo["patch_size"], demo["img_size"]) == \
        (vp["embed_dim"], vp["depth"], vp["num_heads"], vp["patch_size"], 32)
    with pytest.raises(ValueError, match="unknown --model"):
        encoder_args("vit_huge")
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(ValueError, match="not a pretraining config"):
        encoder_args(str(tmp_path / "bad.json"))


def test_drop_path_is_random_in_training_only():
    clf = classifier(drop_path_rate=0.5)
    video = torch.randn(4, 3, 16, 32, 32)
    clf.train()
    torch.manual_seed(0)
    a = clf(video)
    torch.manual_seed(1)
    b = clf(video)
    assert not torch.allclose(a, b)
    clf.eval()
    torch.testing.assert_close(clf(video), clf(video))
    plain = classifier(drop_path_rate=0.0).train()
    torch.testing.assert_close(plain(video), plain.eval()(video))


def test_full_size_parameter_counts_and_linear_probe_freeze():
    from downstream.finetune import freeze_all_but_head
    model = VideoClassifier(174, **encoder_args("vit_base_patch16_224"))
    total = sum(p.numel() for p in model.parameters())
    head = sum(p.numel() for n, p in model.named_parameters() if n.startswith("head."))
    assert (total, head) == (86_528_430, 133_806)  # the spec's counts from the official shapes
    assert freeze_all_but_head(model) == 133_806
    assert [n for n, p in model.named_parameters() if p.requires_grad] == ["head.weight", "head.bias"]
