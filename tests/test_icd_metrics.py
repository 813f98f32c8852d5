"GKI-ICD metrics (medbook.icd) cross-checked against scikit-learn, and the validation-only threshold."
import numpy as np
import pytest
from sklearn.metrics import roc_auc_score, f1_score, label_ranking_average_precision_score

from medbook.icd import coding_metrics, tune_threshold


def _data(seed, n=60, c=12, ties=False):
    rng = np.random.default_rng(seed)
    y = (rng.random((n, c)) < rng.uniform(0.03, 0.4, c)).astype(int)
    y[:, -1] = 0                                  # a code absent from this split
    y[:5] = 0                                     # notes without any code (like normal IU reports)
    p = np.clip(0.5 * y + rng.normal(0.25, 0.2, (n, c)), 0, 1)
    if ties: p = np.round(p, 1)                   # many tied scores
    return y, p


@pytest.mark.parametrize('seed', range(5))
@pytest.mark.parametrize('ties', [False, True])
def test_metrics_match_sklearn(seed, ties):
    y, p = _data(seed, ties=ties)
    t = 0.45
    rare = np.zeros(y.shape[1], bool); rare[::3] = True
    m = coding_metrics(y, p, threshold=t, ks=(5, 8), rare=rare)
    present = np.flatnonzero(y.sum(0) > 0)
    assert m['macro_auc'] == pytest.approx(roc_auc_score(y[:, present], p[:, present], average='macro'))
    assert m['micro_auc'] == pytest.approx(roc_auc_score(y, p, average='micro'))
    pred = (p >= t).astype(int)
    assert m['micro_f1'] == pytest.approx(f1_score(y, pred, average='micro', zero_division=0))
    assert m['macro_f1'] == pytest.approx(f1_score(y, pred, average='macro', labels=present, zero_division=0))
    rare_present = [j for j in present if rare[j]]
    assert m['rare_f1'] == pytest.approx(f1_score(y, pred, average='macro', labels=rare_present, zero_division=0))
    has = y.sum(1) > 0
    assert m['map'] == pytest.approx(label_ranking_average_precision_score(y[has], p[has]))
    if not ties:  # with ties the top-k set depends on the tie order, which sklearn does not define
        for k in (5, 8):
            top = np.argsort(-p[has], 1)[:, :k]
            assert m[f'p@{k}'] == pytest.approx(np.take_along_axis(y[has], top, 1).sum(1).mean() / k)


def test_threshold_tuned_on_validation_only():
    y_val, p_val = _data(0)
    t = tune_threshold(y_val, p_val)
    grid = np.round(np.arange(0.02, 0.96, 0.01), 2)
    f1s = [f1_score(y_val, (p_val >= g).astype(int), average='micro', zero_division=0) for g in grid]
    assert f1_score(y_val, (p_val >= t).astype(int), average='micro') == pytest.approx(max(f1s))


def test_shape_mismatch_is_an_error():
    y, p = _data(0)
    with pytest.raises(ValueError, match='one shape'): coding_metrics(y, p[:, :3])
