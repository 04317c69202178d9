"""One BiLSTM tagger for every row of the report, chosen by flags:

    embeddings   random (trained from scratch) or glove (initialised from GloVe, fine-tuned)
    char         + character BiLSTM word features (Lample et al., 2016), concatenated to the
                   word embedding
    layer_norm   none, gates (LayerNorm-LSTM cells of Ba et al., 2016) or hidden (report 1's LayerNorm
                   on h_t inside the cell), in the word and character BiLSTMs
    crf          a linear-chain CRF on top (loss: negative log-likelihood; prediction: Viterbi)
                   instead of a per-token softmax (cross-entropy; prediction: arg-max)
    casing       + an embedding of each token's casing class (data.CASING_CLASSES; Reimers &
                   Gurevych 2017), concatenated to the word embedding
    locked_dropout  variational dropout: one dropout mask per sentence, the same at every time
                   step (Gal & Ghahramani 2016), on the BiLSTM's input and output instead of a
                   mask per token. Departure: not on the recurrent units, which nn.LSTM (cuDNN)
                   cannot do and our step-by-step LSTM does several times slower

    word ids -> embedding (+ char BiLSTM, + casing) -> dropout -> BiLSTM -> dropout -> linear
                                                                     -> emissions -> softmax or CRF

Both heads' losses are per sentence, averaged over the batch: the CRF's negative log-likelihood of
each sentence, the softmax's cross-entropy summed over each sentence's real tokens (padding
excluded). This is the scale of pytorch-crf and of the usual BiLSTM-CRF code. An earlier version
divided by the number of tokens instead, which made every SGD step about 22 times smaller (GMB's
mean sentence length) and left the report's lr 0.01 learning nothing in the first epoch.

    python q5_ner_crf/model.py     # prints the parameter counts of the variants
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from common.metrics import count_parameters
from q5_ner_crf.crf import CRF, UNLABELLED
from q5_ner_crf.data import CASING_CLASSES, Batch
from q5_ner_crf.lstm import CharBiLSTMEncoder, layer_norm_kind, make_bilstm


class LockedDropout(nn.Module):
    """Dropout with one mask per sentence shared by all its time steps: (B, T, F) inputs, mask
    (B, 1, F), kept units scaled by 1 / (1 - p) as in nn.Dropout."""

    def __init__(self, p: float):
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0:
            return x
        mask = torch.empty(x.shape[0], 1, x.shape[2], device=x.device, dtype=x.dtype).bernoulli_(1 - self.p)
        return x * mask / (1 - self.p)


# Size of the casing-class embedding (Reimers & Gurevych 2017 use a one-hot vector of their 8
# classes; a trained embedding of about that size costs nothing).
CASING_DIM = 8


class Tagger(nn.Module):
    def __init__(self, num_words: int, num_tags: int, num_chars: int = 0, embed_dim: int = 100,
                 hidden_size: int = 100, use_char: bool = False, char_dim: int = 25, char_hidden: int = 25,
                 layer_norm: str = "none", use_crf: bool = False, dropout: float = 0.5,
                 bidirectional: bool = True, lstm_implementation: str = "auto",
                 pretrained: torch.Tensor | None = None, use_casing: bool = False,
                 locked_dropout: bool = False):
        super().__init__()
        if pretrained is not None:
            num_words, embed_dim = pretrained.shape
        self.embedding = nn.Embedding(num_words, embed_dim, padding_idx=0)
        if pretrained is not None:
            with torch.no_grad():
                self.embedding.weight.copy_(pretrained)  # fine-tuned, as in the report
        self.char_encoder = None
        features = embed_dim
        if use_char:
            if num_chars < 3:
                raise ValueError("the character encoder needs a character vocabulary")
            self.char_encoder = CharBiLSTMEncoder(num_chars, char_dim, char_hidden, layer_norm,
                                                  implementation=lstm_implementation)
            features += self.char_encoder.output_size
        self.casing = nn.Embedding(len(CASING_CLASSES), CASING_DIM, padding_idx=0) if use_casing else None
        if use_casing:
            features += CASING_DIM
        self.dropout = LockedDropout(dropout) if locked_dropout else nn.Dropout(dropout)
        self.lstm = make_bilstm(features, hidden_size, layer_norm, implementation=lstm_implementation,
                                bidirectional=bidirectional)
        self.output = nn.Linear(hidden_size * (2 if bidirectional else 1), num_tags)
        self.crf = CRF(num_tags) if use_crf else None
        # The tags an unlabelled training token (tag UNLABELLED) may take, bool (K,); None: any.
        # Set by train.py --unlabelled-types; not part of the state dict (prediction ignores it).
        self.unlabelled_tags: torch.Tensor | None = None

    def emissions(self, batch: Batch) -> torch.Tensor:
        """(B, T, K) tag scores per token."""
        features = self.embedding(batch.words)
        if self.char_encoder is not None:
            per_token = self.char_encoder(batch.chars, batch.char_mask)[batch.char_index]
            features = torch.cat([features, per_token], dim=2)
        if self.casing is not None:
            features = torch.cat([features, self.casing(batch.casing)], dim=2)
        hidden, _ = self.lstm(self.dropout(features), batch.mask)
        return self.output(self.dropout(hidden))

    def loss_from_emissions(self, emissions: torch.Tensor, batch: Batch) -> torch.Tensor:
        sentences = emissions.shape[0]
        if self.crf is not None:
            return -self.crf.log_likelihood(emissions, batch.tags, batch.mask,
                                            self.unlabelled_tags).sum() / sentences
        # An unlabelled token (tag UNLABELLED) may take any tag: its loss, -log of the probability
        # of the tags it may take, is 0; with unlabelled_tags, -log of their summed probability.
        losses = F.cross_entropy(emissions.transpose(1, 2), batch.tags, reduction="none",
                                 ignore_index=UNLABELLED)
        unknown = batch.tags == UNLABELLED
        if self.unlabelled_tags is not None and bool(unknown.any()):
            allowed = emissions.float().log_softmax(2).masked_fill(~self.unlabelled_tags.bool(),
                                                                   float("-inf"))
            losses = torch.where(unknown, -allowed.logsumexp(2), losses)
        return (losses * batch.mask).sum() / sentences

    def loss(self, batch: Batch) -> torch.Tensor:
        """Mean loss per sentence (summed over its real tokens)."""
        return self.loss_from_emissions(self.emissions(batch), batch)

    @torch.no_grad()
    def predict_from_emissions(self, emissions: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """(B, T) tag ids; positions outside the mask hold 0."""
        if self.crf is not None:
            return self.crf.decode(emissions, mask)
        return emissions.argmax(dim=2).masked_fill(~mask, 0)

    @torch.no_grad()
    def predict(self, batch: Batch) -> torch.Tensor:
        return self.predict_from_emissions(self.emissions(batch), batch.mask)


def model_variant(embeddings: str, char: bool, layer_norm: str | bool | None, crf: bool,
                  unidirectional: bool) -> str:
    """random, glove-char-ln-gates-crf, ...: the name shared by run names and the report's rows
    (a layer_norm of True, as older runs recorded it, is "gates")."""
    layer_norm = layer_norm_kind(layer_norm)
    flags = [flag for flag, on in (("char", char), (f"ln-{layer_norm}", layer_norm != "none"), ("crf", crf),
                                   ("uni", unidirectional)) if on]
    return "-".join([embeddings] + flags)


if __name__ == "__main__":
    variants = {"random": {}, "char": {"use_char": True},
                "char-ln-hidden": {"use_char": True, "layer_norm": "hidden"}, "crf": {"use_crf": True},
                "char-ln-gates-crf": {"use_char": True, "layer_norm": "gates", "use_crf": True}}
    for name, flags in variants.items():
        model = Tagger(num_words=30_000, num_tags=17, num_chars=100, **flags)
        print(f"{name:18} {count_parameters(model):>12,} parameters (30k words, 17 tags)")
