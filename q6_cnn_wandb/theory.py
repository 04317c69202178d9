"""Q6, part 2: the three theory questions, each answered with its derivation and checked
(sympy, torch references, the full truth table); a few seconds.

    python q6_cnn_wandb/theory.py          # prints the answers and the checks; exit 1 if one fails
    python -m q6_cnn_wandb.theory --quiet  # only the check lines

`QUESTIONS` pairs each answer (a function returning its text, shown by report.py) with its check
(a function returning `Check`s). The questions are summarised in q6_cnn_wandb/README.md.
"""

from __future__ import annotations

import argparse
import itertools
from dataclasses import dataclass

import sympy
import torch
import torch.nn.functional as F
from sympy.logic.boolalg import Xor, to_dnf
from torch import nn
from torch.distributions import Bernoulli, kl_divergence

from common.cli import HelpFormatter


@dataclass
class Check:
    name: str
    passed: bool
    detail: str

    def line(self) -> str:
        return f"[{'PASS' if self.passed else 'FAIL'}] {self.name}: {self.detail}"


def error_text(error: float, floor: float = 1e-12) -> str:
    """'= 4.6e-05', or '< 1e-12' below `floor`: digits under it change with the number of threads
    (the order of a sum), and the report must re-render the same."""
    return f"< {floor:.0e}" if error < floor else f"= {error:.1e}"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("--quiet", action="store_true", help="print only the check lines")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random inputs of the checks")
    parser.add_argument("--samples", type=int, default=1000, help="random inputs per numeric check")
    return parser.parse_args(argv)


# ---- question 1: all weights 1, all biases 0 ------------------------------------------------

def uniform_output_answer() -> str:
    return """\
Question 1. Inputs x1, x2, x3; two hidden layers of 3 sigmoid units; softmax output; every
weight 1, every bias 0. What is y(x)?

Every unit of a layer sees the same weighted sum, because all its weights are 1 and its bias 0:
  hidden layer 1:  a1_j = s(x1 + x2 + x3)          for j = 1, 2, 3   (s = sigmoid)
  hidden layer 2:  a2_j = s(a1_1 + a1_2 + a1_3) = s(3 s(x1 + x2 + x3))
  output logits:   z_k  = a2_1 + a2_2 + a2_3     = 3 s(3 s(x1 + x2 + x3))   for every k
All output units receive the same logit z, and softmax of K equal logits is uniform:
  y_k = exp(z) / (K exp(z)) = 1/K.
With the three outputs the question implies, y = (1/3, 1/3, 1/3) for EVERY input x: the
network is constant, and the logit z, which does depend on x (it lies in (3 s(0), 3 s(3)) =
(1.5, 2.86)), cancels in the softmax. With K output units y_k = 1/K. (This is why weights are
never initialised to one shared value: the units of a layer stay identical, the symmetry is
never broken by gradient descent, and the output carries no information about x.)"""


def check_uniform_output(samples: int = 1000, seed: int = 0) -> list[Check]:
    checks = []
    x = sympy.Matrix(sympy.symbols("x1:4"))
    sigmoid = lambda z: 1 / (1 + sympy.exp(-z))  # noqa: E731
    hidden2 = (sympy.ones(3, 3) * (sympy.ones(3, 3) * x).applyfunc(sigmoid)).applyfunc(sigmoid)
    for k in (3, 2, 5):
        logits = sympy.ones(k, 3) * hidden2
        exps = logits.applyfunc(sympy.exp)
        residual = [sympy.simplify(y_k - sympy.Rational(1, k)) for y_k in exps / sum(exps)]
        checks.append(Check(f"q1 symbolic, {k} outputs", all(r == 0 for r in residual),
                            f"sympy simplifies every y_k - 1/{k} to {residual[0]}"))
    z = sympy.simplify(logits[0])
    checks.append(Check("q1 symbolic logit", sympy.simplify(z - 3 * sigmoid(3 * sigmoid(sum(x)))) == 0,
                        f"z_k = {z}"))
    generator = torch.Generator().manual_seed(seed)
    inputs = 10 * torch.randn(samples, 3, generator=generator, dtype=torch.float64)
    for k in (3, 2, 5):
        network = nn.Sequential(nn.Linear(3, 3), nn.Sigmoid(), nn.Linear(3, 3), nn.Sigmoid(),
                                nn.Linear(3, k), nn.Softmax(dim=1)).double()
        for linear in network[::2]:  # every weight 1, every bias 0
            nn.init.ones_(linear.weight)
            nn.init.zeros_(linear.bias)
        with torch.no_grad():
            error = (network(inputs) - 1 / k).abs().max().item()
        checks.append(Check(f"q1 numeric, {k} outputs", error < 1e-12,
                            f"max |y_k - 1/{k}| {error_text(error)} over {samples} inputs x ~ N(0, 10^2)"))
    return checks


