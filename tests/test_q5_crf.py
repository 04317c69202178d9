"""The from-scratch CRF against brute-force enumeration of every tag path and against
pytorch-crf (the reference implementation whose parameter convention it follows)."""

import itertools

import pytest
import torch
from torchcrf import CRF as TorchCRF

from q5_ner_crf.crf import CRF, UNLABELLED


def random_crf(num_tags: int, scale: float = 1.0, dtype=torch.float64) -> CRF:
    crf = CRF(num_tags).to(dtype)
    with torch.no_grad():
        for parameter in crf.parameters():
            parameter.normal_(0, scale)
    return crf


def prefix_mask(lengths, steps):
    return torch.arange(steps)[None, :] < torch.as_tensor(lengths)[:, None]


@torch.no_grad()
def brute_force(crf: CRF, emissions: torch.Tensor, length: int):
    """Score every one of K**length paths of one sentence by the definition of the score:
    start[y1] + sum_t emit[t, yt] + sum_t trans[y(t-1), yt] + end[yL]."""
    scores = {}
    for path in itertools.product(range(crf.num_tags), repeat=length):
        score = crf.start_transitions[path[0]] + crf.end_transitions[path[-1]]
        for t, tag in enumerate(path):
            score = score + emissions[t, tag]
            if t > 0:
                score = score + crf.transitions[path[t - 1], tag]
        scores[path] = score
    values = torch.stack(list(scores.values()))
    best = max(scores, key=lambda p: scores[p].item())
    return torch.logsumexp(values, 0), best, scores


@pytest.mark.parametrize("num_tags,steps,lengths", [
    (1, 3, [3, 1]),
    (2, 4, [4, 2, 1]),
    (3, 4, [2, 4, 1, 3]),   # unsorted lengths: decode sorts and un-sorts the batch
    (3, 4, [2, 3]),         # no sentence fills the padded length
    (3, 1, [1, 1]),
])
def test_log_partition_path_score_and_viterbi_match_enumeration(num_tags, steps, lengths):
    torch.manual_seed(num_tags * 10 + steps)
    crf = random_crf(num_tags)
    emissions = torch.randn(len(lengths), steps, num_tags, dtype=torch.float64)
    mask = prefix_mask(lengths, steps)
    tags = torch.randint(0, num_tags, (len(lengths), steps))
    log_z = crf.log_partition(emissions, mask)
    path_scores = crf.path_score(emissions, tags, mask)
    decoded = crf.decode(emissions, mask, pad_tag=-1)
    with torch.no_grad():
        for b, length in enumerate(lengths):
            expected_log_z, best, scores = brute_force(crf, emissions[b], length)
            assert log_z[b].item() == pytest.approx(expected_log_z.item(), abs=1e-9)
            gold = tuple(tags[b, :length].tolist())
            assert path_scores[b].item() == pytest.approx(scores[gold].item(), abs=1e-9)
            assert tuple(decoded[b, :length].tolist()) == best
            assert (decoded[b, length:] == -1).all()  # padding holds pad_tag
    # the likelihoods of all paths of a sentence sum to one
    assert torch.allclose(crf.log_likelihood(emissions, tags, mask), path_scores - log_z)


