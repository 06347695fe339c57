"""CPD's official UCF-101 / HMDB-51 transfer recipe (`--recipe cpd`): its clip views, crops, datasets, defaults,
and end-to-end fine-tuning and linear probing of a tiny CPD 3D ResNet (one and two processes, the script)."""
import json
import math
import os
import socket
import subprocess
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conftest import ROOT, tiny_cpd, tiny_cpd_args
from data_loader.sampling import clip_frame_indices
from data_loader.transforms import JitterCropTransform
from downstream.args import get_args
from downstream.datasets import build_dataset, cpd_clip_transform
from downstream.finetune import main as finetune_main
from media import frame_index, write_indexed_video, write_noise_video

CLASSES = 3
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


# ---- clip views and crops, against the official arithmetic restated ----

def official_clip(num_frames_video, fps, num_frames, stride, start, ticks=None, first_pts=0):
    """pySlowFast: a clip of stride * num_frames frames at 30 fps is stride * num_frames * fps / 30 source frames;
    decoding keeps the frames whose pts reaches int(start * ticks per frame) (frame k has pts first_pts + k *
    ticks; without a header timeline, the first frame at or after `start`), then floor(linspace(0, clip - 1,
    num_frames)) of the decoded frames, clamped to the last."""
    clip = stride * num_frames * fps / 30
    if ticks is None:
        first = math.ceil(start)
    else:
        first = next(k for k in range(num_frames_video + 1) if first_pts + k * ticks >= int(start * ticks))
    picks = [int(math.floor(x)) for x in np.linspace(0, clip - 1, num_frames)]
    return [min(first + p, num_frames_video - 1) for p in picks]


@pytest.mark.parametrize("n, fps", [(100, 25.0), (300, 30.0), (40, 25.0), (163, 29.97)])
@pytest.mark.parametrize("timeline", [None, (0, 1.0), (0, 512.0), (1024, 512.0)])  # none, AVI, MP4, MP4 delayed
def test_test_clips_start_at_i_over_n_of_the_range(n, fps, timeline):
    clip = 4 * 16 * fps / 30
    first_pts, ticks = timeline if timeline else (0, None)
    for i in range(10):
        start = max(n - clip, 0) * i / 10  # the official: the 10th clip starts at 9/10, not at the end
        got = clip_frame_indices(n, fps, 16, 4, None, mode="uniform", view=(i, 10), pts_timeline=timeline)
        assert got.tolist() == official_clip(n, fps, 16, 4, start, ticks, first_pts), i
    with pytest.raises(ValueError, match="out of range"):
        clip_frame_indices(n, fps, 16, 4, None, mode="uniform", view=(10, 10))


def test_avi_test_views_decode_the_official_frames(tmp_path):
    """On an MPEG-4 AVI (one pts tick a frame, as UCF-101 and HMDB-51 ship) a view starts at floor(start): read
    back from the frames themselves, whose grey levels tell their index."""
    write_indexed_video(tmp_path / "a.avi", n=80, fps=25, codec="mpeg4", container="avi")
    (tmp_path / "test.csv").write_text("a.avi 0\n")
    data = build_dataset("UCF101", "test", data_path=str(tmp_path), num_frames=4, sampling_rate=4, input_size=48,
                         short_side_size=48, test_num_segment=2, test_num_crop=1, nb_classes=1, recipe="cpd")
    mean, std = torch.tensor(IMAGENET_MEAN).view(3, 1, 1, 1), torch.tensor(IMAGENET_STD).view(3, 1, 1, 1)
    for chunk in range(2):
        clip = (data[chunk]["video"] * std + mean) * 255  # the centre 48 columns: both halves of the frame
        frames = clip.permute(1, 2, 3, 0).round().clamp(0, 255).byte().numpy()
        start = (80 - 4 * 4 * 25 / 30) * chunk / 2  # 0 and 33.3: the official starts at frame 33, not 34
        assert [frame_index(f) for f in frames] == official_clip(80, 25.0, 4, 4, start, ticks=1.0)