# ---- question 2: cross-entropy and KL divergence ---------------------------------------------

def cross_entropy_kl_answer() -> str:
    return """\
Question 2. For binary classification, minimising the cross-entropy is equivalent to minimising
the KL divergence between the true distribution p = (p, 1-p) and the predicted q = (q, 1-q).

  CE(p, q) = -[p log q + (1-p) log(1-q)]
           = -[p log p + (1-p) log(1-p)] + [p log(p/q) + (1-p) log((1-p)/(1-q))]
           = H(p) + KL(p || q)
(add and subtract p log p + (1-p) log(1-p)). The entropy H(p) of the true labels does not
depend on the model's parameters theta, only q = q_theta(x) does. Hence, summed over any
training set, CE(theta) = const + KL(theta): both objectives have the same gradient with respect
to theta at every theta, the same minimisers, and gradient descent follows the same path on
either. With hard labels (p in {0, 1}) H(p) = 0 and the two are equal outright. KL(p||q) >= 0
with equality iff q = p, so the minimum of the cross-entropy over q is H(p), reached at q = p."""


def binary_kl(p: torch.Tensor, q: torch.Tensor) -> torch.Tensor:
    """KL((p, 1-p) || (q, 1-q)) written out, with 0 log 0 = 0."""
    return (torch.special.xlogy(p, p) - torch.special.xlogy(p, q)
            + torch.special.xlogy(1 - p, 1 - p) - torch.special.xlogy(1 - p, 1 - q))


def check_cross_entropy_kl(samples: int = 1000, seed: int = 0) -> list[Check]:
    generator = torch.Generator().manual_seed(seed)
    p = 0.01 + 0.98 * torch.rand(samples, generator=generator, dtype=torch.float64)
    q = 0.01 + 0.98 * torch.rand(samples, generator=generator, dtype=torch.float64)
    checks = []
    # torch's own binary cross-entropy, entropy and KL as the references.
    cross_entropy = F.binary_cross_entropy(q, p, reduction="none")
    identity = Bernoulli(probs=p).entropy() + kl_divergence(Bernoulli(probs=p), Bernoulli(probs=q))
    error = (cross_entropy - identity).abs().max().item()
    checks.append(Check("q2 CE = H(p) + KL(p||q)", error < 1e-12,
                        f"max |BCE - (H + KL)| {error_text(error)} over {samples} random (p, q)"))
    hard = (p > 0.5).double()  # one-hot labels: H = 0, CE = KL
    error = (F.binary_cross_entropy(q, hard, reduction="none") - binary_kl(hard, q)).abs().max().item()
    checks.append(Check("q2 hard labels: CE = KL", error < 1e-12, f"max |CE - KL| {error_text(error)}"))
    # Same gradient with respect to the model's parameters (a logistic regression on random data).
    features = torch.randn(samples, 4, generator=generator, dtype=torch.float64)
    weights = torch.randn(4, generator=generator, dtype=torch.float64, requires_grad=True)
    predicted = torch.sigmoid(features @ weights)
    grad_ce, = torch.autograd.grad(F.binary_cross_entropy(predicted, p), weights, retain_graph=True)
    grad_kl, = torch.autograd.grad(binary_kl(p, predicted).mean(), weights)
    error = (grad_ce - grad_kl).abs().max().item()
    checks.append(Check("q2 same gradient", error < 1e-12,
                        f"max |dCE/dw - dKL/dw| {error_text(error)} (logistic regression, soft labels)"))
    # Gradient descent on either objective follows the same path and ends at the same weights.
    ends = []
    for objective in (lambda q_: F.binary_cross_entropy(q_, p), lambda q_: binary_kl(p, q_).mean()):
        w = torch.zeros(4, dtype=torch.float64, requires_grad=True)
        optimizer = torch.optim.SGD([w], lr=0.5)
        for _ in range(200):
            optimizer.zero_grad()
            objective(torch.sigmoid(features @ w)).backward()
            optimizer.step()
        ends.append(w.detach())
    error = (ends[0] - ends[1]).abs().max().item()
    checks.append(Check("q2 same minimiser", error < 1e-9,
                        f"after 200 SGD steps on CE and on KL, max |w_CE - w_KL| {error_text(error)}"))
    # Minimum over q of CE(p, q) is at q = p (grid search), where CE = H(p).
    grid = torch.linspace(0.001, 0.999, 999, dtype=torch.float64)
    p_few = p[:50]
    values = F.binary_cross_entropy(grid.expand(50, -1), p_few.unsqueeze(1).expand(-1, 999), reduction="none")
    error = (grid[values.argmin(1)] - p_few).abs().max().item()
    checks.append(Check("q2 argmin_q CE = p", error <= 0.001,
                        f"grid argmin within {error:.4f} of p (grid step 0.001)"))
    return checks


