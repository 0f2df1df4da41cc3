"""Prior(Z) as a conjunction of many statements (DESIGN §6, issue 6).

For n binary statements known only through k-way marginals (`marginals.KWay`): estimators of
log P(all true) — independence, exact max-ent completion (`maxent`), Bethe and Chow–Liu
(`bethe`), the w-neighbour chain (`window`) — closed-form bounds (`bounds`) and the sharp LP
bounds (`lp`); the four-sided-die counterexample (`die`); statements from a smooth latent space
(`smooth`, `orthant`); and a dishonest debater that picks the worst dependence structure
consistent with what the judge sees (`debater`).
"""

from lprior.conjunction.bethe import log_p_bethe, log_p_chow_liu, log_p_tree
from lprior.conjunction.bounds import best_bounds, closed_form_bounds
from lprior.conjunction.independence import log_p_independent
from lprior.conjunction.lp import exchangeable_lp_bounds, is_consistent, lp_bounds
from lprior.conjunction.marginals import KWay, from_joint, from_pairwise
from lprior.conjunction.maxent import MaxEntFit, fit_maxent, log_p_maxent
from lprior.conjunction.window import log_p_window

__all__ = ["KWay", "MaxEntFit", "best_bounds", "closed_form_bounds", "exchangeable_lp_bounds",
           "fit_maxent", "from_joint", "from_pairwise", "is_consistent", "log_p_bethe",
           "log_p_chow_liu", "log_p_independent", "log_p_maxent", "log_p_tree", "log_p_window",
           "lp_bounds"]
