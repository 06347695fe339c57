"""VideoMAE-style downstream protocols: fine-tuning, linear probe, zero-shot retrieval and feature extraction."""
