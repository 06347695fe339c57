"""The distributed training loop and what only training needs. Not built yet."""
