"""Every run kind is declared once and its declaration is honest: the metrics it emits are the ones it declares,
a metric name means one quantity in every kind, the config's defaults are the only defaults, and the shared
artefacts change no number."""

import dataclasses
import typing

import pytest
from pydantic import BaseModel

from convlab.runs import RUN_KINDS
from convlab.runs.artefacts import clear_memo
from convlab.runs.describe import config_keys, describe_kind

GAUSS2 = {"name": "gaussian", "D": 2, "mean": 1.0, "s": 0.5}
SEARCH = {"n_samples": 16, "ascent_steps": 2}
TINY_NET = {"width": 16, "depth": 2}

# kind -> configs that between them reach every metric the kind declares (all but the time of stages not run)
SMALL = {
    "flow": [
        {"target": {"name": "ring8"}, "K": 4, "n_coupled": 64, "n_w2": 32, "floor_repeats": 2, "reference": {"K": 32}}
    ],
    "characteristic": [
        {
            "target": {"name": "ring8"},
            "teacher": {"n": 64, "net": TINY_NET, "optim": {"steps": 60, "batch_size": 32}, "selection": "heldout"},
            "student": {"net": TINY_NET, "optim": {"steps": 5, "batch_size": 32}, "selection": "heldout"},
            "characteristics": {"K": 4, "m": 32},
            "eval": {"n_coupled": 32, "n_w2": 16, "n_velocity": 64, "floor_repeats": 2},
            "reference": {"K": 32},
        },
        {
            "target": {"name": "ring8"},
            "teacher": {"kind": "kernel", "n": 64},
            "student": {"init": "random", "optim": {"steps": 0}},
            "characteristics": {"K": 4, "m": 32},
            "eval": {"n_coupled": 32, "n_w2": 16, "n_velocity": 64, "floor_repeats": 2},
            "reference": {"K": 32},
        },
    ],
    "external": [
        {
            "target": {"name": "ring8"},
            "model": {"factory": "tests.evaluate.factories:exact_linear"},
            "K": 4,
            "n_coupled": 64,
            "n_velocity": 64,
            "n_w2": 32,
            "floor_repeats": 2,
            "reference": {"K": 32},
        }
    ],
    "pf_ode": [
        {
            "target": GAUSS2,
            "S": 2.0,
            "K": 8,
            "n_coupled": 32,
            "score_error": {"kind": "constant", "eps": 0.01},
            "reference": {"K": 32},
        }
    ],
    "log_concavity": [{"target": {"name": "ring8", "radius": 1.0, "s": 0.5}, "n_points": 16}],
    "lipschitz": [{"target": {"name": "ring8", "s": 0.0}, "t": 0.9, "search": SEARCH}],
    "early_stopping": [{"target": {"name": "ring8", "s": 0.0}, "n_mc": 32, "n_t": 3, "search": SEARCH}],
    "stability": [{"target": GAUSS2, "n_coupled": 32, "n_mc": 32, "n_t": 3, "search": SEARCH, "reference": {"K": 32}}],
    "jko": [
        {
            "target": GAUSS2,
            "K": 1,
            "n": 64,
            "n_mc": 64,
            "n_w2": 16,
            "floor_repeats": 2,
            "net": {"width": 8},
            "optim": {"steps": 3, "batch_size": 16},
        }
    ],
}


def test_every_kind_is_exercised_here():
    assert set(SMALL) == set(RUN_KINDS)


@pytest.mark.parametrize("name", sorted(RUN_KINDS))
def test_a_kind_emits_exactly_the_metrics_it_declares(name):
    """RunKind.run refuses undeclared metrics; conversely every declared metric is emitted by some config (a
    declaration nobody writes is a stale name)."""
    kind, emitted = RUN_KINDS[name], set()
    for cfg in SMALL[name]:
        rec = kind.run(cfg, device="cpu")
        assert rec.status == "ok", rec.reason
        emitted |= set(rec.metrics)
    assert emitted <= set(kind.metric_names)
    never = [m.name for m in kind.metrics if m.name not in emitted and not m.name.startswith("time_")]
    assert not never, f"declared but never emitted: {never}"


def test_a_metric_name_means_one_quantity_in_every_kind():
    seen = {}
    for kind in RUN_KINDS.values():
        for m in kind.metrics:
            same = (m.label, m.estimate, m.unit, m.squared)
            assert seen.setdefault(m.name, (kind.name, same))[1] == same, (m.name, kind.name, seen[m.name][0])


def _nested_defaults(model: type[BaseModel], path: str = ""):
    for name, info in model.model_fields.items():
        nested = [
            a
            for a in (info.annotation, *typing.get_args(info.annotation))
            if isinstance(a, type) and issubclass(a, BaseModel)
        ]
        if nested and not info.is_required():  # a required block (external's model) has no default to restate
            yield f"{path}{name}", info.default, nested[0]
            yield from _nested_defaults(nested[0], f"{path}{name}.")


@pytest.mark.parametrize("name", sorted(RUN_KINDS))
def test_the_config_models_defaults_are_the_only_defaults(name):
    """A nested block's default is its class's own default: a kind that wants other defaults declares a subclass
    (e.g. jko's BlockOptim), so that `optim: {lr: 1e-3}` keeps the kind's other defaults instead of the base's."""
    for path, default, cls in _nested_defaults(RUN_KINDS[name].config):
        assert default == cls(), f"{name}.{path}: the field default {default!r} restates {cls.__name__}'s defaults"


@pytest.mark.parametrize("name", sorted(RUN_KINDS))
def test_the_reference_lists_every_key_and_metric(name):
    kind = RUN_KINDS[name]
    text = describe_kind(kind)
    assert all(key in text for key, *_ in config_keys(kind.config) if key != "kind")
    assert all(m.name in text for m in kind.metrics)
    assert kind.doc, f"{name}: the config model needs a docstring (it is the kind's description)"


def test_artefact_keys_name_only_config_fields():
    for kind in RUN_KINDS.values():
        for a in kind.artefacts:
            assert set(a.depends_on) <= set(kind.config.model_fields), (kind.name, a.name)


def test_shared_reference_flows_change_no_number():
    """A K sweep shares one reference solve per process; each run gives what it gives alone."""
    kind = RUN_KINDS["flow"]
    base = {"target": {"name": "ring8"}, "n_coupled": 64, "reference": {"K": 64}}
    kind.run({**base, "K": 4}, device="cpu")
    shared = kind.run({**base, "K": 8}, device="cpu").metrics
    clear_memo()
    alone = kind.run({**base, "K": 8}, device="cpu").metrics
    drop = lambda m: {k: v for k, v in m.items() if not k.startswith("time_")}  # noqa: E731
    assert drop(shared) == drop(alone)


def test_metric_declarations_are_frozen():
    m = RUN_KINDS["flow"].metrics[0]
    with pytest.raises(dataclasses.FrozenInstanceError):
        m.name = "x"
