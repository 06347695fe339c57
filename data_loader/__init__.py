"""From files on disk to training batches (readers, sampling, transforms, masking, collate). Not built yet."""
