"""A linear-chain conditional random field written from scratch (report 1, section 2.2).

    crf = CRF(num_tags)
    log_likelihood = crf.log_likelihood(emissions, tags, mask)   # (B,)   emissions (B, T, K)
    log_likelihood = crf.log_likelihood(emissions, tags_with_unlabelled, mask)  # tag -1: any tag
    best_paths = crf.decode(emissions, mask)                      # (B, T) LongTensor

log p(y | x) = s(y) - log Z with s(y) = start[y_1] + sum_t emit[t, y_t] + sum_{t>1} trans[y_{t-1}, y_t]
+ end[y_L]. Parameters carry pytorch-crf's names, so state dicts load both ways, but start at zero
as in the report. `mask` (B, T) is True on the real tokens and, as in pytorch-crf, a prefix mask
with mask[:, 0] all True. A tag of -1 (UNLABELLED) marks a token whose tag is unknown (partial
annotation, Tsuboi et al. 2008): the likelihood then sums over every path that agrees with the known
tags, log sum_{y ~ tags} exp s(y) - log Z, so the unknown tokens add no label of their own; with no
-1 it is the usual log p(tags | x). Where the speed comes from (batched forward algorithm with an exact
fallback on underflow, batched Viterbi back-tracking): q5_ner_crf/README.md, "The CRF benchmark".
"""

from __future__ import annotations

import torch
from torch import nn


UNLABELLED = -1          # a tag id: this token's tag is unknown (partial annotation)
_OFF_PATH = -10_000.0    # added to a tag's emission to take it off the paths (exp() of it is 0)