def test_a_video_without_a_frame_rate_is_a_counted_failure():
    from data_loader.base import failure_reason
    from data_loader.sampling import FrameRateError
    with pytest.raises(FrameRateError) as error:
        clip_frame_indices(100, 0.0, 16, 4, np.random.default_rng(0))
    assert failure_reason(error.value) == "no_frame_rate"


def position_frames(t, h, w):
    """uint8 frames whose red channel is the column, green the row, blue the frame index."""
    frames = np.zeros((t, h, w, 3), np.uint8)
    frames[..., 0] = np.arange(w)[None, None, :]
    frames[..., 1] = np.arange(h)[None, :, None]
    frames[..., 2] = np.arange(t)[:, None, None]
    return frames


@pytest.mark.parametrize("h, w", [(40, 56), (56, 40), (40, 40)])
def test_uniform_crops_are_start_centre_end_of_the_long_side(h, w):
    frames = position_frames(2, h, w)
    t = JitterCropTransform(40, train=False, scale_range=(40, 40), mean=(0, 0, 0), std=(1 / 255,) * 3)
    excess = max(h, w) - 40
    for index, offset in enumerate([0, math.ceil(excess / 2), excess]):  # pySlowFast's uniform_crop
        out = t(frames, None, view=(index, 3))
        top, left = (offset, 0) if h > w else (0, offset)
        assert out.shape == (2, 3, 40, 40)
        assert out[0, 0, 0, 0].round().item() == left and out[0, 1, 0, 0].round().item() == top
    with pytest.raises(ValueError, match="training mode"):
        JitterCropTransform(40, train=True, scale_range=(40, 40))(frames, np.random.default_rng(0), view=(0, 3))


# ---- the datasets in the CPD recipe ----

@pytest.fixture(scope="module")
def ucf_folder(tmp_path_factory):
    """A UCF-101-layout folder: 9 train and 6 test noise clips of 3 classes at 8 fps, lists `<path> <label>`
    (validation = the test list, as the official), a tiny CPD checkpoint and its config."""
    root = tmp_path_factory.mktemp("ucf")
    (root / "videos").mkdir()
    train, test = [], []
    for i in range(15):
        write_noise_video(root / "videos" / f"{i}.mp4", n=40 + 2 * i, size=(48, 40), seed=i)
        (train if i < 9 else test).append(f"{i}.mp4 {i % CLASSES}")
    (root / "train.csv").write_text("\n".join(train) + "\n")
    (root / "val.csv").write_text("\n".join(test) + "\n")
    (root / "test.csv").write_text("\n".join(test) + "\n")
    config = root / "tiny_cpd.json"
    config.write_text(json.dumps({"arch": {"type": "CPD", "args": tiny_cpd_args()},
                                  "data_loader": [{"args": {"video_params": {"input_res": 32}}}]}))
    net = tiny_cpd(seed=3)
    ckpt = root / "cpd.pth"
    torch.save({"state_dict": {"module." + k: v for k, v in net.state_dict().items()}}, ckpt)
    return root, config, ckpt, net


def flags(root, config, ckpt, out, epochs=2):
    return ["--model", str(config), "--finetune", str(ckpt), "--data_set", "UCF101", "--data_path", str(root),
            "--video_root", str(root / "videos"), "--nb_classes", str(CLASSES), "--reader", "pyav", "--device", "cpu",
            "--num_workers", "0", "--batch_size", "3", "--num_frames", "4", "--jitter_range", "36", "44",
            "--short_side_size", "36", "--test_num_segment", "2", "--epochs", str(epochs), "--output_dir", str(out)]


