"""torch.compile: every widget and function warns that compiled code may skip its hooks and names
``model._orig_mod`` as the fix; none shows an empty view without a word.

The models are compiled for real, with ``backend="eager"`` (TorchDynamo traces the forward and
hands the graph to eager PyTorch; inductor would need a C++ toolchain and minutes on this CPU).
Hooks registered after the first compilation can be silently ignored (pytorch/pytorch#117758);
backward pre-hooks can be silently wrong (pytorch/pytorch#117265).
"""

from __future__ import annotations

import warnings
from typing import Any

import pytest
import torch

import modelviz_widgets as mv
from modelviz_widgets.capture.layers import check_model

from ._models import SUBJECTS, Subject, close, finish, make

FIX = "model._orig_mod"


def compiled(model: torch.nn.Module) -> torch.nn.Module:
    return torch.compile(model, backend="eager")


def nonempty(result: Any) -> bool:
    """Something to show: tensors with values, non-empty lists and dicts."""
    if isinstance(result, torch.Tensor):
        return result.numel() > 0
    if isinstance(result, mv.Capture):
        return bool(result.activations) and all(t.numel() for t in result.activations.values())
    if isinstance(result, mv.RecurrentStates):
        return result.hidden.numel() > 0
    if isinstance(result, (list, dict)):
        return len(result) > 0
    raise TypeError(type(result))


@pytest.fixture(autouse=True)
def fresh_dynamo():
    yield
    torch._dynamo.reset()  # no compiled code kept from one test to the next


REALLY_COMPILED = {"capture", "FeatureMaps", "Saliency[sync]", "HiddenStates", "Attention"}


def check(subject: Subject, wrapped: torch.nn.Module, inputs: Any) -> None:
    """Built and driven on the compiled model: the warning names the fix; the result is not
    empty, or its error names the fix."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            made = finish(subject.build(wrapped, inputs))
            if subject.drive is not None:
                subject.drive(made)
        except Exception as error:  # allowed, when it says what to do
            assert FIX in str(error), f"{subject}: {error}"
            made = None
    said = [str(w.message) for w in caught if issubclass(w.category, UserWarning)]
    assert any(FIX in message and "torch.compile" in message for message in said), said
    if made is None:
        return
    if subject.widget:
        assert made.error == "" or FIX in made.error, made.error
        assert made.error or made.current or not subject.forward, f"{subject}: an empty view"
        close(made)
    else:
        assert nonempty(made), f"{subject}: an empty result"


@pytest.mark.parametrize("subject", SUBJECTS, ids=str)
def test_every_widget_and_function_warns_about_a_compiled_model(subject: Subject):
    """Every entry point, on a real ``OptimizedModule`` whose compiled code is switched off for
    speed (TorchDynamo's ``disable``): the warning is given whatever the compiler does."""
    model, inputs = make(subject)
    wrapped = compiled(model.eval())
    with torch._dynamo.config.patch(disable=True):
        check(subject, wrapped, inputs)


@pytest.mark.parametrize("subject", [s for s in SUBJECTS if s.id in REALLY_COMPILED], ids=str)
def test_a_really_compiled_model_is_never_an_unexplained_empty_view(subject: Subject):
    """Compiled for real (one subject per kind of model and widget; each compile takes seconds
    on this CPU)."""
    model, inputs = make(subject)
    check(subject, compiled(model.eval()), inputs)


def test_the_warning_is_given_once_per_compiled_model():
    model, inputs = make(next(s for s in SUBJECTS if s.id == "FeatureMaps"))
    wrapped = compiled(model.eval())
    with warnings.catch_warnings(record=True) as caught, torch._dynamo.config.patch(disable=True):
        warnings.simplefilter("always")
        mv.FeatureMaps(wrapped, inputs).close()
        mv.layers(wrapped)
    assert sum(FIX in str(w.message) for w in caught) == 1


def test_the_warning_points_at_the_callers_line():
    """``stacklevel`` puts the warning on the user's call, not inside the library."""
    model = compiled(torch.nn.Linear(2, 2))
    with pytest.warns(UserWarning, match=r"model\._orig_mod") as caught:
        mv.layers(model)
    assert caught[0].filename == __file__


def test_the_module_inside_is_not_warned_about():
    model = torch.nn.Sequential(torch.nn.Linear(2, 2))
    wrapped = compiled(model)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert check_model(wrapped._orig_mod) is model
        assert mv.capture(wrapped._orig_mod, torch.randn(1, 2), "0").activations["0"].shape == (
            1,
            2,
        )
