"""The paper's ablations (Tables 1-3) as configs: each sort modelling's loss and each video-segment head restated by
hand on a small batch, the stop-gradient and the zero weights routing gradients to exactly the modules they should,
and every row of configs/ablations/ resolving onto its recipe and onto the demo config."""
import glob
import itertools
import json
import math
import os

import pytest
import torch

from conftest import ROOT, make_batch, make_v2_batch, tiny_args, tiny_v2_args
from model import TVTSLoss, build_model
from model.loss import (factorial_positions, factorial_sort_loss, order_class_loss, order_class_positions,
                        pairwise_positions, pairwise_sort_loss, sort_loss)
from model.segment_sort import ClipOrderHead, SegmentSortHead
from utils.config import load_config

ABLATIONS = os.path.join(ROOT, "configs", "ablations")


def softplus(x):
    return math.log1p(math.exp(x))


def test_kway_loss_by_hand():
    logits = torch.tensor([[[2.0, 0.0], [0.0, 1.0]]])
    expected = (softplus(-2.0) + softplus(-1.0)) / 2  # -log softmax of the true position, per transcript
    assert sort_loss(logits).item() == pytest.approx(expected)


def test_pairwise_loss_by_hand():
    a, b = 1.5, -0.5  # z[0, 1]: "0 before 1" (true); z[1, 0]: "1 before 0" (false)
    pair = torch.tensor([[[9.0, a], [b, 9.0]]])  # the diagonal is never read
    assert pairwise_sort_loss(pair).item() == pytest.approx((softplus(-a) + softplus(b)) / 2)
    swapped = torch.tensor([[1, 0]])  # transcript 0 is second: the targets flip
    assert pairwise_sort_loss(pair, swapped).item() == pytest.approx((softplus(a) + softplus(-b)) / 2)
    assert pairwise_positions(pair).tolist() == [[0, 1]]


def test_factorial_loss_by_hand_and_by_enumeration():
    s = torch.tensor([[[0.3, -1.0], [0.5, 2.0]]])  # s[i, p]: transcript i at position p
    right, wrong = 0.3 + 2.0, -1.0 + 0.5
    assert factorial_sort_loss(s).item() == pytest.approx(-right + math.log(math.exp(right) + math.exp(wrong)))
    g = torch.Generator().manual_seed(0)
    s = torch.randn(3, 3, 3, generator=g)
    labels = torch.tensor([[0, 1, 2], [2, 0, 1], [1, 2, 0]])
    expected = []
    for b in range(3):  # one softmax over the 6 orders, an order scored by the sum of its slot scores
        scores = {order: sum(s[b, i, order[i]].item() for i in range(3)) for order in itertools.permutations(range(3))}
        log_z = math.log(sum(math.exp(v) for v in scores.values()))
        expected.append(log_z - scores[tuple(labels[b].tolist())])
    assert factorial_sort_loss(s, labels).item() == pytest.approx(sum(expected) / 3, rel=1e-5)
    best = [max(itertools.permutations(range(3)), key=lambda o: sum(s[b, i, o[i]].item() for i in range(3)))
            for b in range(3)]
    assert factorial_positions(s).tolist() == [list(o) for o in best]


def test_zero_weights_leave_their_term_out():
    v, t = torch.randn(4, 8), torch.randn(4, 8)
    logits = torch.randn(4, 4, 4)
    sort_only = TVTSLoss(nce_weight=0.0)(v, t, logits)
    assert sort_only["total"].item() == pytest.approx(2 * sort_only["sort"].item()) and sort_only["nce"].item() > 0
    base = TVTSLoss(sort_weight=0.0)(v, t, logits)
    assert base["total"].item() == pytest.approx(base["nce"].item())
    with pytest.raises(ValueError, match="sort_modelling must be one of"):
        TVTSLoss(sort_modelling="listwise")


ARCHS = {"TVTS": (tiny_args, make_batch), "TVTSv2": (tiny_v2_args, make_v2_batch)}


def grads_after(arch, stop_gradient, nce_weight=1.0, sort_weight=2.0, term="total", head="sort_transformer",
                modelling="kway"):
    args_fn, batch_fn = ARCHS[arch]
    args = args_fn()
    args["sort_params"] = {**args.get("sort_params", {}), "stop_gradient": stop_gradient, "head": head}
    torch.manual_seed(0)
    net = build_model({"type": arch, "args": args})
    text, video, logits = net(batch_fn())
    losses = TVTSLoss(nce_weight=nce_weight, sort_weight=sort_weight, sort_modelling=modelling)(video, text, logits)
    losses[term].backward()
    return {name: p.grad for name, p in net.named_parameters() if p.requires_grad}


def reached(grads, prefix):
    """Whether any parameter under `prefix` got a non-zero gradient."""
    return any(g is not None and g.abs().sum() > 0 for n, g in grads.items() if n.startswith(prefix))


