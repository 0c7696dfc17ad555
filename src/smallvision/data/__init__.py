"""The data path: source -> reader (readers/) or builtin (builtins/) -> ImageSet (dataset.py) ->
size and channels (prepare.py) -> splits (splits.py, duplicates.py) -> training statistics
(normalize.py) -> augmentation (augment/). ``load.load_data(cfg.data)`` runs the first steps."""
