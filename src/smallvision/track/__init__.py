"""Optional experiment tracking: TensorBoard event files and MLflow runs, switched on by ``track:``.

The schema is :mod:`smallvision.track.config` (imported by ``config.py``, so this package imports
nothing at load time); the trainer callbacks are :mod:`smallvision.track.base` and the two loggers.
"""
