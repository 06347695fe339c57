"""Validation: the task's per-clip outputs for every validation clip, gathered over ranks, and its metrics."""
from collections import Counter, defaultdict

import torch

from data_loader.loader import set_epoch
from utils.distributed import all_reduce_sum, gather_rows, world_size


@torch.no_grad()
def evaluate(task, net, loaders, dataset_names):
    """{dataset name: metrics}: the task's validation metrics plus how many clips were evaluated (`val_clips`) and
    how many were skipped as unreadable (`val_skipped`). Validation draws are fixed (epoch 0) so every evaluation
    sees the same windows, crops and masks."""
    was_training = net.training
    net.eval()
    results = {}
    for name, loader in zip(dataset_names, loaders):
        set_epoch(loader, 0)
        outputs, skipped = defaultdict(list), Counter()
        for batch in loader:
            skipped.update(r["reason"] for r in batch["skipped"])
            if "video" not in batch:
                continue
            for key, value in task.validation_outputs(net, batch).items():
                outputs[key].append(value)
        # every rank takes part in every collective, whatever it loaded (a rank-dependent call would hang)
        loaded, unreadable = all_reduce_sum([int(bool(outputs)), sum(skipped.values())], task.device)
        if loaded < world_size():
            raise RuntimeError(f"validation of {name}: {world_size() - int(loaded)} process(es) could load no clip of "
                               f"their share ({int(unreadable)} unreadable; here: {dict(skipped)})")
        gathered = {key: gather_rows(torch.cat(parts)) for key, parts in outputs.items()}
        metrics = task.validation_metrics(gathered)
        metrics["val_clips"] = len(next(iter(gathered.values())))
        metrics["val_skipped"] = int(unreadable)
        results[name] = metrics
    net.train(was_training)
    return results


def format_results(task, epoch, results):
    """One line per dataset, as printed in the log."""
    return [f"[val] epoch {epoch} {name}: {task.format_metrics(m)} on {m['val_clips']} clips "
            f"({m['val_skipped']} unreadable skipped)" for name, m in results.items()]
