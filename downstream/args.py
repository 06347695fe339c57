"""Command-line flags of the three downstream protocols: the official (VideoMAE-style) names and defaults.

Flags the official code parsed but ignored are honoured here with defaults equal to what the official runs
effectively used (`--drop_path 0`, `--init_scale 1`, `--data_path`); flags that only fed DeepSpeed or dead code are
gone. Switches for the fixes of official bugs default to the official behaviour (see docs/faithfulness.md).
"""
import argparse

PROTOCOLS = ("finetune", "linear", "zero")
# What the CPD recipe changes from the parser's (VideoMAE) defaults: the official CPD fine-tuning command (SGD 0.02,
# wd 1e-4, clip 20, dropout 0.8, 100 epochs, 16 frames at stride 4, 16 clips per GPU, no mixup or RandAugment) and
# its 10 x 3 test at 256, in fp32 (the official used no autocast). The linear probe's lr is 2 (the official
# README: "2 or 20").
CPD_DEFAULTS = {"epochs": 100, "opt": "sgd", "lr": 0.02, "min_lr": 1e-6, "weight_decay": 1e-4, "momentum": 0.9,
                "clip_grad": 20.0, "warmup_epochs": 0, "layer_decay": 1.0, "batch_size": 16, "num_frames": 16,
                "sampling_rate": 4, "short_side_size": 256, "test_num_segment": 10,
                "test_num_crop": 3, "aa": "none", "reprob": 0.0, "smoothing": 0.0, "mixup": 0.0, "cutmix": 0.0,
                "dropout": 0.8, "save_ckpt_freq": 2, "precision": "fp32"}
RECIPE_DEFAULTS = {"videomae": {}, "cpd": CPD_DEFAULTS}