# ---- question 3: a one-hidden-layer network for (P or Q) xor (not R or not S) ----------------

def target_function(p: int, q: int, r: int, s: int) -> int:
    """y = (P or Q) xor (not R or not S)."""
    return int(bool(p or q) != bool((not r) or (not s)))


# Inputs ordered (P, Q, R, S); one hidden unit per product term, derived in boolean_network_answer().
HIDDEN_TERMS = ("P R S", "Q R S", "not P, not Q, not R", "not P, not Q, not S")
HIDDEN_WEIGHTS = torch.tensor([[1., 0., 1., 1.], [0., 1., 1., 1.], [-1., -1., -1., 0.], [-1., -1., 0., -1.]])
HIDDEN_BIAS = torch.tensor([-2.5, -2.5, 0.5, 0.5])
OUTPUT_WEIGHTS = torch.tensor([1., 1., 1., 1.])
OUTPUT_BIAS = torch.tensor(-0.5)
# The factored form, (P or Q) and R and S, or (not P and not Q and not (R and S)), in two units:
# (hidden weights, hidden bias, output weights, output bias).
FACTORED = (torch.tensor([[1., 1., 2., 2.], [-2., -2., -1., -1.]]), torch.tensor([-4.5, 1.5]),
            torch.tensor([1., 1.]), torch.tensor(-0.5))


def threshold_network(inputs, hidden_weights, hidden_bias, output_weights, output_bias, activation=None):
    """(hidden, output) tensors of a one-hidden-layer network; the activation defaults to the step
    function step(z) = 1 if z > 0 else 0."""
    activation = activation or (lambda z: (z > 0).float())
    hidden = activation(inputs @ hidden_weights.T + hidden_bias)
    return hidden, activation(hidden @ output_weights + output_bias)


def all_inputs() -> torch.Tensor:
    """The 16 rows (P, Q, R, S) of the truth table."""
    return torch.tensor(list(itertools.product((0, 1), repeat=4)), dtype=torch.float32)


def truth_table() -> str:
    inputs = all_inputs()
    hidden, output = threshold_network(inputs, HIDDEN_WEIGHTS, HIDDEN_BIAS, OUTPUT_WEIGHTS, OUTPUT_BIAS)
    lines = ["  P Q R S | P or Q | not R or not S | y | h1 h2 h3 h4 | network",
             "  --------+--------+----------------+---+-------------+--------"]
    for row, h, out in zip(inputs.int().tolist(), hidden.int().tolist(), output.int().tolist()):
        p, q, r, s = row
        lines.append(f"  {p} {q} {r} {s} |   {int(p or q)}    |       {int((not r) or (not s))}        |"
                     f" {target_function(p, q, r, s)} |  {h[0]}  {h[1]}  {h[2]}  {h[3]} |    {out}")
    return "\n".join(lines)


def linear_text(weights: torch.Tensor, bias: torch.Tensor) -> str:
    """[1, 0, -1, 1], -1.5 -> 'P - R + S - 1.5' (zero weights left out)."""
    bias = float(bias)
    terms = [(w, name if abs(w) == 1 else f"{abs(w):g}{name}")
             for w, name in zip(weights.tolist(), "PQRS") if w] + [(bias, f"{abs(bias):g}")]
    text = " ".join(f"{'-' if w < 0 else '+'} {term}" for w, term in terms)
    return text[2:] if text[0] == "+" else "-" + text[2:]