def test_cpd_test_views_are_the_official_clips_and_crops(tmp_path):
    """Every test item of a 66x48 video at 8 fps against a direct restatement: the frames of clip `chunk` of 2,
    resized to short side 36 (bilinear on the float frames, long side floored: 49), the crop-th uniform crop
    (columns 0, ceil(13 / 2) = 7, 13), ImageNet-normalised, channels first."""
    write_noise_video(tmp_path / "a.mp4", n=60, fps=8, size=(66, 48))
    (tmp_path / "test.csv").write_text("a.mp4 0\n")
    data = build_dataset("UCF101", "test", data_path=str(tmp_path), num_frames=4, sampling_rate=4, input_size=32,
                         short_side_size=36, test_num_segment=2, test_num_crop=3, reader="pyav", nb_classes=1,
                         recipe="cpd")
    assert len(data) == 6
    mean, std = torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), torch.tensor(IMAGENET_STD).view(1, 3, 1, 1)
    from data_loader.readers import get_reader
    seen = set()
    for item_index in range(6):
        item = data[item_index]
        chunk, crop = item["chunk"], item["split"]
        seen.add((chunk, crop))
        with get_reader("pyav").open(str(tmp_path / "a.mp4")) as video:
            frames = video.read(np.asarray(official_clip(60, 8.0, 4, 4, (60 - 4 * 4 * 8 / 30) * chunk / 2)))
        x = torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255
        x = F.interpolate(x, size=(36, 49), mode="bilinear", align_corners=False)
        start = [0, 7, 13][crop]
        want = ((x[..., start:start + 36] - mean) / std).transpose(0, 1)
        assert item["video"].shape == (3, 4, 36, 36)
        assert torch.allclose(item["video"], want, atol=1e-5), (chunk, crop)
    assert seen == {(c, k) for c in range(2) for k in range(3)}


def test_cpd_validation_clips_are_jittered_but_never_flipped(tmp_path):
    """The official validation clip (HEAD of CPD-Video): random time, random scale and crop, no flip. In this
    video the left half is brighter than the right in every frame, and every crop's first column lies in the left
    half and its last in the right: a flipped clip would show it the other way round."""
    write_indexed_video(tmp_path / "a.mp4", n=40, fps=8, size=(64, 48))
    (tmp_path / "val.csv").write_text("a.mp4 0\n")
    data = build_dataset("UCF101", "validation", data_path=str(tmp_path), num_frames=4, sampling_rate=4,
                         input_size=32, short_side_size=32, reader="pyav", nb_classes=1, recipe="cpd",
                         jitter_range=(36, 44))
    clips = []
    for epoch in range(12):
        data.set_epoch(epoch)
        clip = data[0]["video"]
        assert clip.shape == (3, 4, 32, 32)
        assert (clip[0, :, :, 0].mean(-1) > clip[0, :, :, -1].mean(-1)).all(), epoch
        clips.append(clip)
    assert any(not torch.equal(clips[0], c) for c in clips[1:])  # random, not a fixed centre clip
    train = build_dataset("UCF101", "train", data_path=str(tmp_path), list_file=str(tmp_path / "val.csv"),
                          num_frames=4, sampling_rate=4, input_size=32, reader="pyav", nb_classes=1, recipe="cpd",
                          train_transform=cpd_clip_transform(32, True, (36, 44)))
    flipped = 0
    for epoch in range(12):
        train.set_epoch(epoch)
        clip = train[0]["video"]
        flipped += int((clip[0, :, :, 0].mean(-1) < clip[0, :, :, -1].mean(-1)).all())
    assert 0 < flipped < 12  # training clips are flipped half the time


def test_the_cpd_recipe_refuses_segment_sampled_datasets(tmp_path):
    (tmp_path / "videos").mkdir()
    (tmp_path / "sthv2_val_list_videos.txt").write_text("0.mp4 0\n")
    with pytest.raises(ValueError, match="by segments"):
        build_dataset("SSV2", "validation", data_path=str(tmp_path), recipe="cpd")


# ---- arguments ----

