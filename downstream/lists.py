"""Convert the native UCF-101 and HMDB-51 split files into the `<path> <label>` lists the datasets read.

    python -m downstream.lists ucf101 --root UCF101 --splits ucfTrainTestlist --split 1 --out DIR
    python -m downstream.lists hmdb51 --root HMDB51 --splits testTrainMulti_7030_splits --split 1 --out DIR

writes DIR/train.csv, DIR/val.csv and DIR/test.csv (validation = the test split, as VideoMAE evaluates) with
paths `<class>/<video>` relative to --root: train with `--data_path DIR --video_root ROOT`. Labels: UCF-101's
classInd.txt minus one; HMDB-51's class names sorted alphabetically. Anything inconsistent (unknown class, label
that disagrees with the folder, a video listed twice or in both splits, a missing video) is an error.
"""
import argparse
import glob
import os


def _lines(path):
    """(line number, stripped line) for the non-blank lines of a split file."""
    if not os.path.isfile(path):
        raise ValueError(f"split file not found: {path}")
    with open(path) as f:
        return [(number, line.strip()) for number, line in enumerate(f, 1) if line.strip()]


def _check_unique(split_lists):
    seen = {}
    for split, videos in split_lists.items():
        for video, _ in videos:
            if video in seen:
                where = "twice in" if seen[video] == split else f"in both {seen[video]} and"
                raise ValueError(f"video {video} is listed {where} the {split} split")
            seen[video] = split


def _check_videos_exist(root, split_lists):
    missing = [v for videos in split_lists.values() for v, _ in videos if not os.path.isfile(os.path.join(root, v))]
    if missing:
        raise ValueError(f"{len(missing)} listed videos are missing under {root}, e.g. {missing[:3]} "
                         "(use --no_video_check to convert the lists without the videos)")


def ucf101_lists(splits_dir, split):
    """{"train": [(path, label)], "test": [...]} and the class names, from classInd.txt, trainlist0N.txt and
    testlist0N.txt (labels there are 1-based; the test list has no labels: the class folder gives it)."""
    class_file = os.path.join(splits_dir, "classInd.txt")
    classes = {}
    for number, line in _lines(class_file):
        parts = line.split()
        if len(parts) != 2 or not parts[0].isdigit():
            raise ValueError(f"{class_file}, line {number}: expected '<index> <class>', got {line!r}")
        classes[parts[1]] = int(parts[0]) - 1
    if sorted(classes.values()) != list(range(len(classes))):
        raise ValueError(f"{class_file}: class indices are not 1..{len(classes)} once each")

    def label_of(path, file, number):
        folder = path.split("/")[0]
        if "/" not in path or folder not in classes:
            raise ValueError(f"{file}, line {number}: {path!r} is not under a class folder of {class_file}")
        return classes[folder]

    lists = {"train": [], "test": []}
    train_file = os.path.join(splits_dir, f"trainlist0{split}.txt")
    for number, line in _lines(train_file):
        parts = line.split()
        if len(parts) != 2 or not parts[1].isdigit():
            raise ValueError(f"{train_file}, line {number}: expected '<class>/<video> <label>', got {line!r}")
        label = label_of(parts[0], train_file, number)
        if int(parts[1]) - 1 != label:
            raise ValueError(f"{train_file}, line {number}: label {parts[1]} disagrees with the class folder of "
                             f"{parts[0]} (class {label + 1} in {class_file})")
        lists["train"].append((parts[0], label))
    test_file = os.path.join(splits_dir, f"testlist0{split}.txt")
    for number, line in _lines(test_file):
        parts = line.split()
        if len(parts) != 1:
            raise ValueError(f"{test_file}, line {number}: expected '<class>/<video>', got {line!r}")
        lists["test"].append((parts[0], label_of(parts[0], test_file, number)))
    return lists, sorted(classes, key=classes.get)


def hmdb51_lists(splits_dir, split):
    """{"train": [(path, label)], "test": [...]} and the class names, from `<class>_test_split<N>.txt` files
    whose lines are `<video> <1 train | 2 test | 0 unused>`; classes sorted alphabetically -> 0..50."""
    suffix = f"_test_split{split}.txt"
    files = sorted(glob.glob(os.path.join(glob.escape(splits_dir), "*" + suffix)))
    if not files:
        raise ValueError(f"no *{suffix} files in {splits_dir}")
    classes = sorted(os.path.basename(f)[:-len(suffix)] for f in files)
    lists = {"train": [], "test": []}
    for label, name in enumerate(classes):
        split_file = os.path.join(splits_dir, name + suffix)
        for number, line in _lines(split_file):
            parts = line.split()
            if len(parts) != 2 or parts[1] not in ("0", "1", "2"):
                raise ValueError(f"{split_file}, line {number}: expected '<video> <0|1|2>', got {line!r}")
            if parts[1] != "0":
                lists["train" if parts[1] == "1" else "test"].append((f"{name}/{parts[0]}", label))
    return lists, classes


CONVERTERS = {"ucf101": ucf101_lists, "hmdb51": hmdb51_lists}


def convert(dataset, root, splits_dir, split, out, check_videos=True):
    """Write train.csv, val.csv (= the test split) and test.csv into `out`; returns the counts."""
    if dataset not in CONVERTERS:
        raise ValueError(f"unknown dataset {dataset!r}; choose one of {sorted(CONVERTERS)}")
    lists, classes = CONVERTERS[dataset](splits_dir, split)
    for name, videos in lists.items():
        if not videos:
            raise ValueError(f"{dataset} split {split} has no {name} videos in {splits_dir}")
    _check_unique(lists)
    if check_videos:
        _check_videos_exist(root, lists)
    os.makedirs(out, exist_ok=True)
    for file_name, videos in (("train.csv", lists["train"]), ("val.csv", lists["test"]),
                              ("test.csv", lists["test"])):
        with open(os.path.join(out, file_name), "w") as f:
            f.writelines(f"{video} {label}\n" for video, label in videos)
    return {"classes": len(classes), "train": len(lists["train"]), "test": len(lists["test"])}


def main(argv=None):
    p = argparse.ArgumentParser(description="UCF-101 / HMDB-51 split files -> train.csv, val.csv, test.csv")
    p.add_argument("dataset", choices=sorted(CONVERTERS))
    p.add_argument("--root", required=True, help="dataset folder holding <class>/<video>.avi")
    p.add_argument("--splits", required=True, help="folder of the native split files")
    p.add_argument("--split", type=int, default=1, choices=[1, 2, 3])
    p.add_argument("--out", required=True, help="folder for the list files (the datasets' --data_path)")
    p.add_argument("--no_video_check", action="store_true", help="do not check that every listed video exists")
    args = p.parse_args(argv)
    counts = convert(args.dataset, args.root, args.splits, args.split, args.out, not args.no_video_check)
    print(f"{args.dataset} split {args.split}: {counts['classes']} classes, {counts['train']} train and "
          f"{counts['test']} test videos -> {os.path.join(args.out, '{train,val,test}.csv')} "
          f"(use --data_path {args.out} --video_root {args.root})")
    return counts


if __name__ == "__main__":
    main()
