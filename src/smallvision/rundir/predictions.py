"""``predictions.npz``: the saved outputs every metric and figure is computed from.

Keys: ``<split>/index`` (the samples' indices in the data), ``<split>/<head>/y_true`` and
``<split>/<head>/<field>`` with the field named by :func:`output_field`, i.e. the head kind's
``npz_field`` (``prob`` for classification probabilities, ``y_pred`` for regression values and
reconstructions), and for a denoising or masked autoencoder ``<split>/<head>/corrupted``: the
corrupted model inputs it was scored on (standardised, like ``y_true``). A split name may contain ``:`` (``test:TEST2``, one domain of the test split);
a head name may contain ``/``. :func:`parse_key` is the only reader of these keys.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from smallvision.errors import UserError
from smallvision.rundir.arrays import read_npz, write_npz

INDEX = "index"
Y_TRUE = "y_true"


def output_field(kind: str) -> str:
    """The npz field holding a head's outputs: its kind's ``HeadKind.npz_field`` (the one place that reads it)."""
    from smallvision.registry import HEAD_KINDS

    return HEAD_KINDS.get(kind).npz_field


def npz_key(split: str, head: str | None, name: str) -> str:
    """``<split>/index`` (head None) or ``<split>/<head>/<name>``."""
    return f"{split}/{name}" if head is None else f"{split}/{head}/{name}"


def parse_key(key: str) -> tuple[str, str | None, str]:
    """``(split, head, field)`` of an npz key; head is None for ``<split>/index``.

    Raises:
        ValueError: the key has neither form.
    """
    split, _, rest = key.partition("/")
    if rest == INDEX:
        return split, None, INDEX
    head, _, name = rest.rpartition("/")
    if not split or not head or not name:
        raise ValueError(f"key {key!r} is neither <split>/index nor <split>/<head>/<field>")
    return split, head, name


@dataclass
class Predictions:
    """The content of ``predictions.npz``.

    Attributes:
        index: split -> (N,) sample indices.
        arrays: split -> head -> field (``y_true``, ``prob``, ``y_pred``) -> array.
        ignored: keys that were neither form (kept out of ``arrays``).
    """

    index: dict[str, np.ndarray] = field(default_factory=dict)
    arrays: dict[str, dict[str, dict[str, np.ndarray]]] = field(default_factory=dict)
    ignored: list[str] = field(default_factory=list)

    @property
    def splits(self) -> list[str]:
        """The splits with saved samples, in file order."""
        return list(self.index)

    def head(self, split: str, head: str) -> dict[str, np.ndarray]:
        """field -> array of one head in one split ({} when not saved)."""
        return self.arrays.get(split, {}).get(head, {})

    def output(self, split: str, head: str, kind: str) -> np.ndarray:
        """The saved outputs of a head of ``kind`` (probabilities or predicted values).

        Raises:
            KeyError: not saved.
        """
        return self.arrays[split][head][output_field(kind)]

    def to_arrays(self) -> dict[str, np.ndarray]:
        """Flat npz key -> array, as written to the file."""
        out = {npz_key(s, None, INDEX): i for s, i in self.index.items()}
        for s, heads in self.arrays.items():
            out |= {npz_key(s, h, n): a for h, fields in heads.items() for n, a in fields.items()}
        return out

    @classmethod
    def from_arrays(cls, arrays: Mapping[str, np.ndarray]) -> Predictions:
        """Parse flat npz keys (unknown forms go to ``ignored``)."""
        out = cls()
        for key, array in arrays.items():
            try:
                split, head, name = parse_key(key)
            except ValueError:
                out.ignored.append(key)
                continue
            if head is None:
                out.index[split] = array
            else:
                out.arrays.setdefault(split, {}).setdefault(head, {})[name] = array
        return out


def build_predictions(
    index: Mapping[str, np.ndarray],
    evaluated: Mapping[str, tuple[Mapping[str, np.ndarray], Mapping[str, np.ndarray]]],
    kinds: Mapping[str, str],
    extra: Mapping[str, Mapping[str, Mapping[str, np.ndarray]]] | None = None,
) -> Predictions:
    """Predictions from split -> indices and split -> (y_true per head, outputs per head), plus
    ``extra`` fields: split -> head -> name -> array (``corrupted``: the inputs an autoencoder saw)."""
    out = Predictions()
    for s, (y_true, outputs) in evaluated.items():
        out.index[s] = np.asarray(index[s])
        out.arrays[s] = {
            h: {Y_TRUE: np.asarray(y_true[h]), output_field(kinds[h]): np.asarray(o).astype(np.float32)}
            for h, o in outputs.items()
        }
        for h, fields in (extra or {}).get(s, {}).items():
            out.arrays[s][h] |= {n: np.asarray(a, dtype=np.float32) for n, a in fields.items()}
    return out


def save_predictions(
    path: Path,
    index: Mapping[str, np.ndarray],
    evaluated: Mapping[str, tuple[Mapping[str, np.ndarray], Mapping[str, np.ndarray]]],
    kinds: Mapping[str, str],
    extra: Mapping[str, Mapping[str, Mapping[str, np.ndarray]]] | None = None,
) -> Predictions:
    """Write ``predictions.npz`` atomically (temporary file + rename) and return what was written.

    Args:
        path: the file (``<run>/predictions.npz``).
        index: split -> sample indices.
        evaluated: split -> (head -> true values, head -> outputs).
        kinds: head -> kind (picks the field of the outputs, see :func:`output_field`).
        extra: split -> head -> field -> array saved beside them (``corrupted`` model inputs).
    """
    predictions = build_predictions(index, evaluated, kinds, extra)
    write_npz(path, predictions.to_arrays())
    return predictions


def load_predictions(path: Path) -> Predictions:
    """Read ``predictions.npz``.

    Raises:
        UserError: the file is missing or not a readable npz archive.
    """
    if not path.is_file():
        raise UserError(f"{path} not found (has the run finished its evaluation?)")
    return Predictions.from_arrays(read_npz(path))  # no pickle: never execute a directory's contents
