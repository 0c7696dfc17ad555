"""The data path: source -> reader (readers/), builtin (builtins/) or several of them as domains
(multi.py, with shifts.py for shifted copies) -> ImageSet (dataset.py) ->
size and channels (prepare.py) -> splits (splits.py, duplicates.py) -> training statistics
(normalize.py) -> augmentation (augment/). ``load.load_data(cfg.data)`` runs the first steps."""