def str2bool(value):
    if value.lower() in ("1", "true", "yes"):
        return True
    if value.lower() in ("0", "false", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got {value!r}")


def get_parser(protocol):
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}")
    p = argparse.ArgumentParser(f"TVTS downstream: {protocol}", formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    g = p.add_argument_group("model")
    g.add_argument("--model", default="vit_base_patch16_224",
                   help="encoder preset (vit_base_patch16_224; slowonly_r3d50: CPD's 3D ResNet-50), or a pretraining "
                        "config .json whose arch.args.video_params define it (a CPD config: its 3D ResNet)")
    g.add_argument("--finetune", default="", help="pretraining checkpoint (ours or official) to take the encoder from")
    g.add_argument("--from_scratch", action="store_true",
                   help="allow running without --finetune (a randomly initialised encoder, e.g. as a baseline)")
    g.add_argument("--tubelet_size", type=int, default=2)
    g.add_argument("--input_size", type=int, default=None,
                   help="crop size fed to the model (default: the --model config's frame size, else 224)")
    g.add_argument("--drop_path", type=float, default=0.0,
                   help="stochastic depth; the official scripts passed 0.1 but it never reached the model")
    g.add_argument("--init_scale", type=float, default=1.0,
                   help="head init multiplier; VideoMAE's 0.001 was parsed but ignored by the official code")
    g.add_argument("--attention", default="sdpa", choices=["sdpa", "plain"])
    if protocol != "zero":
        g.add_argument("--recipe", default="auto", choices=["auto", "videomae", "cpd"],
                       help="training and test recipe: videomae (the official TVTS runs: layer-decayed AdamW, cosine, "
                            "RandAugment, mixup) or cpd (CPD's official UCF-101 / HMDB-51 runs: SGD, ReduceLROnPlateau "
                            "on validation top-1, scale-jitter crops, clips on a 30 fps timeline, 10 x 3 test views at "
                            "256); auto: cpd for CPD's 3D ResNet, videomae otherwise. The recipe sets the defaults of "
                            "the flags it uses (shown here: videomae's; see downstream/args.py CPD_DEFAULTS)")
        g.add_argument("--dropout", type=float, default=0.0, help="dropout before the 3D ResNet's head (cpd: 0.8)")

    g = p.add_argument_group("data")
    g.add_argument("--data_set", default="SSV2", help="SSV2, Kinetics-400, UCF101 or HMDB51")
    g.add_argument("--data_path", default="data/ssv2", help="folder holding the list files (and videos/ for SSV2)")
    g.add_argument("--video_root", default=None, help="folder the list files' paths are relative to")
    g.add_argument("--train_list", default=None, help="override the training list file")
    g.add_argument("--val_list", default=None, help="override the validation list file")
    g.add_argument("--test_list", default=None, help="override the test list file")
    g.add_argument("--nb_classes", type=int, default=None, help="checked against the dataset and its list files")
    g.add_argument("--num_frames", type=int, default=16)
    g.add_argument("--sampling_rate", type=int, default=4, help="frame stride of dense (Kinetics-style) sampling; "
                   "cpd recipe: the stride on a --target_fps timeline")
    g.add_argument("--short_side_size", type=int, default=None, help="evaluation resize (default: --input_size)")
    g.add_argument("--test_num_segment", type=int, default=2)
    g.add_argument("--test_num_crop", type=int, default=3)
    g.add_argument("--val_sampling", default="random", choices=["random", "center"],
                   help="validation/zero-shot frame offsets: random per segment (official) or segment centres")
    g.add_argument("--short_videos", default="first_frame", choices=["first_frame", "spread"],
                   help="videos with fewer frames than --num_frames: all copies of frame 0 (official) or spread")
    g.add_argument("--reader", default="auto", help="auto (PyAV for .avi, decord otherwise), decord, pyav or cv2")
    g.add_argument("--loading", default="lax", choices=["lax", "strict"],
                   help="lax: skip unreadable videos in evaluation and replace them in training, with counts; "
                        "strict: stop at the first one")
    g.add_argument("--num_workers", type=int, default=10)
    g.add_argument("--pin_mem", type=str2bool, default=True)

    g = p.add_argument_group("run")
    g.add_argument("--batch_size", type=int, default=64, help="per process")
    g.add_argument("--output_dir", default="", help="logs, checkpoints and results (required)")
    g.add_argument("--log_dir", default=None, help="tensorboard folder (none by default)")
    g.add_argument("--device", default=None, help="cuda or cpu (default: cuda when available)")
    g.add_argument("--precision", default="auto", choices=["auto", "fp32", "fp16", "bf16"],
                   help="autocast dtype; auto = fp16 on GPU (the official ran fp16) and fp32 on CPU"
                        + ("; zero-shot ran fp32" if protocol == "zero" else ""))
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--dist_eval", action="store_true", help="accepted for compatibility: evaluation is always "
                   "sharded over the processes and gathered")

    if protocol == "zero":
        g.add_argument("--save_features", action="store_true", help="also write the features to features.npz")
        return p

    g.add_argument("--target_fps", type=float, default=30.0, help="cpd recipe: the timeline clips are measured on")
    g.add_argument("--jitter_range", type=int, nargs=2, default=(256, 340),
                   help="cpd recipe: training (and validation) short-side scale range before the --input_size crop")

    g = p.add_argument_group("optimisation")
    g.add_argument("--epochs", type=int, default=30)
    g.add_argument("--update_freq", type=int, default=1, help="gradient accumulation steps")
    g.add_argument("--opt", default="adamw", choices=["adamw", "sgd"])
    g.add_argument("--opt_eps", type=float, default=1e-8)
    g.add_argument("--opt_betas", type=float, nargs=2, default=(0.9, 0.999))
    g.add_argument("--momentum", type=float, default=0.9)
    g.add_argument("--clip_grad", type=float, default=None)
    g.add_argument("--weight_decay", type=float, default=0.05)
    g.add_argument("--lr", type=float, default=1e-3, help="at a total batch of 256 (scaled linearly); cpd recipe: "
                   "as given (fine-tuning 0.02, linear probe 2)")
    g.add_argument("--min_lr", type=float, default=1e-6, help="at a total batch of 256 (scaled linearly); cpd "
                   "recipe: the plateau schedule's floor, as given")
    g.add_argument("--layer_decay", type=float, default=0.75)
    g.add_argument("--warmup_epochs", type=int, default=5)
    g.add_argument("--warmup_steps", type=int, default=-1, help="overrides --warmup_epochs when > 0")
    g.add_argument("--max_steps_per_epoch", type=int, default=None, help="cut epochs short (smoke tests)")
    g.add_argument("--lr_patience", type=int, default=5,
                   help="cpd recipe: epochs without a better validation top-1 before the lr drops (ReduceLROnPlateau)")
    g.add_argument("--lr_factor", type=float, default=0.1, help="cpd recipe: the plateau schedule's lr factor")
    g.add_argument("--head_sync", default="official", choices=["official", "all_reduce"],
                   help="cpd recipe, several processes: official: the head's gradients are not all-reduced (the "
                        "official put the head outside DDP: each rank trains its own, rank 0's is saved); "
                        "all_reduce: synchronised like the rest")
    if protocol == "linear":
        g.add_argument("--linear_bn", default="train", choices=["train", "frozen"],
                       help="cpd recipe: train: the frozen encoder's BatchNorm keeps updating its statistics and "
                            "dropout applies (official); frozen: the encoder runs in eval mode")
        g.add_argument("--linear_optimizer", default="official", choices=["official", "as_given"],
                       help="official: AdamW whatever --opt says (DeepSpeed ignored --opt sgd); as_given: honour "
                            "--opt")

    g = p.add_argument_group("augmentation")
    g.add_argument("--aa", default="rand-m7-n4-mstd0.5-inc1", help="RandAugment policy; 'none' disables it")
    g.add_argument("--train_interpolation", default="bicubic")
    g.add_argument("--reprob", type=float, default=0.25)
    g.add_argument("--remode", default="pixel")
    g.add_argument("--recount", type=int, default=1)
    g.add_argument("--smoothing", type=float, default=0.1)
    g.add_argument("--mixup", type=float, default=0.8)
    g.add_argument("--cutmix", type=float, default=1.0)
    g.add_argument("--cutmix_minmax", type=float, nargs=2, default=None)
    g.add_argument("--mixup_prob", type=float, default=1.0)
    g.add_argument("--mixup_switch_prob", type=float, default=0.5)
    g.add_argument("--mixup_mode", default="batch")
    g.add_argument("--video_cutmix", default="official", choices=["official", "fixed"],
                   help="official: timm 0.4.5 pastes the cutmix box into the T and H axes of video tensors; "
                        "fixed: into H and W")

    g = p.add_argument_group("evaluation and checkpoints")
    g.add_argument("--merge", default="logits", choices=["logits", "softmax"],
                   help="multi-view merge: mean of raw logits (official) or of softmax scores (VideoMAE)")
    g.add_argument("--save_ckpt_freq", type=int, default=100)
    g.add_argument("--save_ckpt", type=str2bool, default=True)
    g.add_argument("--resume", default="", help="checkpoint to resume from (default: the latest in --output_dir)")
    g.add_argument("--auto_resume", type=str2bool, default=True)
    g.add_argument("--eval", action="store_true", help="only run the multi-view test of a checkpoint (default: "
                   "checkpoint-best.pth in --output_dir, with the cpd recipe checkpoint-last.pth; or --resume)")
    g.add_argument("--disable_eval_during_finetuning", action="store_true")
    return p


def resolve_recipe(recipe, model):
    """`auto` -> cpd for a CPD 3D ResNet (`--model` a CPD config or slowonly_r3d50), videomae otherwise."""
    if recipe != "auto":
        return recipe
    from .encoder import r3d_args
    return "cpd" if r3d_args(model) is not None else "videomae"


def get_args(protocol, argv=None):
    parser = get_parser(protocol)
    if protocol != "zero":  # the recipe sets the defaults of the flags it reads; explicit flags still win
        known, _ = parser.parse_known_args(argv)
        recipe = resolve_recipe(known.recipe, known.model)
        defaults = dict(RECIPE_DEFAULTS[recipe])
        if recipe == "cpd" and protocol == "linear":
            defaults["lr"] = 2.0
        parser.set_defaults(**defaults)
    args = parser.parse_args(argv)
    args.protocol = protocol
    if protocol != "zero":
        args.recipe = recipe
    if not args.output_dir:
        raise SystemExit("--output_dir is required: logs, checkpoints and results go there")
    if not args.finetune and not args.from_scratch and not getattr(args, "eval", False):
        raise SystemExit("--finetune is required (a pretraining checkpoint); pass --from_scratch to run a randomly "
                         "initialised encoder on purpose")
    return args
