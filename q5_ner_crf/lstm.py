"""One-layer LSTMs written from scratch, with optional layer normalisation (report 1, section
2.1.4), `nn.LSTM` (cuDNN on GPUs) behind the same interface, and the character-level word encoder
(section 2.1.3).

    lstm = make_bilstm(input_size, hidden_size, layer_norm="hidden")   # BiLSTM or TorchBiLSTM
    outputs, (h_n, c_n) = lstm(x, mask)       # x (B, T, I), mask (B, T) bool -> (B, T, 2H)

`layer_norm` is one of LAYER_NORMS. "gates" follows Ba, Kiros and Hinton (2016, section 3.1,
eqs. 20-22): input and recurrent pre-activations are normalised separately, each with a gain and no
shift (the LSTM's bias follows), and the cell state is normalised (gain and shift) before the
output tanh:

    gates = LN_x(W_ih x_t) + LN_h(W_hh h_{t-1}) + b_ih + b_hh      # 4H: i, f, g, o
    c_t   = sigmoid(f) * c_{t-1} + sigmoid(i) * tanh(g)
    h_t   = sigmoid(o) * tanh(LN_c(c_t))

"hidden" is report 1's variant: a plain LSTM step whose new hidden state is normalised (gain and
shift) inside the cell, so the normalised h_t is both the output and the next step's recurrent input:

    gates = W_ih x_t + W_hh h_{t-1} + b_ih + b_hh
    h_t   = LN_o(sigmoid(o) * tanh(c_t))

With "none" the cell is exactly `nn.LSTMCell` (gate order, parameter names and initialisation).
Padding (a (B, T) prefix mask) carries the state unchanged and outputs zero, as with
`pack_padded_sequence`; the backward direction starts at each sentence's last real token.
The input projection is one matmul over all steps; only the recurrence loops. Without layer norm
`make_bilstm` returns `TorchBiLSTM`, the same model and much faster (`--lstm scratch` forces ours).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

State = tuple[torch.Tensor, torch.Tensor]
# none: nn.LSTMCell; gates: Ba et al. (2016); hidden: report 1's LayerNorm on h_t
LAYER_NORMS = ("none", "gates", "hidden")


def layer_norm_kind(layer_norm: str | bool | None) -> str:
    """One of LAYER_NORMS; True (how runs before the "hidden" variant recorded --layer-norm) is
    "gates", False and None are "none"."""
    if layer_norm is True:
        return "gates"
    if layer_norm is False or layer_norm is None:
        return "none"
    if layer_norm not in LAYER_NORMS:
        raise ValueError(f"unknown layer norm {layer_norm!r}: expected one of {', '.join(LAYER_NORMS)}")
    return layer_norm


class LayerNormLSTMCell(nn.Module):
    """One LSTM step, layer-normalised as `layer_norm` says (see the module docstring)."""

    def __init__(self, input_size: int, hidden_size: int, layer_norm: str = "gates"):
        super().__init__()
        layer_norm = layer_norm_kind(layer_norm)
        self.input_size, self.hidden_size, self.layer_norm = input_size, hidden_size, layer_norm
        self.weight_ih = nn.Parameter(torch.empty(4 * hidden_size, input_size))
        self.weight_hh = nn.Parameter(torch.empty(4 * hidden_size, hidden_size))
        self.bias_ih = nn.Parameter(torch.empty(4 * hidden_size))
        self.bias_hh = nn.Parameter(torch.empty(4 * hidden_size))
        self.ln_ih = self.ln_hh = self.ln_cell = self.ln_out = nn.Identity()
        if layer_norm == "gates":
            # No shift in the two gate LNs: b_ih + b_hh already shift the gates.
            self.ln_ih = nn.LayerNorm(4 * hidden_size, bias=False)
            self.ln_hh = nn.LayerNorm(4 * hidden_size, bias=False)
            self.ln_cell = nn.LayerNorm(hidden_size)
        elif layer_norm == "hidden":
            self.ln_out = nn.LayerNorm(hidden_size)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """nn.LSTM's initialisation: every weight and bias from U(-1/sqrt(H), 1/sqrt(H));
        LN gains start at one and shifts at zero."""
        bound = 1.0 / math.sqrt(self.hidden_size)
        for parameter in (self.weight_ih, self.weight_hh, self.bias_ih, self.bias_hh):
            nn.init.uniform_(parameter, -bound, bound)
        for module in (self.ln_ih, self.ln_hh, self.ln_cell, self.ln_out):
            if isinstance(module, nn.LayerNorm):
                module.reset_parameters()

    def input_projection(self, x: torch.Tensor) -> torch.Tensor:
        """LN_x(W_ih x) + b_ih + b_hh for any number of leading dimensions: the part of the
        gates that does not depend on the state, computed for all time steps at once."""
        return self.ln_ih(x @ self.weight_ih.t()) + (self.bias_ih + self.bias_hh)

    def step(self, projected: torch.Tensor, state: State) -> State:
        """One time step from the precomputed input projection (B, 4H) and the state."""
        hidden, cell = state
        gates = projected + self.ln_hh(hidden @ self.weight_hh.t())
        input_gate, forget_gate, cell_gate, output_gate = gates.chunk(4, dim=1)
        cell = torch.sigmoid(forget_gate) * cell + torch.sigmoid(input_gate) * torch.tanh(cell_gate)
        hidden = self.ln_out(torch.sigmoid(output_gate) * torch.tanh(self.ln_cell(cell)))
        return hidden, cell

    def forward(self, x: torch.Tensor, state: State | None = None) -> State:
        """nn.LSTMCell's interface: x (B, I), state (h, c) each (B, H) -> (h', c')."""
        if state is None:
            zeros = x.new_zeros(x.size(0), self.hidden_size)
            state = (zeros, zeros)
        return self.step(self.input_projection(x), state)


