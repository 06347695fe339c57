"""The distributed pretraining loop and what only training needs: config validation, optimiser and schedule,
gathering, evaluation, checkpoints and run reports."""
