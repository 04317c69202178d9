"""The from-scratch (LayerNorm-)LSTM against torch's nn.LSTMCell / nn.LSTM, padding included,
and the two layer-normalised cells (Ba et al. 2016; report 1's LN on h_t) against their equations
evaluated in numpy."""

import numpy as np
import pytest
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from q5_ner_crf.lstm import (BiLSTM, CharBiLSTMEncoder, LayerNormLSTMCell, TorchBiLSTM,
                             layer_norm_kind, make_bilstm, reverse_within_lengths)


def prefix_mask(lengths, steps):
    return torch.arange(steps)[None, :] < torch.as_tensor(lengths)[:, None]


def copy_weights(reference: nn.LSTM, ours: BiLSTM) -> BiLSTM:
    """A one-layer nn.LSTM's weights into BiLSTM (forward, then the `_reverse` direction)."""
    with torch.no_grad():
        for direction, suffix in zip(ours.directions, ("", "_reverse")):
            for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                getattr(direction.cell, name).copy_(getattr(reference, f"{name}_l0{suffix}"))
    return ours


def test_cell_without_layer_norm_equals_lstm_cell():
    torch.manual_seed(0)
    reference = nn.LSTMCell(5, 4)
    cell = LayerNormLSTMCell(5, 4, layer_norm="none")
    cell.load_state_dict(reference.state_dict())  # same names and shapes, nothing else
    x, h, c = torch.randn(3, 5), torch.randn(3, 4), torch.randn(3, 4)
    for got, expected in zip(cell(x, (h, c)), reference(x, (h, c))):
        assert torch.allclose(got, expected, atol=1e-6)
    for got, expected in zip(cell(x), reference(x)):  # zero initial state
        assert torch.allclose(got, expected, atol=1e-6)


def _layer_norm(v, gain, shift=0.0, eps=1e-5):
    return gain * (v - v.mean(-1, keepdims=True)) / np.sqrt(v.var(-1, keepdims=True) + eps) + shift


def test_layer_norm_cell_follows_ba_et_al_equations():
    """gates = LN(W_ih x) + LN(W_hh h) + b; c' = s(f) c + s(i) tanh(g); h' = s(o) tanh(LN(c')),
    evaluated in float64 numpy with non-trivial LN gains and shift."""
    torch.manual_seed(1)
    cell = LayerNormLSTMCell(3, 2, layer_norm="gates").double()
    with torch.no_grad():
        cell.ln_ih.weight.uniform_(0.5, 1.5)
        cell.ln_hh.weight.uniform_(0.5, 1.5)
        cell.ln_cell.weight.uniform_(0.5, 1.5)
        cell.ln_cell.bias.uniform_(-0.5, 0.5)
    x, h, c = (torch.randn(4, 3, dtype=torch.float64), torch.randn(4, 2, dtype=torch.float64),
               torch.randn(4, 2, dtype=torch.float64))
    got_h, got_c = cell(x, (h, c))

    p = {name: value.detach().numpy() for name, value in cell.named_parameters()}
    xn, hn, cn = x.numpy(), h.numpy(), c.numpy()
    gates = (_layer_norm(xn @ p["weight_ih"].T, p["ln_ih.weight"])
             + _layer_norm(hn @ p["weight_hh"].T, p["ln_hh.weight"]) + p["bias_ih"] + p["bias_hh"])
    i, f, g, o = np.split(gates, 4, axis=1)
    sigmoid = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    expected_c = sigmoid(f) * cn + sigmoid(i) * np.tanh(g)
    expected_h = sigmoid(o) * np.tanh(_layer_norm(expected_c, p["ln_cell.weight"], p["ln_cell.bias"]))
    assert np.allclose(got_c.detach().numpy(), expected_c, atol=1e-10)
    assert np.allclose(got_h.detach().numpy(), expected_h, atol=1e-10)


def _sigmoid(v):
    return 1 / (1 + np.exp(-v))