TEXT = {"TVTS": "text_model.", "TVTSv2": "text_"}


@pytest.mark.parametrize("arch", sorted(ARCHS))
def test_the_stop_gradient_keeps_the_sort_loss_out_of_the_transcript_encoder(arch):
    on, off = grads_after(arch, True, term="sort"), grads_after(arch, False, term="sort")
    assert not reached(on, TEXT[arch]) and reached(off, TEXT[arch])
    for grads in (on, off):  # the sort loss trains the video tower and the head either way
        assert reached(grads, "video_model.") and reached(grads, "pred_model.")


@pytest.mark.parametrize("arch", sorted(ARCHS))
def test_sort_only_trains_no_projection_and_base_only_no_sort_head(arch):
    sort_only = grads_after(arch, True, nce_weight=0.0)
    # TVTSv2's sort head reads the projected video tokens, so its video projection trains from the sort loss too
    projections = ("txt_proj", "vid_proj") if arch == "TVTS" else ("text_projection",)
    assert not any(reached(sort_only, p) for p in projections) and not reached(sort_only, TEXT[arch])
    assert reached(sort_only, "video_model.") and reached(sort_only, "pred_model.")
    base = grads_after(arch, True, sort_weight=0.0)
    assert not reached(base, "pred_model.") and reached(base, TEXT[arch]) and reached(base, "video_model.")


@pytest.mark.parametrize("modelling,head", [("pairwise", "pairwise_sort"), ("factorial", "sort_transformer")])
def test_every_sort_modelling_trains_through_its_head(modelling, head):
    grads = grads_after("TVTS", True, term="sort", head=head, modelling=modelling)
    assert reached(grads, "pred_model.head") and reached(grads, "video_model.") and not reached(grads, "text_model.")


def test_every_ablation_row_is_a_small_difference_from_its_recipe():
    tables = json.load(open(os.path.join(ABLATIONS, "tables.json")))
    listed = {row["config"] for table in tables.values() for row in table["rows"]}
    files = {os.path.basename(p) for p in glob.glob(os.path.join(ABLATIONS, "table[0-9]_*.json"))}
    assert listed == files
    recipe = load_config(os.path.join(ROOT, "configs", "dist-yt-pt.json"))
    demo = load_config(os.path.join(ROOT, "configs", "demo-cpu.json"))
    for name in sorted(files):
        row = load_config(os.path.join(ABLATIONS, name))
        on_demo = load_config(os.path.join(ABLATIONS, name), base=os.path.join(ROOT, "configs", "demo-cpu.json"))
        assert row["data_loader"] == recipe["data_loader"] and on_demo["data_loader"] == demo["data_loader"]
        assert row["name"] == on_demo["name"] == "ablation-" + name[:-5].replace("_", "-")
    sg_off = load_config(os.path.join(ABLATIONS, "table2_ours_nosg.json"))
    assert sg_off["arch"]["args"]["sort_params"] == {**recipe["arch"]["args"]["sort_params"], "stop_gradient": False}
    assert load_config(os.path.join(ABLATIONS, "table2_base.json"))["loss"]["args"]["sort_weight"] == 0


def test_a_sort_modelling_without_its_head_is_a_config_error(tmp_path):
    from trainer.config import validate_config
    from utils.config import ConfigError
    cfg = load_config(os.path.join(ABLATIONS, "table3_pairwise.json"),
                      base=os.path.join(ROOT, "configs", "demo-cpu.json"))
    del cfg["arch"]["args"]["sort_params"]["head"]
    with pytest.raises(ConfigError, match="sort_modelling 'pairwise' needs arch.args.sort_params.head 'pairwise_sort'"):
        validate_config(cfg, "row")


# Table 1: what is sorted (video segments instead of transcripts)

def test_vcop_loss_by_hand():
    z = torch.tensor([[0.5, -1.0]])  # K = 2: class 0 is the order (0, 1), class 1 is (1, 0)
    assert order_class_loss(z).item() == pytest.approx(softplus(-1.5))  # -log softmax of class 0
    assert order_class_loss(z, torch.tensor([[1, 0]])).item() == pytest.approx(softplus(1.5))
    assert order_class_positions(z).tolist() == [[0, 1]]