def reverse_within_lengths(x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """Reverse the first lengths[b] steps of every sequence in x (B, T, ...); padding stays
    where it is. Applying it twice gives x back."""
    steps = x.size(1)
    positions = torch.arange(steps, device=x.device).unsqueeze(0)            # (1, T)
    lengths = lengths.to(x.device).unsqueeze(1)                              # (B, 1)
    index = torch.where(positions < lengths, lengths - 1 - positions, positions)
    index = index.view(*index.shape, *([1] * (x.dim() - 2))).expand_as(x)
    return x.gather(1, index)


class LSTMLayer(nn.Module):
    """One direction of an LSTM layer over a padded batch, from scratch."""

    def __init__(self, input_size: int, hidden_size: int, layer_norm: str = "gates", reverse: bool = False):
        super().__init__()
        self.cell = LayerNormLSTMCell(input_size, hidden_size, layer_norm)
        self.reverse = reverse

    def forward(self, x: torch.Tensor, mask: torch.Tensor, state: State | None = None):
        """x (B, T, I), mask (B, T) prefix mask -> outputs (B, T, H) (zero at padding) and the
        final state (h, c) at each sequence's last token (its first token when reversed)."""
        batch, steps, _ = x.shape
        lengths = mask.sum(1)
        if self.reverse:
            x = reverse_within_lengths(x, lengths)
        if state is None:
            zeros = x.new_zeros(batch, self.cell.hidden_size)
            state = (zeros, zeros)
        # unbind rather than [:, t]: one stack in the backward instead of T zero-filled grads.
        projected = self.cell.input_projection(x).unbind(1)
        step_on = mask.unsqueeze(2).unbind(1)
        hidden, cell = state
        outputs = []
        for t in range(steps):
            new_hidden, new_cell = self.cell.step(projected[t], (hidden, cell))
            hidden = torch.where(step_on[t], new_hidden, hidden)
            cell = torch.where(step_on[t], new_cell, cell)
            outputs.append(new_hidden * step_on[t])
        outputs = torch.stack(outputs, dim=1)
        if self.reverse:
            outputs = reverse_within_lengths(outputs, lengths)
        return outputs, (hidden, cell)


class BiLSTM(nn.Module):
    """One bidirectional (or, with bidirectional=False, forward-only) LSTM layer from scratch,
    optionally layer-normalised: outputs (B, T, 2H) and (h_n, c_n), each (2, B, H) (forward,
    backward) like a one-layer nn.LSTM's (H and 1 without the backward direction)."""

    def __init__(self, input_size: int, hidden_size: int, layer_norm: str = "gates",
                 bidirectional: bool = True):
        super().__init__()
        self.directions = nn.ModuleList([LSTMLayer(input_size, hidden_size, layer_norm, reverse=reverse)
                                         for reverse in ((False, True) if bidirectional else (False,))])

    def forward(self, x: torch.Tensor, mask: torch.Tensor):
        outputs, hiddens, cells = [], [], []
        for direction in self.directions:
            output, (hidden, cell) = direction(x, mask)
            outputs.append(output)
            hiddens.append(hidden)
            cells.append(cell)
        return torch.cat(outputs, dim=2), (torch.stack(hiddens), torch.stack(cells))


class TorchBiLSTM(nn.Module):
    """A one-layer `nn.LSTM` (cuDNN on GPUs) behind BiLSTM's interface: packs the batch by the
    mask's lengths, so padding is skipped in both directions exactly as in BiLSTM."""

    def __init__(self, input_size: int, hidden_size: int, bidirectional: bool = True):
        super().__init__()
        self.lstm = nn.LSTM(input_size, hidden_size, batch_first=True, bidirectional=bidirectional)

    def forward(self, x: torch.Tensor, mask: torch.Tensor):
        lengths = mask.sum(1).cpu()  # pack_padded_sequence wants the lengths on the CPU
        packed = pack_padded_sequence(x, lengths, batch_first=True, enforce_sorted=False)
        outputs, (hidden, cell) = self.lstm(packed)
        outputs, _ = pad_packed_sequence(outputs, batch_first=True, total_length=x.size(1))
        return outputs, (hidden, cell)


def make_bilstm(input_size: int, hidden_size: int, layer_norm: str, implementation: str = "auto",
                bidirectional: bool = True) -> nn.Module:
    """The BiLSTM for a tagger. `implementation`: "scratch" (BiLSTM), "torch" (nn.LSTM, only
    without layer norm) or "auto" (torch unless layer norm is asked for)."""
    layer_norm = layer_norm_kind(layer_norm)
    if implementation not in ("auto", "scratch", "torch"):
        raise ValueError(f"unknown LSTM implementation {implementation!r}")
    if implementation == "torch" and layer_norm != "none":
        raise ValueError("nn.LSTM has no layer normalisation; use the scratch implementation")
    if implementation == "scratch" or layer_norm != "none":
        return BiLSTM(input_size, hidden_size, layer_norm, bidirectional)
    return TorchBiLSTM(input_size, hidden_size, bidirectional)


class CharBiLSTMEncoder(nn.Module):
    """Character-level word representation (Lample et al., 2016): embed each character, run a
    BiLSTM over the word, and concatenate the final forward and backward hidden states.

    Input: char ids (N, W) of N words padded to W characters (0 = padding) and their mask;
    output (N, 2 * hidden_size). Every word must have at least one character."""

    def __init__(self, num_chars: int, char_dim: int = 25, hidden_size: int = 25,
                 layer_norm: str = "none", implementation: str = "auto"):
        super().__init__()
        self.embedding = nn.Embedding(num_chars, char_dim, padding_idx=0)
        self.lstm = make_bilstm(char_dim, hidden_size, layer_norm, implementation=implementation)
        self.output_size = 2 * hidden_size

    def forward(self, char_ids: torch.Tensor, char_mask: torch.Tensor) -> torch.Tensor:
        _, (hidden, _) = self.lstm(self.embedding(char_ids), char_mask)
        return torch.cat([hidden[0], hidden[1]], dim=1)  # forward, backward
