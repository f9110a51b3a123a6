"""Formulas of the seed papers beyond the characteristic generator (docs/concepts/theory.md §6), each checked against an
independent route in tests/theory:

- pf_ode: the OU probability-flow ODE's time map and the log-concavity sandwich of its marginals (arXiv 2510.17608);
- regularity: Lipschitz profiles, early stopping and the stability bound of Gaussian interpolation flows
  (arXiv 2311.11475);
- jko: the JKO scheme's Gaussian closed form and the neural JKO flow's objective and density tracking
  (arXiv 2310.17582);
- perturbation: known, seeded perturbation fields (injected score and velocity errors).

Their steppers are ordinary solvers (convlab.solvers: `euler`, `exp_score`) and their networks train through
convlab.models.stack.train, the loop of every network.
"""