def test_clip_order_head_is_vcop_written_out():
    torch.manual_seed(0)
    head = ClipOrderHead(embed_dim=3, num_classes=3, hidden=4, dropout=0.0).eval()
    segments = torch.randn(2, 3, 3)
    perm = torch.tensor([[2, 0, 1], [0, 1, 2]])  # shuffled slot s holds segment perm[s]
    out = head(None, segments, perm)
    orders = list(itertools.permutations(range(3)))
    w1, b1, w2, b2 = head.pair.weight, head.pair.bias, head.head.weight, head.head.bias
    for b in range(2):
        shuffled = [segments[b, perm[b, s]] for s in range(3)]
        pairs = [torch.relu(w1 @ torch.cat([shuffled[i], shuffled[j]]) + b1) for i in range(3) for j in range(i + 1, 3)]
        raw = w2 @ torch.cat(pairs) + b2  # class r: the shuffled slots came from positions orders[r]
        for c, order in enumerate(orders):  # order[i]: the position of segment i; slot s then came from order[perm[s]]
            came_from = tuple(order[perm[b, s]] for s in range(3))
            assert out[b, c].item() == pytest.approx(raw[orders.index(came_from)].item(), abs=1e-6)
        # the true class is the identity: the loss is VCOP's cross-entropy of the shuffle actually drawn
        true = orders.index(tuple(perm[b].tolist()))
        assert order_class_loss(out[b:b + 1]).item() == pytest.approx(
            (torch.logsumexp(raw, 0) - raw[true]).item(), abs=1e-5)


def test_clip_order_shuffles_reproducibly_in_evaluation_and_freshly_in_training():
    torch.manual_seed(0)
    head = ClipOrderHead(embed_dim=8, num_classes=4, hidden=16, dropout=0.0)
    segments = torch.randn(16, 4, 8)
    head.eval()
    torch.testing.assert_close(head(None, segments), head(None, segments))
    head.train()
    assert not torch.allclose(head(None, segments), head(None, segments))
    perms = head.draw_permutations(1000, 4, "cpu")
    assert (perms.sort(1).values == torch.arange(4)).all() and len({tuple(p) for p in perms.tolist()}) == 24


def test_segments_are_encoded_alone_and_carry_no_position():
    torch.manual_seed(0)
    net = build_model({"type": "TVTS", "args": tiny_args()}).eval()
    batch = make_batch()
    video, keep = batch["video"], batch["keep_ind"]  # 16 frames, 8 tubelet slots: 4 frames / 2 slots a segment
    with torch.no_grad():
        feats = net.segment_features(video, keep, 4)
        for c in range(4):
            alone = net.video_model(video[:, 4 * c:4 * c + 4], keep[:, 2 * c:2 * c + 2])[:, 0]
            torch.testing.assert_close(feats[:, c], alone)
        order = [2, 0, 3, 1]  # the segments reordered: their features reorder, unchanged
        moved = net.segment_features(torch.cat([video[:, 4 * c:4 * c + 4] for c in order], 1),
                                     torch.cat([keep[:, 2 * c:2 * c + 2] for c in order], 1), 4)
        torch.testing.assert_close(moved, feats[:, order])
    with pytest.raises(ValueError, match="do not split into 4 segments"):
        net.segment_features(video[:, :12], keep, 4)


def test_the_merlot_like_head_reads_the_transcript_order_not_the_segment_order():
    torch.manual_seed(0)
    head = SegmentSortHead(embed_dim=16, depth=1, num_heads=2, num_classes=4).eval()
    text, segments = torch.randn(2, 4, 16), torch.randn(2, 4, 16)
    order = [3, 1, 0, 2]
    with torch.no_grad():
        out = head(text, segments)
        torch.testing.assert_close(head(text, segments[:, order]), out[:, order])  # no segment position
        assert not torch.allclose(head(text[:, order], segments), out, atol=1e-4)  # transcripts carry their order


@pytest.mark.parametrize("head,modelling", [("clip_order", "vcop"), ("segment_sort", "kway")])
def test_video_segment_sorts_train_the_video_tower_and_reach_text_only_through_it_without_sg(head, modelling):
    on = grads_after("TVTS", True, term="sort", head=head, modelling=modelling)
    off = grads_after("TVTS", False, term="sort", head=head, modelling=modelling)
    for grads in (on, off):
        assert reached(grads, "video_model.") and reached(grads, "pred_model.")
        assert not reached(grads, "txt_proj") and not reached(grads, "vid_proj")
    assert not reached(on, "text_model.")
    assert reached(off, "text_model.") == (head == "segment_sort")  # VCOP never reads the transcripts


def test_sort_heads_take_only_their_arguments():
    args = tiny_args()
    args["sort_params"] = {**args.get("sort_params", {}), "head": "clip_order", "hidden": 8, "depth": 1}
    net = build_model({"type": "TVTS", "args": args})  # depth is a transformer's: not read by VCOP's head
    assert net.pred_model.pair.out_features == 8
    args["sort_params"] = {"head": "sort_transformer", "hidden": 8}
    with pytest.raises(ValueError, match=r"\['hidden'\] are not arguments of the 'sort_transformer' head"):
        build_model({"type": "TVTS", "args": args})
    v2 = tiny_v2_args()
    v2["sort_params"] = {**v2["sort_params"], "head": "segment_sort"}
    with pytest.raises(ValueError, match="sorts video segments, which this architecture does not encode"):
        build_model({"type": "TVTSv2", "args": v2})