def test_the_recipe_follows_the_model_and_sets_the_official_cpd_defaults(ucf_folder, tmp_path):
    root, config, ckpt, _ = ucf_folder
    base = ["--model", str(config), "--finetune", str(ckpt), "--output_dir", str(tmp_path)]
    ft = get_args("finetune", base)
    assert ft.recipe == "cpd"
    assert (ft.opt, ft.lr, ft.weight_decay, ft.momentum, ft.clip_grad, ft.epochs, ft.dropout) == \
        ("sgd", 0.02, 1e-4, 0.9, 20.0, 100, 0.8)
    assert (ft.num_frames, ft.sampling_rate, ft.batch_size, ft.short_side_size) == (16, 4, 16, 256)
    assert (ft.test_num_segment, ft.test_num_crop, ft.mixup, ft.cutmix, ft.smoothing, ft.aa) == \
        (10, 3, 0.0, 0.0, 0.0, "none")
    assert (ft.lr_patience, ft.lr_factor, ft.min_lr, ft.head_sync, ft.precision) == (5, 0.1, 1e-6, "official", "fp32")
    linear = get_args("linear", base)
    assert (linear.lr, linear.linear_bn) == (2.0, "train")
    assert get_args("linear", base + ["--lr", "20", "--recipe", "auto"]).lr == 20.0  # explicit flags win
    vit = get_args("finetune", ["--finetune", str(ckpt), "--output_dir", str(tmp_path)])
    assert (vit.recipe, vit.opt, vit.lr, vit.epochs, vit.dropout, vit.precision) == \
        ("videomae", "adamw", 1e-3, 30, 0.0, "auto")


def test_a_recipe_that_does_not_fit_the_model_is_refused(ucf_folder, tmp_path):
    root, config, ckpt, _ = ucf_folder
    with pytest.raises(ValueError, match="use --recipe cpd"):
        finetune_main(get_args("finetune", flags(root, config, ckpt, tmp_path / "a") + ["--recipe", "videomae"]))
    with pytest.raises(ValueError, match="use --recipe videomae"):
        finetune_main(get_args("finetune", ["--finetune", str(ckpt), "--output_dir", str(tmp_path / "b"),
                                            "--recipe", "cpd"]))
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


# ---- runs ----

def read_log(out):
    with open(out / "log.txt") as f:
        return [json.loads(line) for line in f]


def plateau_lrs(lr, accuracies, patience, factor, min_lr):
    """ReduceLROnPlateau('max', threshold 1e-4 relative) restated: the lr of each epoch, given the validation
    top-1 of the epochs before it."""
    lrs, best, bad = [], None, 0
    for acc in accuracies:
        lrs.append(lr)
        if best is None or acc > best * (1 + 1e-4):
            best, bad = acc, 0
        else:
            bad += 1
        if bad > patience:
            lr, bad = max(lr * factor, min_lr), 0
    return lrs


def test_cpd_finetuning_trains_tests_and_resumes_with_its_plateau_schedule(ucf_folder, tmp_path, monkeypatch):
    import downstream.finetune as finetune
    root, config, ckpt, _ = ucf_folder
    out = tmp_path / "ft"
    common = flags(root, config, ckpt, out) + ["--lr_patience", "0", "--lr", "0.05"]
    validated, validate = [], finetune.validate
    monkeypatch.setattr(finetune, "validate", lambda model, loader, **kw: (
        validated.append(loader.dataset.epoch), validate(model, loader, **kw))[1])
    finetune_main(get_args("finetune", common))
    assert validated == [0, 1]  # new random validation clips every epoch, as the official's unseeded draws
    results = json.loads((out / "results.json").read_text())
    assert (results["videos"], results["views"], results["failed_views"]) == (6, 6 * 2 * 3, 0)
    state = torch.load(out / "checkpoint-last.pth", weights_only=True)
    assert "momentum_buffer" in next(iter(state["optimizer"]["state"].values()))
    assert state["scheduler"]["best"] == max(e["val_acc1"] for e in read_log(out))
    # resuming continues the plateau bookkeeping: the lrs of all 4 epochs follow the rule on the logged top-1s
    finetune_main(get_args("finetune", flags(root, config, ckpt, out, epochs=4) + ["--lr_patience", "0",
                                                                                   "--lr", "0.05"]))
    log = read_log(out)
    assert [e["epoch"] for e in log] == [0, 1, 2, 3]
    assert min(e["train_lr"] for e in log) < 0.05  # the schedule did act
    assert [e["train_lr"] for e in log] == pytest.approx(
        plateau_lrs(0.05, [e["val_acc1"] for e in log], patience=0, factor=0.1, min_lr=1e-6))
    # the saved weights give the reported test
    final = json.loads((out / "results.json").read_text())
    finetune_main(get_args("finetune", flags(root, config, ckpt, out, epochs=4) + ["--eval"]))  # the last one
    again = json.loads((out / "results.json").read_text())
    assert (again["Final top-1"], again["videos"]) == (final["Final top-1"], final["videos"])