def test_hidden_layer_norm_cell_follows_its_equations_over_two_steps():
    """Report 1's variant: plain LSTM gates, h' = LN(s(o) tanh(c')) with gain and shift, and the
    normalised h' is what the next step sees (two steps in float64 numpy)."""
    torch.manual_seed(4)
    cell = LayerNormLSTMCell(3, 4, layer_norm="hidden").double()
    assert sorted(name for name, _ in cell.named_parameters()) == [
        "bias_hh", "bias_ih", "ln_out.bias", "ln_out.weight", "weight_hh", "weight_ih"]
    with torch.no_grad():
        cell.ln_out.weight.uniform_(0.5, 1.5)
        cell.ln_out.bias.uniform_(-0.5, 0.5)
    x1, x2 = torch.randn(2, 5, 3, dtype=torch.float64)
    h, c = cell(x2, cell(x1))

    p = {name: value.detach().numpy() for name, value in cell.named_parameters()}
    hn, cn = np.zeros((5, 4)), np.zeros((5, 4))
    for x in (x1.numpy(), x2.numpy()):
        gates = x @ p["weight_ih"].T + hn @ p["weight_hh"].T + p["bias_ih"] + p["bias_hh"]
        i, f, g, o = np.split(gates, 4, axis=1)
        cn = _sigmoid(f) * cn + _sigmoid(i) * np.tanh(g)
        hn = _layer_norm(_sigmoid(o) * np.tanh(cn), p["ln_out.weight"], p["ln_out.bias"])
    assert np.allclose(c.detach().numpy(), cn, atol=1e-10)
    assert np.allclose(h.detach().numpy(), hn, atol=1e-10)
    # Normalised per row: with unit gain and zero shift each h' has mean 0 and variance 1.
    unit = LayerNormLSTMCell(3, 4, layer_norm="hidden")
    out = unit(torch.randn(6, 3))[0]
    assert torch.allclose(out.mean(1), torch.zeros(6), atol=1e-5)
    assert torch.allclose(out.var(1, unbiased=False), torch.ones(6), atol=1e-2)  # eps 1e-5 in LN


def test_layer_norm_makes_the_cell_invariant_to_weight_scale():
    """The point of LN (Ba et al., section 5): rescaling W_ih or W_hh leaves the cell's output
    unchanged with LN (up to its eps), and changes it without."""
    torch.manual_seed(2)
    x, h, c = torch.randn(3, 5), torch.randn(3, 4), torch.randn(3, 4)
    for layer_norm in (True, False):
        cell = LayerNormLSTMCell(5, 4, layer_norm="gates" if layer_norm else "none")
        before = cell(x, (h, c))[0]
        with torch.no_grad():
            cell.weight_ih.mul_(7.0)
            cell.weight_hh.mul_(3.0)
        after = cell(x, (h, c))[0]
        assert torch.allclose(before, after, atol=1e-4) == layer_norm


def test_reverse_within_lengths_by_hand():
    x = torch.tensor([[1, 2, 3, 0], [4, 5, 0, 0], [6, 7, 8, 9]])
    expected = torch.tensor([[3, 2, 1, 0], [5, 4, 0, 0], [9, 8, 7, 6]])
    assert torch.equal(reverse_within_lengths(x, torch.tensor([3, 2, 4])), expected)
    assert torch.equal(reverse_within_lengths(expected, torch.tensor([3, 2, 4])), x)


def test_bilstm_without_layer_norm_equals_packed_nn_lstm():
    """Outputs (zero at padding), final states of both directions and gradients, on a batch
    with mixed lengths: the backward direction must start at each sentence's own end."""
    torch.manual_seed(3)
    reference = nn.LSTM(6, 5, batch_first=True, bidirectional=True)
    ours = copy_weights(reference, BiLSTM(6, 5, layer_norm="none"))
    lengths = torch.tensor([7, 3, 5, 1])
    x = torch.randn(4, 7, 6)
    mask = prefix_mask(lengths, 7)

    x_ref, x_ours = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
    packed = pack_padded_sequence(x_ref, lengths, batch_first=True, enforce_sorted=False)
    out_packed, (h_ref, c_ref) = reference(packed)
    out_ref, _ = pad_packed_sequence(out_packed, batch_first=True, total_length=7)
    out_ours, (h_ours, c_ours) = ours(x_ours, mask)

    assert torch.allclose(out_ours, out_ref, atol=1e-6)
    assert torch.allclose(h_ours, h_ref, atol=1e-6)
    assert torch.allclose(c_ours, c_ref, atol=1e-6)
    (out_ref.square().sum() + h_ref.sum()).backward()
    (out_ours.square().sum() + h_ours.sum()).backward()
    assert torch.allclose(x_ours.grad, x_ref.grad, atol=1e-5)
    backward_cell = ours.directions[1].cell
    assert torch.allclose(backward_cell.weight_hh.grad, reference.weight_hh_l0_reverse.grad, atol=1e-5)


