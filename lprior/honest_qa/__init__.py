"""The honest-QA world of DESIGN §4 (world, labelers, splits, step-3 comparisons), the
two-headed model, and the exact small universe of programs (the seed's bit accounting)."""

from lprior.honest_qa.comparisons import (Comparisons, bradley_terry_log_likelihood,
                                          make_comparisons, with_comparisons)
from lprior.honest_qa.labelers import (HUMAN_RIGHT, MIXED_ERROR, SEEN_ERROR, UNSEEN_NOVEL,
                                       UNSEEN_PREDICTABLE, Labels, complex_label, label,
                                       simple_label)
from lprior.honest_qa.model import HEADS, Model, default_model_config, make_model, model_for
from lprior.honest_qa.perception import Examples, sample_examples
from lprior.honest_qa.splits import (SPLIT_NAMES, TEST_SPLITS, Split, evaluate, evaluate_all,
                                     make_datasets, make_splits)
from lprior.honest_qa.world import (ERROR_KINDS, QUESTION_TYPES, WorldSpec, answer_names,
                                    default_world_config, world_spec)

from lprior.honest_qa import exact_universe, perception  # noqa: E402  (submodules, for access)

__all__ = [
    "Comparisons", "ERROR_KINDS", "Examples", "HEADS", "HUMAN_RIGHT", "Labels", "MIXED_ERROR",
    "Model", "QUESTION_TYPES", "SEEN_ERROR", "SPLIT_NAMES", "Split", "TEST_SPLITS", "UNSEEN_NOVEL",
    "UNSEEN_PREDICTABLE", "WorldSpec",
    "answer_names", "bradley_terry_log_likelihood", "complex_label", "default_model_config",
    "default_world_config", "evaluate", "evaluate_all", "exact_universe", "label",
    "make_comparisons", "make_datasets", "make_model", "make_splits", "model_for", "perception",
    "sample_examples",
    "simple_label", "with_comparisons", "world_spec",
]
