"""SimVTP pretraining: the network against a restatement of the official forward (four passes, four losses), its
masks, pixel targets, word masking and VTM negatives, the VideoMAE key layout, full-size sizes and names counted
from the official modules, the data rules (clip, crop), the schedule, the task, and training on a written corpus."""
import copy
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conftest import TINY_SIMVTP_ARGS, make_simvtp_batch, tiny_simvtp
from data_loader.masking import build_masker
from data_loader.sampling import stride_frame_indices
from data_loader.transforms import MultiScaleCropTransform
from media import write_tokenizer, write_yt_corpus
from model import build_model
from model.checkpoint import CheckpointError
from model.simvtp import SimVTPLoss, load_videomae_weights, mask_words, pixel_targets, videomae_state_dict
from trainer.optim import LRSchedule

MEAN, STD = torch.tensor([0.485, 0.456, 0.406]), torch.tensor([0.229, 0.224, 0.225])


# ----------------------------------------------------------------------------- the official forward, restated
def numpy_positions(n, d):
    table = np.array([[p / np.power(10000, 2 * (j // 2) / d) for j in range(d)] for p in range(n)])
    table[:, 0::2], table[:, 1::2] = np.sin(table[:, 0::2]), np.cos(table[:, 1::2])
    return torch.FloatTensor(table)[None]


def official_block(blk, x, mask):
    a = blk.attn
    b, n, c = x.shape
    h = blk.norm1(x)
    qkv = F.linear(h, a.qkv.weight, torch.cat((a.q_bias, torch.zeros_like(a.v_bias), a.v_bias)))
    q, k, v = qkv.reshape(b, n, 3, a.num_heads, -1).permute(2, 0, 3, 1, 4)
    attn = ((q * (c // a.num_heads) ** -0.5) @ k.transpose(-2, -1) + mask).softmax(dim=-1)
    x = x + a.proj((attn @ v).transpose(1, 2).reshape(b, n, -1))
    return x + blk.mlp.fc2(blk.mlp.act(blk.mlp.fc1(blk.norm2(x))))


def official_encoder(enc, x, mask):
    for blk in enc.blocks:
        x = official_block(blk, x, mask)
    return enc.norm(x)


def official_losses(model, batch, negatives):
    """The official PretrainVisionTransformer.forward and train_one_epoch arithmetic on `batch` (eval mode: the
    text embedding dropout off), with boolean tube masks, (B, C, T, H, W) videos and explicit softmax attention."""
    enc = model.encoder
    videos = batch["video"].transpose(1, 2)  # B, C, T, H, W
    b, _, t, hgt, _ = videos.shape
    p, tub = enc.patch_size, enc.tubelet_size
    per_frame = (hgt // p) ** 2
    frame_mask = torch.ones(b, per_frame, dtype=torch.bool)
    for i in range(b):
        frame_mask[i, batch["keep_ind"][i]] = False
    mask = frame_mask.repeat(1, t // tub)  # True = masked, the same positions in every slot
    ids, att = batch["text"]["input_ids"], batch["text"]["attention_mask"]
    text_mask = (1 - att) * -10000

    def video_tokens(v, m):
        x = enc.patch_embed.proj(v).flatten(2).transpose(1, 2) + numpy_positions(enc.num_patches, enc.embed_dim)
        return x[~m].reshape(v.shape[0], -1, x.shape[-1])

    x_vis = video_tokens(videos, mask)
    emb = model.text_embeddings(input_ids=ids)
    nt, nv = emb.shape[1], x_vis.shape[1]
    joint = official_encoder(enc, torch.cat([x_vis, emb], 1), torch.cat([torch.zeros(b, nv), text_mask], 1)[:, None,
                                                                                                             None, :])
    mlm_logits = model.text_cls(joint[:, -nt:])
    dec_pos = numpy_positions(enc.num_patches, model.mask_token.shape[-1]).expand(b, -1, -1)
    cd = dec_pos.shape[-1]
    x = torch.cat([model.encoder_to_decoder(joint[:, :nv]) + dec_pos[~mask].reshape(b, -1, cd),
                   model.mask_token + dec_pos[mask].reshape(b, -1, cd)], dim=1)
    for blk in model.decoder.blocks:
        x = official_block(blk, x, torch.zeros(b, 1, 1, x.shape[1]))
    pred = model.decoder.head(model.decoder.norm(x[:, -int(mask[0].sum()):]))
    unnorm = videos * STD[None, :, None, None, None] + MEAN[None, :, None, None, None]
    sq = unnorm.reshape(b, 3, t // tub, tub, hgt // p, p, hgt // p, p).permute(0, 2, 4, 6, 3, 5, 7, 1)
    sq = sq.reshape(b, -1, tub * p * p, 3)
    target = ((sq - sq.mean(dim=-2, keepdim=True)) / (sq.var(dim=-2, unbiased=True, keepdim=True).sqrt() + 1e-6))
    target = target.reshape(b, sq.shape[1], -1)[mask].reshape(b, -1, tub * p * p * 3)
    video_single = official_encoder(enc, x_vis, torch.zeros(b, 1, 1, nv)).mean(1)
    text_single = official_encoder(enc, emb, text_mask[:, None, None, :]).mean(1)
    tn = text_single / text_single.norm(dim=1, keepdim=True).clamp_min(1e-8)
    vn = video_single / video_single.norm(dim=1, keepdim=True).clamp_min(1e-8)
    sim = tn @ vn.t()
    vtc = -torch.diag(F.log_softmax(sim / 0.05, dim=1)).mean() - torch.diag(F.log_softmax(sim.t() / 0.05, dim=1)).mean()
    neg = list(negatives)
    v_all, m_all = torch.cat([videos, videos[neg]]), torch.cat([mask, mask[neg]])
    ids_all, att_all = torch.cat([ids, ids]), torch.cat([att, att])
    xv = video_tokens(v_all, m_all)
    vtm_in = torch.cat([xv, model.text_embeddings(input_ids=ids_all)], 1)
    vtm_mask = torch.cat([torch.zeros(2 * b, nv), (1 - att_all) * -10000], 1)[:, None, None, :]
    vtm_logits = model.vtm_head(official_encoder(enc, vtm_in, vtm_mask).mean(1))
    return {"mvm": F.mse_loss(pred, target),
            "mlm": F.cross_entropy(mlm_logits.reshape(-1, mlm_logits.shape[-1]), batch["mlm_labels"].reshape(-1)),
            "vtc": vtc, "vtm": F.cross_entropy(vtm_logits, torch.cat([torch.ones(b), torch.zeros(b)]).long())}


def test_the_four_losses_are_the_official_arithmetic():
    model = tiny_simvtp().eval()
    batch = make_simvtp_batch(b=4)
    with torch.no_grad():
        ours = SimVTPLoss()(model(batch))
        negatives = model.vtm_negatives(batch["vtm_draws"], batch["options"], None)
        official = official_losses(model, batch, negatives.tolist())
    for term in ("mvm", "mlm", "vtc", "vtm"):
        torch.testing.assert_close(ours[term], official[term], atol=2e-5, rtol=1e-5, msg=term)
    torch.testing.assert_close(ours["total"], sum(official.values()), atol=1e-4, rtol=1e-5)


def test_reusing_the_joint_pass_for_vtm_positives_changes_only_the_redundant_pass():
    model = tiny_simvtp().eval()
    batch = make_simvtp_batch(b=4)
    reuse = make_simvtp_batch(b=4, vtm_reuse_joint_pass=True)
    with torch.no_grad():
        a, b = model(batch), model(reuse)
    torch.testing.assert_close(a["vtm"], b["vtm"], atol=1e-5, rtol=1e-5)  # equal without dropout


def test_zero_weight_terms_are_left_out_and_their_passes_skipped():
    model = tiny_simvtp()
    out = model(make_simvtp_batch(mvm_weight=0.0, vtm_weight=0.0))
    assert "mvm" not in out and "vtm" not in out and {"mlm", "text_feature"} <= set(out)
    losses = SimVTPLoss(mvm_weight=0.0, vtm_weight=0.0)(out)
    torch.testing.assert_close(losses["total"], losses["mlm"] + losses["vtc"])
    losses["total"].backward()
    assert model.decoder.head.weight.grad is None and model.vtm_head.weight.grad is None
    assert model.text_cls.weight.grad is not None


def test_a_word_mask_that_chooses_nothing_gives_a_finite_loss():
    model = tiny_simvtp()
    batch = make_simvtp_batch()
    batch["mlm_labels"] = torch.full_like(batch["mlm_labels"], -100)  # the official: NaN and exit
    losses = SimVTPLoss()(model(batch))
    assert losses["mlm"].item() == 0.0 and torch.isfinite(losses["total"])
    losses["total"].backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_mean_pooling_counts_padding_as_official_and_masked_mean_does_not():
    ids = torch.tensor([[2, 10, 11, 12, 3]])
    padded = torch.cat([ids, torch.zeros(1, 3, dtype=torch.long)], 1)
    att, att_padded = torch.ones_like(ids), torch.cat([torch.ones_like(ids), torch.zeros(1, 3, dtype=torch.long)], 1)
    for pool, same in (("mean", False), ("masked_mean", True)):
        model = tiny_simvtp(pool=pool).eval()
        with torch.no_grad():
            short, long = model.encode_text(ids, att), model.encode_text(padded, att_padded)
        assert torch.allclose(short, long, atol=1e-5) == same, pool


def test_clean_contrast_text_reads_the_caption_before_word_masking():
    model = tiny_simvtp().eval()
    batch = make_simvtp_batch(contrast_text="clean")
    clean = torch.where(batch["mlm_labels"] != -100, batch["mlm_labels"], batch["text"]["input_ids"])
    with torch.no_grad():
        masked_out = model(batch)
        clean_out = model({**batch, "contrast_ids": clean})
        expected = model.encode_text(clean, batch["text"]["attention_mask"])
    torch.testing.assert_close(clean_out["text_feature"], expected)
    assert not torch.allclose(masked_out["text_feature"], expected)


def test_activation_checkpointing_changes_nothing():
    grads, outs = [], []
    for ckpt in (False, True):
        args = copy.deepcopy(TINY_SIMVTP_ARGS)
        args["video_params"]["grad_checkpointing"] = ckpt
        args["decoder_params"]["grad_checkpointing"] = ckpt
        torch.manual_seed(0)
        model = build_model({"type": "SimVTP", "args": args}).eval()
        out = SimVTPLoss()(model(make_simvtp_batch()))
        out["total"].backward()
        outs.append(out["total"])
        grads.append({n: p.grad for n, p in model.named_parameters() if p.grad is not None})
    torch.testing.assert_close(outs[0], outs[1])
    for name in grads[0]:
        torch.testing.assert_close(grads[0][name], grads[1][name], msg=name)


# ----------------------------------------------------------------------------- masks, targets, negatives
def test_tube_masks_have_the_official_counts_at_full_size():
    masker = build_masker("videomae_tube", 0.9, input_res=224, patch_size=16, tubelet_size=2)
    keep = masker(16, np.random.default_rng(0))
    assert keep.shape == (20,) and len(set(keep.tolist())) == 20 and list(keep) == sorted(keep)  # 176 of 196 masked
    tube = build_masker("tube", 0.9, input_res=224, patch_size=16)(16, np.random.default_rng(0))
    assert tube.shape == (19,)  # TVTSv2's rule keeps int(196 * 0.1): the two differ by one patch


def test_visible_and_masked_tokens_repeat_the_kept_positions_in_every_slot():
    model = tiny_simvtp()
    keep = torch.tensor([[5, 1, 9, 14], [0, 2, 3, 15]])
    visible, masked = model.visible_and_masked(keep)
    slots, per_frame = 2, 16
    for i in range(2):
        expected = sorted(s * per_frame + int(k) for s in range(slots) for k in keep[i])
        assert visible[i].tolist() == expected
        assert masked[i].tolist() == sorted(set(range(slots * per_frame)) - set(expected))
    with pytest.raises(ValueError, match="videomae_tube"):
        model.visible_and_masked(None)


def test_pixel_targets_normalise_each_tube_and_channel_by_hand():
    g = torch.Generator().manual_seed(0)
    video = torch.randn(2, 4, 3, 16, 16, generator=g)
    target = pixel_targets(video, tubelet=2, patch=8)
    assert target.shape == (2, 2 * 2 * 2, 2 * 8 * 8 * 3)
    b, slot, row, col = 1, 1, 0, 1
    token = slot * 4 + row * 2 + col
    pixels = video[b, 2 * slot:2 * slot + 2, :, 8 * row:8 * row + 8, 8 * col:8 * col + 8]  # (2, 3, 8, 8)
    pixels = pixels * STD.view(1, 3, 1, 1) + MEAN.view(1, 3, 1, 1)
    values = pixels.permute(0, 2, 3, 1).reshape(-1, 3).double().numpy()  # (t, y, x) positions x channel
    expected = (values - values.mean(0)) / (values.std(0, ddof=1) + 1e-6)
    np.testing.assert_allclose(target[b, token].reshape(-1, 3).numpy(), expected, atol=1e-5)
    per_channel = target.reshape(2, 8, -1, 3)
    torch.testing.assert_close(per_channel.mean(2), torch.zeros(2, 8, 3), atol=1e-5, rtol=0)
    torch.testing.assert_close(per_channel.std(2), torch.ones(2, 8, 3), atol=1e-4, rtol=0)


def test_word_masking_never_chooses_special_tokens_and_replaces_every_choice(tmp_path):
    from data_loader.tokenizers import build_tokenizer
    tok = build_tokenizer("huggingface", write_tokenizer(str(tmp_path / "tok"), ["red", "ball", "zzz"]))
    hf = tok.tokenizer
    batch = tok(["red ball red ball red ball red", "ball", "qqq red"] * 200)  # "qqq" is [UNK]: special too
    ids = batch["input_ids"]
    masked, labels = mask_words(ids, hf.all_special_ids, hf.mask_token_id, 0.75, torch.Generator().manual_seed(0))
    chosen = labels != -100
    special = torch.isin(ids, torch.tensor(hf.all_special_ids))
    assert not (chosen & special).any() and (masked[chosen] == hf.mask_token_id).all()
    assert torch.equal(masked[~chosen], ids[~chosen]) and torch.equal(labels[chosen], ids[chosen])
    assert abs(chosen.sum().item() / (~special).sum().item() - 0.75) < 0.02
    assert hf.unk_token_id in ids.tolist()[2]


def test_vtm_negatives_are_another_clip_uniformly_or_by_similarity():
    model = tiny_simvtp()
    b, n = 4, 4000
    options = make_simvtp_batch()["options"]
    draws = torch.rand(n, b, generator=torch.Generator().manual_seed(0))
    picks = torch.stack([model.vtm_negatives(d, options, None) for d in draws])
    assert not (picks == torch.arange(b)).any()
    counts = torch.stack([(picks == j).sum(0) for j in range(b)]).float() / n  # (clip, caption)
    expected = (1 - torch.eye(b)) / (b - 1)
    torch.testing.assert_close(counts, expected, atol=0.03, rtol=0)
    features = {"text_feature": torch.eye(b), "video_feature": torch.eye(b)}
    features["video_feature"][1] = torch.tensor([1.0, 0.05, 0, 0])  # clip 1 looks like caption 0
    hard = torch.stack([model.vtm_negatives(d, {**options, "vtm_negatives": "hard"}, features) for d in draws])
    assert not (hard == torch.arange(b)).any() and (hard[:, 0] == 1).float().mean() > 0.99
    extreme = {**options, "vtm_negatives": "hard", "temperature": 1e-3}  # off-diagonal weights underflow in fp32
    for draw in (torch.zeros(b), torch.full((b,), 1 - 2 ** -24)):  # the smallest and largest uniform draws
        for temp in (options, extreme):
            picks = model.vtm_negatives(draw, {**temp, "vtm_negatives": "hard"}, features)
            assert not (picks == torch.arange(b)).any() and ((0 <= picks) & (picks < b)).all()
    with pytest.raises(ValueError, match="two clips"):
        model.vtm_negatives(torch.rand(1), options, None)


# ----------------------------------------------------------------------------- weights, sizes, names
def test_a_videomae_checkpoint_loads_strictly_and_round_trips(tmp_path):
    source, target = tiny_simvtp(seed=1), tiny_simvtp(seed=2)
    path = tmp_path / "videomae.pth"
    torch.save({"model": videomae_state_dict(source)}, path)
    report = load_videomae_weights(target, path)
    assert report["kept"] == ["text_cls", "text_embeddings", "vtm_head"]
    for k, v in videomae_state_dict(source).items():
        assert torch.equal(target.state_dict()[k], v), k
    assert not torch.equal(target.text_cls.weight, source.text_cls.weight)
    finetuned = {**videomae_state_dict(source), "fc_norm.weight": torch.ones(32)}
    torch.save({"model": finetuned}, path)
    with pytest.raises(CheckpointError, match="unexpected: fc_norm.weight"):
        load_videomae_weights(target, path)
    short = {k: v for k, v in videomae_state_dict(source).items() if not k.startswith("decoder.blocks.0.")}
    torch.save({"module": short}, path)
    with pytest.raises(CheckpointError, match="missing: decoder.blocks.0"):
        load_videomae_weights(target, path)


@pytest.fixture(scope="module")
def full_size():
    from utils.config import load_config
    import os
    from conftest import ROOT
    args = load_config(os.path.join(ROOT, "configs", "simvtp-webvid.json"))["arch"]["args"]
    args = {**args, "load_videomae": "", "text_params": {**args["text_params"], "pretrained": False}}
    torch.manual_seed(0)
    return build_model({"type": "SimVTP", "args": args})


def official_block_count(d, mlp):
    # norm1, qkv (no bias), q_bias, v_bias, proj, norm2, fc1, fc2
    return 2 * d + 3 * d * d + 2 * d + d * d + d + 2 * d + d * mlp + mlp + mlp * d + d


def test_full_size_parameter_count_is_the_official_one(full_size):
    d, v = 768, 30522
    encoder = 3 * 2 * 16 * 16 * d + d + 12 * official_block_count(d, 4 * d) + 2 * d
    decoder = 4 * official_block_count(384, 4 * 384) + 2 * 384 + 384 * 1536 + 1536
    text = v * d + 512 * d + 2 * d + 2 * d
    heads = d * v + v + d * 2 + 2
    official = encoder + decoder + d * 384 + 384 + text + heads
    assert sum(p.numel() for p in full_size.parameters()) == official
    assert sum(p.numel() for n, p in full_size.named_parameters() if n.startswith("encoder.")) == encoder


def test_full_size_keys_are_the_official_names(full_size):
    state = full_size.state_dict()
    shapes = {"encoder.patch_embed.proj.weight": (768, 3, 2, 16, 16), "encoder.blocks.11.attn.q_bias": (768,),
              "encoder.blocks.11.attn.v_bias": (768,), "encoder.blocks.0.attn.qkv.weight": (2304, 768),
              "encoder.norm.weight": (768,), "decoder.blocks.3.mlp.fc2.weight": (384, 1536),
              "decoder.head.weight": (1536, 384), "encoder_to_decoder.weight": (384, 768), "mask_token": (1, 1, 384),
              "text_embeddings.word_embeddings.weight": (30522, 768),
              "text_embeddings.position_embeddings.weight": (512, 768), "text_embeddings.LayerNorm.weight": (768,),
              "text_cls.weight": (30522, 768), "vtm_head.weight": (2, 768)}
    assert {k: tuple(state[k].shape) for k in shapes} == shapes
    assert "encoder.blocks.0.attn.qkv.bias" not in state and "encoder.pos_embed" not in state
    assert {k.split(".")[0] for k in state} == {"encoder", "decoder", "encoder_to_decoder", "mask_token",
                                                "text_embeddings", "text_cls", "vtm_head"}
    assert not any(k.startswith("decoder.blocks.4") for k in state) and "encoder.blocks.11.mlp.fc1.weight" in state


def test_the_weight_decay_rule_is_the_officials(full_size):
    """Official: no decay on 1-D tensors, names ending in .bias, and `mask_token`; the config's regex says so."""
    import json
    import os
    import re
    from conftest import ROOT
    with open(os.path.join(ROOT, "configs", "simvtp-webvid.json")) as f:
        rule = re.compile(json.load(f)["optimizer"]["no_weight_decay"])
    for name, p in full_size.named_parameters():
        official = p.ndim == 1 or name.endswith(".bias") or name in ("pos_embed", "cls_token", "mask_token")
        assert bool(rule.search(name)) == official, name


# ----------------------------------------------------------------------------- data rules and the schedule
def official_clip(n, r, length=16, step=4):
    """VideoMAE's `_sample_train_indices` + `_video_TSN_decord_batch_loader`, one segment, no jitter; `r` is the
    offset the official draws with randint(n - length * step + 1)."""
    offset = (r if n - length * step + 1 > 0 else 0) + 1
    frames = []
    for _ in range(length):
        frames.append(offset - 1)
        if offset + step < n:
            offset += step
    return frames


@pytest.mark.parametrize("n", [1, 10, 30, 63, 64, 65, 100, 301])
def test_the_clip_is_the_officials(n):
    for seed in range(5):
        ours = stride_frame_indices(n, 16, 4, np.random.default_rng(seed))
        r = int(np.random.default_rng(seed).integers(n - 64 + 1)) if n >= 64 else 0
        assert ours.tolist() == official_clip(n, r), (n, seed)


def test_multiscale_crops_are_the_official_choices():
    h, w, size = 240, 320, 224
    base = min(h, w)
    sides = [size if abs(int(base * s) - size) < 3 else int(base * s) for s in (1, .875, .75, .66)]
    official = set()
    for i, ch in enumerate(sides):
        for j, cw in enumerate(sides):
            if abs(i - j) <= 1:
                ws, hs = (w - cw) // 4, (h - ch) // 4
                for ox, oy in ((0, 0), (4, 0), (0, 4), (4, 4), (2, 2), (0, 2), (4, 2), (2, 4), (2, 0), (1, 1), (3, 1),
                               (1, 3), (3, 3)):
                    official.add((oy * hs, ox * ws, ch, cw))
    transform = MultiScaleCropTransform(size, train=True)
    drawn = {transform.crop_box(h, w, np.random.default_rng(s)) for s in range(4000)}
    assert drawn == official
    frames = np.random.default_rng(0).integers(0, 255, (2, h, w, 3), dtype=np.uint8)
    assert transform(frames, np.random.default_rng(0)).shape == (2, 3, size, size)
    assert MultiScaleCropTransform(size, train=False).crop_box(h, w, None) == (0, 40, 240, 240)


def test_warmup_cosine_is_the_official_schedule_and_scales_with_the_batch():
    base, final, epochs, per_epoch, warm = 6e-4, 4e-5, 5, 4, 2
    warmup = np.linspace(0, base, warm * per_epoch)
    rest = epochs * per_epoch - warm * per_epoch
    official = list(warmup) + [final + 0.5 * (base - final) * (1 + math.cos(math.pi * i / rest)) for i in range(rest)]
    schedule = LRSchedule(base, per_epoch, epochs, decay="warmup_cosine", warmup_epochs=warm, min_lr=final)
    np.testing.assert_allclose([schedule.lr(s) for s in range(epochs * per_epoch)], official, rtol=1e-12)
    from trainer.config import DEFAULTS
    from trainer.trainer import batch_scaled_rates
    cfg = copy.deepcopy(DEFAULTS)
    cfg["optimizer"]["args"] = {"lr": 1.5e-4}
    cfg["lr_scheduler"].update(min_lr=1e-5, batch_reference=256)
    cfg["data_loader"] = [{"args": {"batch_size": 16}}]
    opt, sched = batch_scaled_rates(cfg, world_size=64)  # the official 64 x 16 clips
    assert opt["args"]["lr"] == pytest.approx(6e-4) and sched["min_lr"] == pytest.approx(4e-5)
    assert "batch_reference" not in sched and cfg["optimizer"]["args"]["lr"] == 1.5e-4


# ----------------------------------------------------------------------------- the task and training
@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("simvtp_corpus")
    data_dir, meta_dir = write_yt_corpus(str(root), {f"subset_0/data/v{i}.mp4": 12 + i for i in range(4)}, fps=4)
    tok = write_tokenizer(str(root / "tok"), [f"s{i}" for i in range(40)])
    return {"data_dir": data_dir, "meta_dir": meta_dir, "tokenizer": tok}


def task_config(corpus, **loss):
    from trainer.config import validate_config
    args = copy.deepcopy(TINY_SIMVTP_ARGS)
    cfg = {"arch": {"type": "SimVTP", "args": args}, "seed": 3,
           "tokenizer": {"name": corpus["tokenizer"], "max_length": 16},
           "loss": {"type": "SimVTPLoss", "args": loss},
           "data_loader": [{"type": "MultiDistTextVideoDataLoader", "args": {
               "dataset_name": "YTTemporal", "data_dir": corpus["data_dir"], "meta_dir": corpus["meta_dir"],
               "reader": "pyav", "num_workers": 0, "batch_size": 4, "split": "train", "masking": "videomae_tube",
               "mask_ratio": 0.75, "patch_size": 8,
               "video_params": {"input_res": 32, "num_frames": 4, "n_trans": 1, "frame_sampling": "stride",
                                "clip_stride": 2, "augment": "multiscale_crop"}}}],
           "trainer": {"device": "cpu", "monitor": "max t2v_R1", "tensorboard": False}}
    return validate_config(cfg, "test")


def loader_and_tokenizer(cfg, model):
    from data_loader.loader import build_dataloader
    from trainer.trainer import make_tokenizer
    tokenizer = make_tokenizer(cfg, model)
    return build_dataloader(cfg["data_loader"][0]["args"], tokenizer), tokenizer


def test_the_task_masks_words_reproducibly_and_keeps_its_step_count(corpus):
    from trainer.task import build_task
    cfg = task_config(corpus)
    model = tiny_simvtp()
    loader, tokenizer = loader_and_tokenizer(cfg, model)
    batch = next(iter(loader))
    assert batch["keep_ind"].shape == (4, 4)  # 16 patches, 12 masked
    runs = []
    for _ in range(2):
        task = build_task(cfg, "cpu")
        task.attach(model, [loader.dataset], tokenizer)
        torch.manual_seed(0)
        runs.append(task.training_losses(model.eval(), batch))
    assert all(torch.equal(runs[0][k], runs[1][k]) for k in runs[0])
    assert set(runs[0]) >= {"total", "mvm", "mlm", "vtc", "vtm"} and task.state_dict() == {"steps": 1}
    assert not torch.equal(runs[0]["total"], task.training_losses(model, batch)["total"])  # step 2: new draws
    task.load_state_dict({"steps": 0})  # a resume at step 0 draws what the first run drew
    torch.testing.assert_close(task.training_losses(model, batch)["total"], runs[0]["total"])
    out = task.validation_outputs(model, batch)
    assert out["text"].shape == out["video"].shape == (4, 32)
    with pytest.raises(ValueError, match="one caption"):
        task.attach(model, [type("D", (), {"texts_per_sample": 4})()], tokenizer)


def test_every_loss_decreases_in_training_on_a_written_corpus(corpus):
    from trainer.task import build_task
    cfg = task_config(corpus)
    model = tiny_simvtp()
    loader, tokenizer = loader_and_tokenizer(cfg, model)
    task = build_task(cfg, "cpu")
    task.attach(model, [loader.dataset], tokenizer)
    batches = [b for b in loader]  # one epoch: the same four videos every step
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3)
    history = []
    for step in range(60):
        losses = task.training_losses(model.train(), batches[step % len(batches)])
        optimizer.zero_grad()
        losses["total"].backward()
        optimizer.step()
        history.append({k: losses[k].item() for k in ("mvm", "mlm", "vtc", "vtm")})
    for term in ("mvm", "mlm", "vtc", "vtm"):
        first = np.mean([h[term] for h in history[:10]])
        last = np.mean([h[term] for h in history[-10:]])
        assert last < first, (term, first, last)