@pytest.mark.parametrize("linear_bn", ["train", "frozen"])
def test_cpd_linear_probe_trains_the_head_and_bn_statistics_as_asked(ucf_folder, tmp_path, linear_bn):
    """Only the head's weights move. BatchNorm statistics keep adapting in the official probe (its BN stays in
    train mode) and stay the pretrained ones with --linear_bn frozen."""
    root, config, ckpt, net = ucf_folder
    out = tmp_path / linear_bn
    finetune_main(get_args("linear", flags(root, config, ckpt, out, epochs=1) + ["--linear_bn", linear_bn]))
    model = torch.load(out / "checkpoint-last.pth", weights_only=True)["model"]
    pretrained = net.visual_encoder.state_dict()
    stats = [k for k in pretrained if k.endswith("running_mean")]
    for name, value in pretrained.items():
        if name not in stats and not name.endswith(("running_var", "num_batches_tracked")):
            assert torch.equal(model["visual_encoder." + name], value), name
    moved = [not torch.equal(model["visual_encoder." + k], pretrained[k]) for k in stats]
    assert all(moved) if linear_bn == "train" else not any(moved)
    assert model["head.weight"].shape == (CLASSES, net.visual_encoder.feature_dim)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def head_after(tmp_path, ucf_folder, head_sync):
    """Two gloo processes fine-tune for one epoch; a small launcher saves each rank's weights before rank 0's are
    shared (`before`, official only) and when the test starts (`test`)."""
    root, config, ckpt, _ = ucf_folder
    out = tmp_path / head_sync
    launcher = tmp_path / "per_rank.py"
    launcher.write_text(
        "import os, sys, torch\n"
        "import downstream.finetune as ft\n"
        "from downstream.args import get_args\n"
        "from utils.distributed import rank\n"
        "out = sys.argv[sys.argv.index('--output_dir') + 1]\n"
        "def keep(model, when):\n"
        "    torch.save(model.state_dict(), os.path.join(out, f'{when}{rank()}.pth'))\n"
        "test, share = ft.test, ft.share_rank0_weights\n"
        "def shared(model):\n"
        "    keep(model, 'before')\n"
        "    share(model)\n"
        "def tested(args, model, env, dtype):\n"
        "    keep(model, 'test')\n"
        "    return test(args, model, env, dtype)\n"
        "ft.test, ft.share_rank0_weights = tested, shared\n"
        "ft.main(get_args('finetune', sys.argv[1:]))\n")
    env = {**os.environ, "PYTHONPATH": ROOT, "OMP_NUM_THREADS": "1"}
    done = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2",
                           f"--master_port={free_port()}", str(launcher), *flags(root, config, ckpt, out, epochs=1),
                           "--head_sync", head_sync, "--disable_eval_during_finetuning", "--save_ckpt", "false"],
                          cwd=ROOT, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    load = lambda when: [torch.load(out / f"{when}{r}.pth", weights_only=True) for r in (0, 1)]  # noqa: E731
    return (load("before") if head_sync == "official" else None), load("test")