def test_exact_fallback_when_the_fast_recursion_underflows():
    """Tag 2 is reachable only from tag 1 (hard constraints as -5000 transitions) and tag 1
    starts 300 nats below the others, so in float32 exp(-300) underflows to 0 in the fast
    matmul recursion: log(0) would give -inf and NaN gradients. The exact logsumexp recursion
    must take over, matching enumeration in float64 and giving finite gradients."""
    torch.manual_seed(1)
    crf = random_crf(3, scale=0.5)
    with torch.no_grad():
        crf.transitions[0, 2] = crf.transitions[2, 2] = -5000.0
    emissions = torch.randn(2, 4, 3, dtype=torch.float64)
    emissions[:, 0, 1] = -300.0
    mask = prefix_mask([4, 3], 4)
    tags = torch.tensor([[0, 1, 0, 0], [2, 0, 1, 0]])  # the second one is impossible (-5000s)

    crf32 = random_crf(3).float()
    crf32.load_state_dict({k: v.float() for k, v in crf.state_dict().items()})
    emissions32 = emissions.float().requires_grad_(True)
    log_z = crf32.log_partition(emissions32, mask)
    loss = -crf32.log_likelihood(emissions32, tags, mask).sum()
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(emissions32.grad).all()
    assert all(torch.isfinite(p.grad).all() for p in crf32.parameters())
    for b, length in enumerate([4, 3]):
        expected, _, _ = brute_force(crf, emissions[b], length)
        assert log_z[b].item() == pytest.approx(expected.item(), rel=1e-6)


def test_matches_pytorch_crf_on_a_realistic_batch():
    torch.manual_seed(0)
    batch, steps, num_tags = 16, 12, 9
    reference = TorchCRF(num_tags, batch_first=True)  # its own U(-0.1, 0.1) initialisation
    ours = CRF(num_tags)
    ours.load_state_dict(reference.state_dict())  # same parameter names and shapes
    emissions = torch.randn(batch, steps, num_tags) * 3
    lengths = torch.randint(1, steps + 1, (batch,))
    lengths[0] = steps
    mask = prefix_mask(lengths, steps)
    tags = torch.randint(0, num_tags, (batch, steps))

    expected = reference(emissions, tags, mask, reduction="none")  # default would be the sum
    assert torch.allclose(ours.log_likelihood(emissions, tags, mask), expected, atol=1e-4)
    assert torch.allclose(ours(emissions, tags, mask), expected, atol=1e-4)
    decoded = ours.decode(emissions, mask)
    for b, path in enumerate(reference.decode(emissions, mask)):
        assert decoded[b, :len(path)].tolist() == path
        assert (decoded[b, len(path):] == 0).all()

    # gradients of the mean negative log-likelihood agree too
    emissions_a = emissions.clone().requires_grad_(True)
    emissions_b = emissions.clone().requires_grad_(True)
    (-reference(emissions_a, tags, mask, reduction="none").mean()).backward()
    (-ours.log_likelihood(emissions_b, tags, mask).mean()).backward()
    assert torch.allclose(emissions_a.grad, emissions_b.grad, atol=1e-5)
    for name, parameter in ours.named_parameters():
        assert torch.allclose(parameter.grad, dict(reference.named_parameters())[name].grad, atol=1e-5)


def test_gradcheck_in_double_precision():
    """Analytic gradients (through the max-shifted matmul recursion with detached shifts)
    against finite differences, w.r.t. the emissions and all three parameter tensors."""
    torch.manual_seed(2)
    crf = random_crf(3)
    mask = prefix_mask([4, 2], 4)
    tags = torch.randint(0, 3, (2, 4))
    names = ["start_transitions", "end_transitions", "transitions"]

    def log_likelihood(emissions, *parameters):
        return torch.func.functional_call(crf, dict(zip(names, parameters)), (emissions, tags, mask))

    inputs = [torch.randn(2, 4, 3, dtype=torch.float64, requires_grad=True)]
    inputs += [getattr(crf, name).detach().clone().requires_grad_(True) for name in names]
    assert torch.autograd.gradcheck(log_likelihood, tuple(inputs))


def test_zero_initialisation_and_gradient_of_uniform_crf():
    """With zero parameters and zero emissions every path of length L has probability K**-L,
    so the log-likelihood of any tag sequence is -L*log(K) (computed by hand)."""
    crf = CRF(5)
    assert all((p == 0).all() for p in crf.parameters())
    emissions = torch.zeros(2, 6, 5)
    mask = prefix_mask([6, 3], 6)
    ll = crf.log_likelihood(emissions, torch.randint(0, 5, (2, 6)), mask)
    expected = -torch.tensor([6.0, 3.0]) * torch.log(torch.tensor(5.0))
    assert torch.allclose(ll, expected, atol=1e-5)


