"""The ``svm`` baseline's estimator: an RBF SVC with softmax scores as ``predict_proba``.

Its own module (not inside :mod:`smallvision.evaluate.baselines`) because it imports scikit-learn
at the top, and a fitted baseline must pickle like any estimator.
"""

from __future__ import annotations

import numpy as np
from scipy.special import softmax
from sklearn.svm import SVC


class SoftmaxSVC(SVC):
    """SVC whose ``predict_proba`` is the softmax of its one-vs-rest decision function.

    SVC's own ``probability=True`` (Platt scaling fitted by an internal 5-fold cross-validation)
    is deprecated since scikit-learn 1.9 and multiplies the fit time; the softmax keeps the SVC's
    ranking of the classes, but its scores are not calibrated probabilities. The parameters are
    SVC's (``C``, ``gamma``, ``kernel``...).
    """

    def predict_proba(self, X) -> np.ndarray:  # noqa: N803  (scikit-learn's argument name)
        """Softmax over the classes of ``decision_function(X)``, one row per sample."""
        scores = self.decision_function(X)
        if scores.ndim == 1:  # two classes: one signed distance to the boundary
            scores = np.stack([-scores, scores], axis=1)
        return softmax(scores, axis=1)