def test_two_processes_keep_the_backbone_in_sync_and_the_head_as_asked(ucf_folder, tmp_path):
    """official: the head is outside DDP, so the two ranks train different heads (the backbone stays equal), and
    the test runs rank 0's weights everywhere, as the official tested rank 0's checkpoint; all_reduce: identical
    everywhere."""
    before, official = head_after(tmp_path, ucf_folder, "official")
    _, synced = head_after(tmp_path, ucf_folder, "all_reduce")
    for states in (before, synced):
        for k, v in states[0].items():
            if k.startswith("visual_encoder.") and "running" not in k and "num_batches" not in k:
                assert torch.allclose(v, states[1][k], atol=1e-6), k
    assert not torch.allclose(before[0]["head.weight"], before[1]["head.weight"])
    for k, v in official[0].items():
        assert torch.equal(v, official[1][k]) and torch.equal(v, before[0][k]), k
    assert torch.allclose(synced[0]["head.weight"], synced[1]["head.weight"], atol=1e-6)


def test_the_transfer_script_runs_every_split_with_the_cpd_recipe_and_prints_the_mean(ucf_folder, tmp_path):
    """scripts/cpd_transfer.sh with a stand-in launcher that parses the flags with the real parser and writes a
    results.json (top-1 = 10 x split): three runs with the official recipe, then the per-split and mean table."""
    root, config, ckpt, _ = ucf_folder
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    (scripts / "cpd_transfer.sh").write_text(open(os.path.join(ROOT, "scripts", "cpd_transfer.sh")).read())
    (scripts / "downstream_launch.sh").write_text(
        f'#!/usr/bin/env bash\nexec {sys.executable} -c "'
        "import sys, json, os; from downstream.args import get_args; "
        "a = get_args({'run_class_finetuning': 'finetune', 'run_class_linear': 'linear'}[sys.argv[1]], sys.argv[2:]); "
        "os.makedirs(a.output_dir, exist_ok=True); k = int(a.data_path[-1]); "
        "json.dump(vars(a), open(os.path.join(a.output_dir, 'args.json'), 'w')); "
        "json.dump({'Final top-1': 10.0 * k, 'Final Top-5': 50.0, 'videos': 6}, "
        "open(os.path.join(a.output_dir, 'results.json'), 'w'))\" \"$@\"\n")
    os.chmod(scripts / "downstream_launch.sh", 0o755)
    data = tmp_path / "lists"
    for k in (1, 2, 3):
        (data / f"split{k}").mkdir(parents=True)
        (data / f"split{k}" / "train.csv").write_text("0.mp4 0\n")
    env = {**os.environ, "PYTHONPATH": ROOT, "OUT": str(tmp_path / "out"), "DATA": str(data), "ROOT": str(root),
           "CKPT": str(ckpt), "CONFIG": str(config), "PROTOCOL": "linear", "DATASET": "hmdb51",
           "NPROC_PER_NODE": "2"}
    done = subprocess.run(["bash", str(scripts / "cpd_transfer.sh"), "--seed", "7"], env=env, cwd=tmp_path,
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    for k in (1, 2, 3):
        args = json.loads((tmp_path / "out" / f"split{k}" / "args.json").read_text())
        assert (args["recipe"], args["data_set"], args["nb_classes"], args["lr"], args["batch_size"],
                args["update_freq"]) == ("cpd", "HMDB51", 51, 2.0, 16, 4)  # 16 per forward, 128 over 2 processes
        assert args["seed"] == 7 and args["data_path"] == str(data / f"split{k}")
    lines = done.stdout.strip().splitlines()
    assert lines[-1] == "| mean of 3 | - | 20.0 | 50.0 |"
    assert lines[2] == "| split1 | 6 | 10.0 | 50.0 |"
