"""CPD: the SlowOnly 3D ResNet against a restatement of the official network, the memory-bank NCE against hand
arithmetic, the bank update, the curriculum and its learning rates, and the data rules CPD adds."""
import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conftest import tiny_cpd
from data_loader.instagram import Instagram
from data_loader.sampling import clip_frame_indices
from data_loader.transforms import JitterCropTransform
from media import write_indexed_video, write_tokenizer
from model import load_checkpoint
from model.memory_bank import MemoryBankNCE, draw_slots, nce_terms
from model.resnet3d import SlowOnlyResNet
from trainer.optim import LRSchedule, build_optimizer

# ------------------------------------------------------------------------------------------------ the network
def reference_resnet(sd, x, bottleneck, detach_shortcut=True):
    """The official SlowOnly ResNet restated with functional ops on a state dict (eval-mode BN): x (B, 3, T, H, W)
    -> pooled (B, C). Stages 3 and 4 have a temporal kernel of 3 in their blocks' first conv; shortcut A."""
    def bn(y, name):
        return F.batch_norm(y, sd[name + ".running_mean"], sd[name + ".running_var"], sd[name + ".weight"],
                            sd[name + ".bias"], False, 0.0, 1e-5)

    def conv(y, name, stride=(1, 1, 1)):
        w = sd[name + ".weight"]
        return F.conv3d(y, w, stride=stride, padding=tuple(k // 2 for k in w.shape[2:]))

    y = F.max_pool3d(F.relu(bn(F.conv3d(x, sd["conv1.weight"], stride=(1, 2, 2), padding=(0, 3, 3)), "bn1")),
                     (1, 3, 3), (1, 2, 2), (0, 1, 1))
    for stage in range(1, 5):
        i = 0
        while f"layer{stage}.{i}.conv1.weight" in sd:
            p = f"layer{stage}.{i}"
            s = 2 if stage > 1 and i == 0 else 1
            if bottleneck:
                out = F.relu(bn(conv(y, p + ".conv1"), p + ".bn1"))
                out = F.relu(bn(conv(out, p + ".conv2", (1, s, s)), p + ".bn2"))
                out = bn(conv(out, p + ".conv3"), p + ".bn3")
            else:
                out = F.relu(bn(conv(y, p + ".conv1", (1, s, s)), p + ".bn1"))
                out = bn(conv(out, p + ".conv2"), p + ".bn2")
            short = y
            if out.shape != y.shape:  # shortcut A: average-pool of kernel 1 (a stride) and zero channels
                short = F.avg_pool3d(y, 1, (1, s, s))
                short = short.detach() if detach_shortcut else short
                short = torch.cat([short, short.new_zeros(short.shape[0], out.shape[1] - short.shape[1],
                                                           *short.shape[2:])], 1)
            y = F.relu(out + short)
            i += 1
    return F.avg_pool3d(y, y.shape[2:]).flatten(1)


def randomise_bn(net, seed=0):
    g = torch.Generator().manual_seed(seed)
    for m in net.modules():
        if isinstance(m, torch.nn.BatchNorm3d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g) * 0.1)
            m.running_var.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.weight.data.copy_(torch.rand(m.num_features, generator=g) + 0.5)
            m.bias.data.copy_(torch.randn(m.num_features, generator=g) * 0.1)


@pytest.mark.parametrize("depth, bottleneck", [(10, False), (50, True)])
def test_slowonly_resnet_matches_the_restated_official_network(depth, bottleneck):
    torch.manual_seed(0)
    net = SlowOnlyResNet(depth, width=4).eval()
    randomise_bn(net)
    video = torch.randn(2, 4, 3, 64, 64, requires_grad=True)
    ours = net(video)
    ref_video = video.detach().clone().requires_grad_(True)
    ref = reference_resnet({k: v.detach() for k, v in net.state_dict().items()}, ref_video.transpose(1, 2),
                           bottleneck)
    torch.testing.assert_close(ours, ref, rtol=1e-4, atol=1e-5)
    weights = torch.randn_like(ours)
    (ours * weights).sum().backward()
    (ref * weights).sum().backward()
    torch.testing.assert_close(video.grad, ref_video.grad, rtol=1e-4, atol=1e-6)


def test_shortcut_a_passes_no_gradient_unless_asked():
    """Official: the zero-padding shortcut detaches its input; `shortcut_grad` lets the gradient through."""
    for grad, expect_change in ((False, False), (True, True)):
        torch.manual_seed(0)
        net = SlowOnlyResNet(10, width=4, shortcut_grad=grad).eval()
        x = torch.randn(1, 2, 3, 32, 32, requires_grad=True)
        net(x).sum().backward()
        g_net = x.grad.clone()
        ref_x = x.detach().clone().requires_grad_(True)
        reference_resnet({k: v.detach() for k, v in net.state_dict().items()}, ref_x.transpose(1, 2), False,
                         detach_shortcut=True).sum().backward()
        assert torch.allclose(g_net, ref_x.grad, rtol=1e-4, atol=1e-7) != expect_change


def test_full_size_resnet50_counts_and_shapes_match_the_official_code():
    """Numbers of the official `resnet50(shortcut_type='A')` with `fc` replaced by Identity, as CPD builds it:
    28,857,920 parameters in 294 state-dict entries, 2048-d pooled features, the last map 8x7x7 at 8x224 and
    16x8x8 at 16x256."""
    net = SlowOnlyResNet(50)
    assert sum(p.numel() for p in net.parameters()) == 28_857_920
    assert net.feature_dim == 2048
    sd = net.state_dict()
    assert len(sd) == 294 and len([k for k in sd if k.endswith(".weight")]) == 98
    assert tuple(sd["layer3.0.conv1.weight"].shape) == (256, 512, 3, 1, 1)  # temporal first conv in res4
    assert tuple(sd["layer2.0.conv1.weight"].shape) == (128, 256, 1, 1, 1)
    assert tuple(sd["layer4.2.conv3.weight"].shape) == (2048, 512, 1, 1, 1)
    assert "layer1.0.downsample" not in str(list(sd))  # shortcut A has no parameters
    meta = SlowOnlyResNet(50).to("meta")
    for frames, size, fmap in ((8, 224, (8, 7, 7)), (16, 256, (16, 8, 8))):
        x = torch.empty(2, frames, 3, size, size, device="meta")
        assert tuple(meta.features(x).shape) == (2, 2048) + fmap
        assert tuple(meta(x).shape) == (2, 2048)


def test_cpd_network_embeddings_and_official_text_pooling():
    net = tiny_cpd().eval()
    ids = torch.tensor([[2, 5, 6, 3, 0, 0], [2, 7, 3, 0, 0, 0]])
    batch = {"text": {"input_ids": ids, "attention_mask": (ids != 0).long()}, "video": torch.randn(2, 4, 3, 32, 32)}
    text, video = net(batch)
    assert text.shape == video.shape == (2, 16)
    torch.testing.assert_close(text.norm(dim=1), torch.ones(2))
    torch.testing.assert_close(video.norm(dim=1), torch.ones(2))
    # official: ids only (padding attended), mean over the non-zero ids, [CLS] and [SEP] included
    hidden = net.textual_encoder(input_ids=ids).last_hidden_state
    keep = (ids != 0).float().unsqueeze(2)
    expected = F.normalize(net.text_emb((hidden * keep).sum(1) / keep.sum(1)), dim=1)
    torch.testing.assert_close(text, expected)
    masked = tiny_cpd(text_attention_mask=True).eval()
    masked.load_state_dict(net.state_dict())
    assert not torch.allclose(masked(batch)[0], text)  # with the fix the padding is not attended


def test_frozen_text_tower_gets_no_gradient_and_keeps_its_mode():
    net = tiny_cpd().train()
    ids = torch.randint(1, 100, (4, 6))
    batch = {"text": {"input_ids": ids, "attention_mask": torch.ones_like(ids)}, "video": torch.randn(4, 4, 3, 32, 32),
             "text_grad": False}
    text, video = net(batch)
    (text.sum() + video.sum()).backward()
    assert all(p.grad is None for p in net.textual_encoder.parameters())
    assert all(p.grad is not None for p in net.text_emb.parameters())
    assert net.textual_encoder.training  # official: dropout stays on while frozen
    seen = []
    eval_net = tiny_cpd(frozen_text="eval").train()
    eval_net.textual_encoder.register_forward_pre_hook(lambda m, _: seen.append(m.training))
    eval_net(batch)
    assert seen == [False] and eval_net.textual_encoder.training


def test_released_checkpoint_banks_are_left_out_on_loading(tmp_path):
    net = tiny_cpd()
    state = {f"module.{k}": v for k, v in net.state_dict().items()}
    state.update({"module.vis_memory": torch.rand(5, 16), "module.text_memory": torch.rand(5, 16),
                  "module.Z_v": torch.tensor([3.0]), "module.Z_t": torch.tensor([4.0])})
    path = tmp_path / "save_300.pth"
    torch.save({"epoch": 301, "arch": "resnet-50", "state_dict": state}, path)
    other = tiny_cpd(seed=1)
    report = load_checkpoint(other, str(path))
    assert report["loaded"] == len(net.state_dict())
    for k, v in net.state_dict().items():
        torch.testing.assert_close(other.state_dict()[k], v)


# ------------------------------------------------------------------------------------------------- the loss
def test_nce_terms_equal_the_closed_form_at_the_noise_level():
    """With every P = 1/N the NCE posterior is 1/(1+K): loss per sample -log(1/(1+K)) - K log(K/(1+K)) (N small
    beside K, so the 1e-7 guard is negligible)."""
    n, k, b = 10, 63, 5
    probs = torch.full((b, k + 1), 1.0 / n, dtype=torch.float64)
    pos, neg = nce_terms(probs, n)
    assert float(pos) == pytest.approx(-math.log(1 / (1 + k)), rel=1e-5)
    assert float(neg) == pytest.approx(-k * math.log(k / (1 + k)), rel=1e-5)


def test_memory_bank_loss_matches_hand_arithmetic():
    """Scores, the first-step normaliser, the four terms and the bank update, recomputed in float64 loops."""
    n, dim, k, tau, m = 7, 4, 3, 0.07, 0.5
    loss = MemoryBankNCE(num_negatives=k, temperature=tau, momentum=m)
    loss.reset(n, dim, torch.Generator().manual_seed(0))
    bound = 1 / math.sqrt(dim / 3)
    assert loss.vis_memory.abs().max() <= bound and loss.Z_v.item() == -1
    g = torch.Generator().manual_seed(1)
    video = F.normalize(torch.randn(2, dim, generator=g), dim=1)
    text = F.normalize(torch.randn(2, dim, generator=g), dim=1)
    index = torch.tensor([2, 5])
    slots = draw_slots(index, k, n, torch.Generator().manual_seed(2))
    assert slots.shape == (2, k + 1) and slots[:, 0].tolist() == [2, 5]
    mv, mt = loss.vis_memory.double().clone(), loss.text_memory.double().clone()
    probs_v, probs_t = loss.probabilities(video, text, slots)
    out = loss(probs_v, probs_t)

    def direction(query, bank):
        s = np.array([[math.exp(float(query[i].double() @ bank[j]) / tau) for j in slots[i].tolist()]
                      for i in range(2)])
        z = n * s.mean()
        p = s / z
        noise = k / n
        pos = -sum(math.log(p[i, 0] / (p[i, 0] + noise + 1e-7)) for i in range(2)) / 2
        neg = -sum(math.log(noise / (p[i, j] + noise + 1e-7)) for i in range(2) for j in range(1, k + 1)) / 2
        return z, pos, neg

    zv, vp, vn = direction(video, mt)
    zt, tp, tn = direction(text, mv)
    assert loss.Z_v.item() == pytest.approx(zv, rel=1e-5) and loss.Z_t.item() == pytest.approx(zt, rel=1e-5)
    for key, value in (("video_pos", vp), ("video_neg", vn), ("text_pos", tp), ("text_neg", tn)):
        assert float(out[key]) == pytest.approx(value, rel=1e-4), key
    assert float(out["total"]) == pytest.approx(vp + vn + tp + tn, rel=1e-4)

    z_before = loss.Z_v.clone()
    loss.probabilities(video, text, slots)  # the normaliser is frozen after the first step
    assert torch.equal(loss.Z_v, z_before)

    loss.update(video, text, index)
    for bank, before, feats in ((loss.vis_memory, mv, video), (loss.text_memory, mt, text)):
        for row, i in enumerate(index.tolist()):
            expected = m * before[i] + (1 - m) * feats[row].double()
            torch.testing.assert_close(bank[i].double(), expected / expected.norm(), rtol=1e-5, atol=1e-6)
        untouched = [i for i in range(n) if i not in index.tolist()]
        torch.testing.assert_close(bank[untouched].double(), before[untouched])


def test_negative_draws_cover_all_slots_or_exclude_the_positive():
    index = torch.arange(10)
    slots = draw_slots(index, 2000, 10, torch.Generator().manual_seed(0))
    assert set(slots[:, 1:].unique().tolist()) == set(range(10))
    assert (slots[:, 1:] == index[:, None]).any()  # official: the own slot can be a negative
    excluded = draw_slots(index, 2000, 10, torch.Generator().manual_seed(0), exclude_positive=True)
    assert not (excluded[:, 1:] == index[:, None]).any()
    assert set(excluded[:, 1:].unique().tolist()) == set(range(10))


# ------------------------------------------------------------------------------------- optimiser and schedule
def test_official_learning_rates_per_epoch():
    """The official recipe: SGD lr 0.1 x0.1 after epochs 100, 201 and 250; the text tower 0 until epoch 150, then
    3e-5 (the flag's 3e-4 x 0.1) and the later decays."""
    net = tiny_cpd()
    cfg = json.load(open("configs/cpd-ins300k.json"))
    opt = cfg["optimizer"]
    optimizer = build_optimizer(net, opt["type"], opt["args"], opt["param_groups"])
    assert isinstance(optimizer, torch.optim.SGD)
    schedule = LRSchedule(0.1, 3, 300, **cfg["lr_scheduler"])
    expected = {1: (0, 0.1), 100: (0, 0.1), 101: (0, 0.01), 149: (0, 0.01), 150: (3e-5, 0.01), 201: (3e-5, 0.01),
                202: (3e-6, 1e-3), 250: (3e-6, 1e-3), 251: (3e-7, 1e-4), 300: (3e-7, 1e-4)}
    for epoch, (text_lr, video_lr) in expected.items():
        for step in ((epoch - 1) * 3, epoch * 3 - 1):
            schedule.apply(optimizer, step)
            text, rest = optimizer.param_groups
            assert text["lr"] == pytest.approx(text_lr, abs=1e-15), epoch
            assert rest["lr"] == pytest.approx(video_lr, rel=1e-9), epoch
    assert all(n.startswith("textual_encoder.") for n, p in net.named_parameters()
               if any(p is q for q in optimizer.param_groups[0]["params"]))


# ------------------------------------------------------------------------------------------------------ data
def test_clip_frames_follow_the_official_decoder_rule():
    """pySlowFast: a clip of stride * frames at 30 fps; frames floor(linspace(0, clip - 1, n)) after the first
    frame at or after a uniform start; clamped to the last frame."""
    rng = np.random.default_rng(0)
    got = clip_frame_indices(300, 30.0, 8, 4, rng)
    start = np.random.default_rng(0).uniform(0, 300 - 32)
    assert got.tolist() == [math.ceil(start) + o for o in (0, 4, 8, 13, 17, 22, 26, 31)]
    # at 15 fps the same second of video holds 16 source frames
    centre = clip_frame_indices(100, 15.0, 8, 4, None, mode="center")
    assert centre.tolist() == [42 + o for o in (0, 2, 4, 6, 8, 10, 12, 15)]
    assert clip_frame_indices(5, 30.0, 8, 4, rng).tolist() == [0, 4, 4, 4, 4, 4, 4, 4]  # short video


def test_jitter_crop_draws_a_scale_crops_flips_and_normalises():
    frames = np.zeros((3, 60, 80, 3), np.uint8)
    frames[..., 0] = 255  # red everywhere: channel values after normalisation are known
    frames[:, :, :40, 1] = 255  # the left half also green, so a flip shows
    out = JitterCropTransform(32, train=True, scale_range=(36, 48))(frames, np.random.default_rng(0))
    assert out.shape == (3, 3, 32, 32) and out.dtype == torch.float32
    torch.testing.assert_close(out[:, 0], torch.full((3, 32, 32), (1 - 0.45) / 0.225))
    assert torch.equal(out[:, 2], torch.full((3, 32, 32), -0.45 / 0.225))
    flips = set()
    for seed in range(20):
        x = JitterCropTransform(32, train=True, scale_range=(36, 48))(frames, np.random.default_rng(seed))
        flips.add(bool(x[0, 1, 0, 0] < x[0, 1, 0, -1]))  # green on the right: flipped
    assert flips == {True, False}
    val = JitterCropTransform(32, train=False, scale_range=(36, 48))(frames, None)
    # short side 60 -> 36, long side floor(80 / 60 * 36) = 48, centre crop 32: columns 8..39 of 48
    assert float(val[0, 1, 0, 8]) > 0 > float(val[0, 1, 0, 20])  # green ends at column 24 - 8 = 16
    with pytest.raises(ValueError, match="scale_range"):
        JitterCropTransform(224, train=True, scale_range=(128, 170))


def test_cpd_tokenizer_slices_and_pads_to_the_fixed_length(tmp_path):
    from data_loader.tokenizers import build_tokenizer
    tok = build_tokenizer("huggingface", write_tokenizer(str(tmp_path / "tok"), ["a1", "b2"]), max_length=6,
                          padding="max_length", truncation="slice")
    out = tok(["a1", "a1 b2 a1 b2 a1 b2"])
    cls, sep = tok.tokenizer.cls_token_id, tok.tokenizer.sep_token_id
    ids = out["input_ids"].tolist()
    assert ids[0][:3] == [cls, tok.tokenizer.convert_tokens_to_ids("a1"), sep] and ids[0][3:] == [0, 0, 0]
    assert len(ids[1]) == 6 and sep not in ids[1]  # official: slicing drops the [SEP] of a long caption
    assert out["attention_mask"].tolist()[0] == [1, 1, 1, 0, 0, 0]
    default = build_tokenizer("huggingface", str(tmp_path / "tok"), max_length=6)(["a1", "a1 b2 a1 b2 a1 b2"])
    assert default["input_ids"].tolist()[1][-1] == sep  # the TVTS rule keeps [SEP]
    with pytest.raises(ValueError, match="not of 'clip'"):
        build_tokenizer("clip", "", padding="max_length")


def test_instagram_dataset_reads_the_official_list_layout(tmp_path):
    listing = {"a": {"subset": "training", "caption": "a dog runs"},
               "b": {"subset": "validation", "caption": "a cat"},
               "c": {"subset": "training", "caption": "rain"}}
    (tmp_path / "list.json").write_text(json.dumps(listing))
    for vid in ("a", "b"):
        write_indexed_video(tmp_path / f"trimmed_resize_{vid}.mp4", n=40, fps=30)
    train = Instagram(str(tmp_path), str(tmp_path / "list.json"), input_res=32, jitter_range=(36, 40))
    assert train._names == ["a", "c"] and len(Instagram(str(tmp_path), str(tmp_path / "list.json"), "val",
                                                       input_res=32, jitter_range=(36, 40))) == 1
    sample = train[0]
    assert sample["text"] == ["a dog runs"] and sample["video"].shape == (8, 3, 32, 32) and sample["index"] == 0
    replaced = train[1]  # c's video is missing: replaced by another instance, whose index the sample carries
    assert replaced["skipped"][0]["reason"] == "unreadable_video" and replaced["index"] == 0
    (tmp_path / "bad.json").write_text(json.dumps({"x": {"caption": "no subset"}}))
    with pytest.raises(ValueError, match="bad.json.*'x'"):
        Instagram(str(tmp_path), str(tmp_path / "bad.json"))
