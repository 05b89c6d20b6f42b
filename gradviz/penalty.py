"""The L2 penalty's two forms and how each is written, shared by the trainer and the monitor.

Weight decay's λ·Σ‖θ‖² (the default) and the lecture's slide, J_R = J + λ·Σ‖θ‖₂: a sum
of Euclidean norms, one per parameter tensor (a matrix's is its Frobenius norm). No
torch here: the monitor reads the form from the run directory and only writes it out.
"""

from __future__ import annotations

L2_FORMS = ("squared", "norm")
FORMULAS = {"squared": "λ·Σ‖θ‖²", "norm": "λ·Σ‖θ‖₂"}


def penalty_formula(lam: float | None, form: str | None = "squared") -> str | None:
    """`λ·Σ‖θ‖₂ (λ = 0.001)` for a run with a penalty; None when λ is 0 or unset."""
    if not lam:
        return None
    return f"{FORMULAS.get(form or 'squared', FORMULAS['squared'])} (λ = {lam:g})"


def penalized_gradient(data_gradient: str, lam: float | None, form: str | None = "squared") -> str:
    """The gradient an update steps on, the penalty's written in where there is one:
    '∇L_B' → '∇(L_B + λ·Σ‖θ‖₂)'; a sum such as '1/4·Σ∇L_B_P' → '(1/4·Σ∇L_B_P + ∇λ·Σ‖θ‖₂)'."""
    if not lam:
        return data_gradient
    penalty = FORMULAS.get(form or "squared", FORMULAS["squared"])
    if data_gradient.startswith("∇") and " " not in data_gradient:
        return f"∇({data_gradient[1:]} + {penalty})"
    return f"({data_gradient} + ∇{penalty})"
