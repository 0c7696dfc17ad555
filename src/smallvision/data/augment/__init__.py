"""Augmentation as batched tensor ops; each op registers itself in ``AUGMENTATIONS``."""