def test_bad_masks_are_rejected():
    crf = CRF(3)
    emissions = torch.randn(2, 4, 3)
    with pytest.raises(ValueError, match="first time step"):
        crf.decode(emissions, prefix_mask([4, 0], 4))
    gapped = torch.tensor([[True, False, True, True], [True, True, True, True]])
    with pytest.raises(ValueError, match="prefix"):
        crf.log_partition(emissions, gapped)
    with pytest.raises(ValueError, match="emissions"):
        crf.decode(torch.randn(2, 4, 5))


@pytest.mark.parametrize("lengths", [[4, 2, 3], [1, 4]])
def test_partial_tags_sum_over_the_paths_that_agree_with_the_known_ones(lengths):
    # Tag -1 (UNLABELLED) leaves a token free: log sum over the agreeing paths of exp s(y), minus
    # log Z, by enumeration of every path.
    torch.manual_seed(sum(lengths))
    num_tags, steps = 3, max(lengths)
    crf = random_crf(num_tags)
    emissions = torch.randn(len(lengths), steps, num_tags, dtype=torch.float64)
    mask = prefix_mask(lengths, steps)
    tags = torch.randint(0, num_tags, (len(lengths), steps))
    tags[0, 1] = tags[0, 2] = UNLABELLED   # two unknown tokens side by side
    tags[-1, 0] = UNLABELLED               # the first token unknown
    log_likelihood = crf.log_likelihood(emissions, tags, mask)
    with torch.no_grad():
        for b, length in enumerate(lengths):
            log_z, _, scores = brute_force(crf, emissions[b], length)
            known = tags[b, :length].tolist()
            agreeing = [score for path, score in scores.items()
                        if all(k == UNLABELLED or k == tag for k, tag in zip(known, path))]
            expected = torch.logsumexp(torch.stack(agreeing), 0) - log_z
            assert log_likelihood[b].item() == pytest.approx(expected.item(), abs=1e-9)


def test_unlabelled_tokens_restricted_to_some_tags_sum_over_those_only():
    # Tags 0 and 2 allowed on unknown tokens: the agreeing paths put 0 or 2 there, never 1.
    torch.manual_seed(7)
    crf = random_crf(3)
    emissions = torch.randn(2, 4, 3, dtype=torch.float64)
    mask = prefix_mask([4, 3], 4)
    tags = torch.tensor([[UNLABELLED, 1, UNLABELLED, 0], [2, UNLABELLED, 1, 0]])
    allowed = torch.tensor([True, False, True])
    log_likelihood = crf.log_likelihood(emissions, tags, mask, unlabelled_tags=allowed)
    with torch.no_grad():
        for b, length in enumerate([4, 3]):
            log_z, _, scores = brute_force(crf, emissions[b], length)
            known = tags[b, :length].tolist()
            agreeing = [score for path, score in scores.items()
                        if all(tag == k if k != UNLABELLED else tag in (0, 2) for k, tag in zip(known, path))]
            expected = torch.logsumexp(torch.stack(agreeing), 0) - log_z
            assert log_likelihood[b].item() == pytest.approx(expected.item(), abs=1e-9)


def test_a_sentence_with_every_tag_unknown_has_likelihood_one_and_no_gradient():
    torch.manual_seed(0)
    crf = random_crf(4)
    emissions = torch.randn(2, 5, 4, dtype=torch.float64, requires_grad=True)
    mask = prefix_mask([5, 3], 5)
    tags = torch.full((2, 5), UNLABELLED)
    log_likelihood = crf.log_likelihood(emissions, tags, mask)
    assert torch.allclose(log_likelihood, torch.zeros(2, dtype=torch.float64), atol=1e-9)
    log_likelihood.sum().backward()
    assert emissions.grad.abs().max().item() < 1e-9
    assert all(p.grad.abs().max().item() < 1e-9 for p in crf.parameters())