def boolean_network_answer() -> str:
    weights = "\n".join(f"  h{i + 1} = step({linear_text(row, HIDDEN_BIAS[i])})".ljust(34)
                        + f"fires iff {term}"
                        for i, (row, term) in enumerate(zip(HIDDEN_WEIGHTS, HIDDEN_TERMS)))
    return f"""\
Question 3. A one-hidden-layer network for y = (P or Q) xor (not R or not S).

Let A = P or Q and B = not R or not S = not (R and S). Then
  y = A xor B = (A and not B) or (not A and B)
    = (P or Q) R S  or  (not P)(not Q)(not R or not S)
    = P R S  +  Q R S  +  P' Q' R'  +  P' Q' S'          (sum of products; ' = not, + = or)
One hidden threshold unit per product term (step(z) = 1 if z > 0 else 0): weight +1 for a plain
literal, -1 for a negated one, bias 0.5 - (number of plain literals), so z = +0.5 when every
literal of the term holds and z <= -0.5 otherwise. The output unit ORs them: weights 1, bias -0.5.
Inputs (P, Q, R, S) in {{0, 1}}:
{weights}
  y  = step(h1 + h2 + h3 + h4 - 0.5)
Factoring gives a smaller network with two hidden units:
  (P or Q) R S = step({linear_text(FACTORED[0][0], FACTORED[1][0])}),  \
P' Q' (R S)' = step({linear_text(FACTORED[0][1], FACTORED[1][1])}),
  y = step(h1 + h2 - 0.5).
With sigmoid units instead of steps, multiply every weight and bias by 20: each unit is then
within 1e-4 of 0 or 1.
Truth table (all 16 inputs; the network column must equal y):
{truth_table()}"""


def check_boolean_network() -> list[Check]:
    inputs = all_inputs()
    expected = torch.tensor([target_function(*row) for row in inputs.int().tolist()], dtype=torch.float32)
    checks = []
    sum_of_products = (HIDDEN_WEIGHTS, HIDDEN_BIAS, OUTPUT_WEIGHTS, OUTPUT_BIAS)
    for name, parameters in (("q3 four-unit network (sum of products)", sum_of_products),
                             ("q3 two-unit network (factored)", FACTORED)):
        _, output = threshold_network(inputs, *parameters)
        wrong = int((output != expected).sum())
        checks.append(Check(name, wrong == 0, f"{16 - wrong}/16 truth-table rows match the expression"))
    scaled = [20 * tensor for tensor in sum_of_products]
    _, output = threshold_network(inputs, *scaled, activation=torch.sigmoid)
    error = (output - expected).abs().max().item()
    checks.append(Check("q3 sigmoid units, weights x20", error < 1e-3,
                        f"max |output - y| {error_text(error)} over the 16 rows"))
    P, Q, R, S = sympy.symbols("P Q R S")
    expression = Xor(P | Q, ~R | ~S)
    expansion = (P & R & S) | (Q & R & S) | (~P & ~Q & ~R) | (~P & ~Q & ~S)
    equivalent = sympy.satisfiable(Xor(expression, expansion)) is False
    checks.append(Check("q3 expansion (sympy)", equivalent,
                        f"sympy: expression == expansion; its own minimal DNF is "
                        f"{to_dnf(expression, simplify=True)}"))
    return checks


QUESTIONS = [  # (answer, its checks)
    (uniform_output_answer, check_uniform_output),
    (cross_entropy_kl_answer, check_cross_entropy_kl),
    (boolean_network_answer, lambda samples=1000, seed=0: check_boolean_network()),
]


def run_checks(samples: int = 1000, seed: int = 0) -> list[Check]:
    """Every check of the three questions."""
    return [check for _, check_fn in QUESTIONS for check in check_fn(samples=samples, seed=seed)]


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    checks = []
    for answer_fn, check_fn in QUESTIONS:
        question_checks = check_fn(samples=args.samples, seed=args.seed)
        if not args.quiet:
            print(answer_fn() + "\n")
        print("\n".join(check.line() for check in question_checks) + ("" if args.quiet else "\n"))
        checks += question_checks
    failed = [check.name for check in checks if not check.passed]
    print(f"{len(checks) - len(failed)}/{len(checks)} checks passed"
          + (f"; FAILED: {', '.join(failed)}" if failed else ""))
    if failed:
        raise SystemExit(1)
    return {"checks": len(checks), "failed": failed}


if __name__ == "__main__":
    main()
