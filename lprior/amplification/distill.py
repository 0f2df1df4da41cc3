"""Distillation (DESIGN §7): train M on its own M-consulting tree, at no cost in human calls.

The decompose imitator splits a question, M answers both subquestions, the combine imitator
joins the answers; the result is M's target for the question.  It is amplification with rule
'none' (no recursion) and H′ = the imitators throughout.
"""

from __future__ import annotations

import jax

from lprior.amplification.amplify import Tree, amplify_batch, make_policy
from lprior.amplification.models import Fns
from lprior.amplification.tasks import Task
from lprior.pytree import PyTree


def distill(key: jax.Array, task: Task, fns: Fns, params: dict[str, PyTree],
            questions: jax.Array) -> Tree:
  """The one-level M-consulting trees of questions (B, question_len); root targets only."""
  if not fns.imitate:
    raise ValueError("distillation needs the decompose and combine imitators (imitate=True): "
                     "with the human in their place every distilled question costs human calls")
  return amplify_batch(key, task, fns, params, questions,
                       make_policy("none", imitators="always"), max_depth=1)
