"""Formulas of the seed papers beyond the characteristic generator (THEORY.md section 6), each checked against an
independent route in tests/theory:

- pf_ode: the OU probability-flow ODE's time map and the log-concavity sandwich of its marginals (seed 002);
- regularity: Lipschitz profiles, early stopping and the stability bound of Gaussian interpolation flows (seed 004);
- jko: the JKO scheme's Gaussian closed form and the neural JKO flow's objective and density tracking (seed 003);
- perturbation: known, seeded perturbation fields (injected score and velocity errors).

Their steppers are ordinary solvers (convlab.solvers: `euler`, `exp_score`) and their networks train through
convlab.models.training.train.
"""