class CRF(nn.Module):
    """Linear-chain CRF over `num_tags` tags, batch first."""

    def __init__(self, num_tags: int):
        super().__init__()
        if num_tags < 1:
            raise ValueError(f"num_tags must be positive, got {num_tags}")
        self.num_tags = num_tags
        self.start_transitions = nn.Parameter(torch.zeros(num_tags))
        self.end_transitions = nn.Parameter(torch.zeros(num_tags))
        self.transitions = nn.Parameter(torch.zeros(num_tags, num_tags))  # [from, to]

    def extra_repr(self) -> str:
        return f"num_tags={self.num_tags}"

    # ---- checks ---------------------------------------------------------------------------
    def _prepare(self, emissions: torch.Tensor, tags: torch.Tensor | None,
                 mask: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        if emissions.dim() != 3 or emissions.size(2) != self.num_tags:
            raise ValueError(f"emissions must be (batch, time, {self.num_tags}), "
                             f"got {tuple(emissions.shape)}")
        if tags is not None and tags.shape != emissions.shape[:2]:
            raise ValueError(f"tags must be {tuple(emissions.shape[:2])}, got {tuple(tags.shape)}")
        if mask is None:
            mask = torch.ones(emissions.shape[:2], dtype=torch.bool, device=emissions.device)
        if mask.shape != emissions.shape[:2]:
            raise ValueError(f"mask must be {tuple(emissions.shape[:2])}, got {tuple(mask.shape)}")
        mask = mask.bool()
        # Two small reductions (a sync on a GPU, like pytorch-crf's own check): an empty or
        # gapped sentence would give silently wrong numbers otherwise.
        if not bool(mask[:, 0].all()):
            raise ValueError("mask of the first time step must be all on (no empty sentences)")
        if mask.size(1) > 1 and bool((mask[:, 1:] & ~mask[:, :-1]).any()):
            raise ValueError("mask must be a prefix mask: padding may only follow the tokens")
        # bf16/fp16 emissions (autocast) would lose the forward algorithm's precision.
        if emissions.dtype in (torch.float16, torch.bfloat16):
            emissions = emissions.float()
        return emissions, mask

    # ---- likelihood -----------------------------------------------------------------------
    def forward(self, emissions: torch.Tensor, tags: torch.Tensor,
                mask: torch.Tensor | None = None) -> torch.Tensor:
        """Same as `log_likelihood` (pytorch-crf's forward with reduction="none")."""
        return self.log_likelihood(emissions, tags, mask)

    def log_likelihood(self, emissions: torch.Tensor, tags: torch.Tensor,
                       mask: torch.Tensor | None = None,
                       unlabelled_tags: torch.Tensor | None = None) -> torch.Tensor:
        """log p(tags | emissions) per sentence, shape (B,). The loss is its negated mean. Tags of
        UNLABELLED (-1) are unknown: the numerator sums over the paths that agree with the others,
        an unknown token taking any tag, or one of `unlabelled_tags` (bool, (K,)) when given."""
        emissions, mask = self._prepare(emissions, tags, mask)
        unknown = (tags == UNLABELLED) & mask
        if bool(unknown.any()):
            # The known tokens keep only their tag; the unknown ones every tag they may take.
            known = nn.functional.one_hot(tags.clamp(min=0).long(), self.num_tags).bool()
            free = unknown.unsqueeze(2)
            allowed = known | (free if unlabelled_tags is None else free & unlabelled_tags.bool())
            numerator = self._log_partition(emissions.masked_fill(~allowed, _OFF_PATH), mask)
        else:
            numerator = self._path_score(emissions, tags.clamp(min=0), mask)
        return numerator - self._log_partition(emissions, mask)

    def path_score(self, emissions: torch.Tensor, tags: torch.Tensor,
                   mask: torch.Tensor | None = None) -> torch.Tensor:
        """Unnormalised score s(tags) per sentence, shape (B,)."""
        emissions, mask = self._prepare(emissions, tags, mask)
        return self._path_score(emissions, tags, mask)

    def log_partition(self, emissions: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        """log Z = logsumexp of s(y) over every tag path y, per sentence, shape (B,)."""
        emissions, mask = self._prepare(emissions, None, mask)
        return self._log_partition(emissions, mask)

    def _path_score(self, emissions: torch.Tensor, tags: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        tags = tags.long()
        maskf = mask.to(emissions.dtype)
        # Emission of the gold tag at every step: one gather over (B, T).
        emitted = emissions.gather(2, tags.unsqueeze(2)).squeeze(2)
        score = (emitted * maskf).sum(1) + self.start_transitions[tags[:, 0]]
        # Transition into every step t >= 1, counted where step t is a real token.
        if tags.size(1) > 1:
            score = score + (self.transitions[tags[:, :-1], tags[:, 1:]] * maskf[:, 1:]).sum(1)
        last = mask.long().sum(1, keepdim=True) - 1
        return score + self.end_transitions[tags.gather(1, last).squeeze(1)]

    def _log_partition(self, emissions: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        log_z, smallest_sum = self._forward_by_matmul(emissions, mask)
        # Below this, exp() in the matmul lost precision (subnormal numbers): redo it exactly.
        if smallest_sum is not None and bool(smallest_sum < torch.finfo(emissions.dtype).tiny ** 0.75):
            log_z = self._forward_by_logsumexp(emissions, mask)
        return log_z

    def _forward_by_matmul(self, emissions: torch.Tensor, mask: torch.Tensor):
        """Forward algorithm in probability space with max-shifts (fast path).

        log(sum_i exp(a_i + T_ij)) = log(sum_i exp(a_i - m) exp(T_ij - c_j)) + m + c_j holds for
        any m and c_j, so the shifts are treated as constants (detached): autograd then gives
        the exact gradient with fewer operations to differentiate."""
        steps = emissions.size(1)
        column_max = self.transitions.detach().amax(dim=0)                  # (K,) c_j
        exp_transitions = torch.exp(self.transitions - column_max)          # entries in (0, 1]
        # unbind, not emissions[:, t] in the loop: the backward of each slice would allocate
        # and zero-fill a whole (B, T, K) gradient, T times; unbind's backward is one stack.
        shifted_emissions = (emissions + column_max).unbind(1)              # adds c_j once for all t
        step_on = mask.unsqueeze(2).unbind(1)                               # T x (B, 1)
        alpha = self.start_transitions + emissions[:, 0]                    # (B, K)
        sums = []
        for t in range(1, steps):
            row_max = alpha.detach().amax(dim=1, keepdim=True)             # (B, 1) m
            summed = torch.exp(alpha - row_max) @ exp_transitions           # (B, K)
            sums.append(summed)
            next_alpha = torch.log(summed) + row_max + shifted_emissions[t]
            alpha = torch.where(step_on[t], next_alpha, alpha)
        log_z = torch.logsumexp(alpha + self.end_transitions, dim=1)
        smallest = torch.stack(sums).detach().amin() if sums else None
        return log_z, smallest

    def _forward_by_logsumexp(self, emissions: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The textbook recursion alpha_t[j] = logsumexp_i(alpha_{t-1}[i] + T[i, j]) + emit_t[j]
        over a (B, K, K) tensor per step: slower, exact for any transition values."""
        emission_steps, step_on = emissions.unbind(1), mask.unsqueeze(2).unbind(1)
        alpha = self.start_transitions + emission_steps[0]
        for t in range(1, emissions.size(1)):
            next_alpha = torch.logsumexp(alpha.unsqueeze(2) + self.transitions, dim=1) + emission_steps[t]
            alpha = torch.where(step_on[t], next_alpha, alpha)
        return torch.logsumexp(alpha + self.end_transitions, dim=1)

    # ---- decoding -------------------------------------------------------------------------
    @torch.no_grad()
    def decode(self, emissions: torch.Tensor, mask: torch.Tensor | None = None,
               pad_tag: int = 0) -> torch.Tensor:
        """Most likely tag path per sentence by Viterbi, as a (B, T) LongTensor.

        Positions outside the mask hold `pad_tag` (0 by default; read only the first
        mask.sum(1) entries of each row). Ties go to the lowest tag index, as in pytorch-crf.

        The batch is sorted longest first, like `pack_padded_sequence`, so that the sentences
        still running at step t are the first `running[t]` rows: each step works on those rows
        only (no work and no `torch.where` for padding), and back-tracking updates the same
        rows with one gather per step for the whole batch."""
        emissions, mask = self._prepare(emissions, None, mask)
        batch, steps, _ = emissions.shape
        lengths = mask.sum(1)
        order = lengths.argsort(descending=True, stable=True)
        # running[t] = number of sentences longer than t (one host sync for the whole decode).
        running = (lengths[order].unsqueeze(1) > torch.arange(steps, device=mask.device)).sum(0).tolist()
        longest = sum(1 for count in running if count > 0)
        emission_steps = emissions[order].unbind(1)

        score = self.start_transitions + emission_steps[0]                  # (B, K), sorted rows
        backpointers = []                                                    # [t-1]: (running[t], K)
        for t in range(1, longest):
            rows = running[t]
            # best[b, j] = max_i score[b, i] + trans[i, j]; the emission of j does not depend on i.
            best, best_from = (score[:rows].unsqueeze(2) + self.transitions).max(dim=1)
            torch.add(best, emission_steps[t][:rows], out=score[:rows])    # finished rows keep theirs
            backpointers.append(best_from)

        # Every row of `score` now ends at its own sentence's last token. Start every column at
        # the last tag: a row that ended before step t keeps it (its last tag, or padding).
        last_tag = (score + self.end_transitions).argmax(dim=1, keepdim=True)   # (B, 1)
        path = last_tag.expand(batch, longest).contiguous()
        for t in range(longest - 1, 0, -1):
            rows = running[t]
            path[:rows, t - 1:t] = backpointers[t - 1].gather(1, path[:rows, t:t + 1])
        if longest < steps:
            path = torch.nn.functional.pad(path, (0, steps - longest), value=pad_tag)
        unsorted = torch.empty_like(path)
        unsorted[order] = path
        return unsorted.masked_fill(~mask, pad_tag)
