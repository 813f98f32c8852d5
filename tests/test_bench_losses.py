"""Benchmarks of medbook.losses (pytest-benchmark; compare within a group, never assert a time).

group `infonce`: `clip_loss` (forward + backward, B=256 pairs, d=512) vs a straightforward reference written out with
explicit exp / sum / log (the textbook formula) on the same inputs. Read the ratio of the two means in the table.
clip_loss is expected to be somewhat slower (two log-sum-exps instead of one exp, plus its shape/NaN checks): the price
of stability, since the textbook formula overflows to NaN at CLIP's clamp 1/tau = 100 (see notebook 06). On a busy
shared 2-core machine the numbers swing a lot with torch's thread count; `OMP_NUM_THREADS=1` gives a steadier ratio.
group `sentence-patch`: `sentence_patch_alignment` with top-k vs sparsemax vs global mean selection (B=16 volumes,
N=512 patches, S=6 sentences, d=128), forward + backward.
"""
import pytest
import torch
from medbook.losses import clip_loss, sentence_patch_alignment


def naive_clip_loss(img, txt, scale):
    a, b = img / img.norm(dim=1, keepdim=True), txt / txt.norm(dim=1, keepdim=True)
    E = torch.exp(scale * a @ b.T)
    return -(torch.log(E.diag() / E.sum(1)).mean() + torch.log(E.diag() / E.sum(0)).mean()) / 2


def _pairs(B=256, d=512):
    g = torch.Generator().manual_seed(0)
    return torch.randn(B, d, generator=g, requires_grad=True), torch.randn(B, d, generator=g, requires_grad=True)


def _step(fn, img, txt):
    img.grad = txt.grad = None
    loss = fn(img, txt); loss.backward()
    return loss


def test_naive_reference_agrees():
    img, txt = _pairs()
    assert torch.allclose(clip_loss(img, txt, 1 / 0.07), naive_clip_loss(img, txt, 1 / 0.07), atol=1e-4)
    assert torch.isnan(naive_clip_loss(img, img, 100.)) and torch.isfinite(clip_loss(img, img, 100.))


@pytest.mark.benchmark(group='infonce')
def test_bench_clip_loss(benchmark):
    img, txt = _pairs()
    benchmark.pedantic(_step, args=(lambda a, b: clip_loss(a, b, 1 / 0.07), img, txt), rounds=20, iterations=3, warmup_rounds=2)


@pytest.mark.benchmark(group='infonce')
def test_bench_naive_reference(benchmark):
    img, txt = _pairs()
    benchmark.pedantic(_step, args=(lambda a, b: naive_clip_loss(a, b, 1 / 0.07), img, txt), rounds=20, iterations=3, warmup_rounds=2)


@pytest.mark.parametrize('select', ['topk', 'sparsemax', 'mean'])
@pytest.mark.benchmark(group='sentence-patch')
def test_bench_sentence_patch(benchmark, select):
    g = torch.Generator().manual_seed(0)
    P = torch.randn(16, 512, 128, generator=g, requires_grad=True)
    S = torch.randn(16, 6, 128, generator=g, requires_grad=True)
    def step():
        P.grad = S.grad = None
        sentence_patch_alignment(P, S, select=select, k=16).loss.backward()
    benchmark.pedantic(step, rounds=5, iterations=1, warmup_rounds=1)