def test_torch_bilstm_matches_scratch_and_padding_does_not_leak():
    torch.manual_seed(4)
    fast = TorchBiLSTM(3, 4)
    scratch = copy_weights(fast.lstm, BiLSTM(3, 4, layer_norm="none"))
    x, mask = torch.randn(2, 6, 3), prefix_mask([6, 2], 6)
    out_fast, (h_fast, _) = fast(x, mask)
    out_scratch, (h_scratch, _) = scratch(x, mask)
    assert torch.allclose(out_fast, out_scratch, atol=1e-6) and torch.allclose(h_fast, h_scratch, atol=1e-6)
    # changing the padding must not change anything, with or without layer norm
    for model in (fast, scratch, BiLSTM(3, 4, layer_norm="gates"), BiLSTM(3, 4, layer_norm="hidden")):
        noisy = x.clone()
        noisy[1, 2:] = 100.0
        out_a, (h_a, _) = model(x, mask)
        out_b, (h_b, _) = model(noisy, mask)
        assert torch.allclose(out_a, out_b) and torch.allclose(h_a, h_b)
        assert (out_b[1, 2:] == 0).all()


def test_make_bilstm_registry():
    assert isinstance(make_bilstm(3, 4, layer_norm="none"), TorchBiLSTM)
    assert isinstance(make_bilstm(3, 4, layer_norm="none", implementation="scratch"), BiLSTM)
    with_ln = make_bilstm(3, 4, layer_norm="hidden")
    assert isinstance(with_ln, BiLSTM) and any(isinstance(m, nn.LayerNorm) for m in with_ln.modules())
    with pytest.raises(ValueError):
        make_bilstm(3, 4, layer_norm="gates", implementation="torch")
    with pytest.raises(ValueError, match="unknown layer norm"):
        make_bilstm(3, 4, layer_norm="cell")
    # Runs recorded before the "hidden" variant stored --layer-norm as a bool: True was Ba et al.'s.
    assert [layer_norm_kind(v) for v in (True, False, None, "hidden")] == ["gates", "none", "none", "hidden"]


@pytest.mark.parametrize("implementation", ["torch", "scratch"])
def test_char_encoder_equals_running_each_word_alone(implementation):
    """Padded batch of words vs nn.LSTM run on every word separately, unpadded."""
    torch.manual_seed(5)
    encoder = CharBiLSTMEncoder(num_chars=10, char_dim=4, hidden_size=3, implementation=implementation)
    words = [[3, 4, 5], [7], [2, 9, 9, 1, 6]]
    char_ids = torch.zeros(3, 5, dtype=torch.long)
    for row, word in enumerate(words):
        char_ids[row, :len(word)] = torch.tensor(word)
    encoded = encoder(char_ids, char_ids != 0)
    assert encoded.shape == (3, 6)

    reference = nn.LSTM(4, 3, batch_first=True, bidirectional=True)
    if implementation == "torch":
        reference.load_state_dict(encoder.lstm.lstm.state_dict())
    else:
        for direction, suffix in zip(encoder.lstm.directions, ("", "_reverse")):
            for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
                getattr(reference, f"{name}_l0{suffix}").data.copy_(getattr(direction.cell, name))
    for row, word in enumerate(words):
        _, (hidden, _) = reference(encoder.embedding(torch.tensor([word])))
        assert torch.allclose(encoded[row], torch.cat([hidden[0, 0], hidden[1, 0]]), atol=1e-6)


def test_unidirectional_lstm_equals_nn_lstm():
    torch.manual_seed(6)
    reference = nn.LSTM(3, 4, batch_first=True)
    ours = copy_weights(reference, BiLSTM(3, 4, layer_norm="none", bidirectional=False))
    fast = make_bilstm(3, 4, layer_norm="none", bidirectional=False)
    fast.lstm.load_state_dict(reference.state_dict())
    lengths = torch.tensor([5, 2])
    x, mask = torch.randn(2, 5, 3), prefix_mask(lengths, 5)
    packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
    out_packed, (h_ref, _) = reference(packed)
    out_ref, _ = pad_packed_sequence(out_packed, batch_first=True, total_length=5)
    for model in (ours, fast):
        out, (hidden, _) = model(x, mask)
        assert out.shape == (2, 5, 4)
        assert torch.allclose(out, out_ref, atol=1e-6) and torch.allclose(hidden, h_ref, atol=1e-6)
