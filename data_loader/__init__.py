"""From files on disk to training batches: readers, transcript alignment, sampling, transforms, masking,
datasets (YT-Temporal, WebVid, CC3M), collate with tokenisation, loaders, and the synthetic corpus."""
