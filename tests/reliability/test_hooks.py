"""Hook lifecycle: no hook survives a failed forward, close() is idempotent, a re-run cell does not
stack hooks, and a closed widget lets its model be collected.

Peer failures these guard against: hooks left after an exception (meta-pytorch/captum#340,
TransformerLensOrg/TransformerLens#156), cleanup that removed other owners' hooks
(TransformerLens#1638), ghost hooks from re-instantiation (meta-pytorch/captum#834,
jacobgil/pytorch-grad-cam#132, #483), widgets kept alive by references (manzt/anywidget#929,
jupyter-widgets/ipywidgets#1345).
"""

from __future__ import annotations

import weakref
from typing import Any

import pytest
import torch
from ipywidgets.widgets import widget as ipywidget

from ._models import (
    SUBJECTS,
    WIDGETS,
    Boom,
    Subject,
    armed,
    assert_unchanged,
    close,
    collect,
    finish,
    hook_count,
    make,
    model_snapshot,
    registry_size,
)


def add_user_hooks(model: torch.nn.Module) -> None:
    """Hooks the user put on the model: cleanup must leave them (TransformerLens#1638)."""
    first = next(m for name, m in model.named_modules() if name)
    first.register_forward_hook(lambda module, args, output: None)
    model.register_forward_pre_hook(lambda module, args: None)


def failed(outcome: Any, error: BaseException | None) -> bool:
    """The tripwire's failure reached the caller: raised (possibly wrapped), or said in the view."""
    while error is not None:
        if isinstance(error, Boom):
            return True
        error = error.__cause__ or error.__context__
    return "tripwire" in str(getattr(outcome, "error", ""))


def attempt(call: Any) -> tuple[Any, BaseException | None]:
    try:
        return finish(call()), None
    except Exception as error:
        return None, error


@pytest.fixture
def new_widgets():
    """Closes every widget a test left open (dropped, not closed), so the registry stays lean."""
    before = set(ipywidget._instances)
    yield
    for key in set(ipywidget._instances) - before:
        widget = ipywidget._instances.get(key)
        if widget is not None:
            widget.close()


@pytest.mark.parametrize("subject", [s for s in SUBJECTS if s.forward], ids=str)
def test_a_forward_that_raises_leaves_no_hook(subject: Subject):
    """The model raises half way through the visual forward: the error reaches the caller and
    every hook is gone, the user's own hooks kept (captum#340, TransformerLens#156, #1638)."""
    model, inputs = make(subject)
    add_user_hooks(model)
    before = model_snapshot(model)
    with armed(model):
        outcome, error = attempt(lambda: subject.build(model, inputs))
        assert failed(outcome, error), f"{subject}: the forward's failure was swallowed"
        assert_unchanged(model, before)  # before close(): nothing depends on closing
    if outcome is not None:
        close(outcome)
    assert_unchanged(model, before)


@pytest.mark.parametrize("subject", [s for s in WIDGETS if s.drive is not None], ids=str)
def test_a_forward_that_raises_during_a_selection_leaves_no_hook(subject: Subject, new_widgets):
    """A selection change re-runs the model and the model raises: no hook is left (for the
    TrainingMonitor: the user's training forward raises while its hooks are armed, and close()
    removes them)."""
    model, inputs = make(subject)
    add_user_hooks(model)
    before = model_snapshot(model)
    widget = finish(subject.build(model, inputs))
    armed_hooks = hook_count(model)
    with armed(model):
        if subject.forward:
            _, error = attempt(lambda: subject.drive(widget))
            assert failed(widget, error), f"{subject}: the forward's failure was swallowed"
            assert hook_count(model) == armed_hooks
        else:
            # The user's own forward, in eval mode so that it moves no BatchNorm statistic.
            model.eval()
            with pytest.raises(Boom), torch.no_grad():
                model(inputs)
            model.train()
    widget.close()
    assert_unchanged(model, before)


@pytest.mark.parametrize("subject", WIDGETS, ids=str)
def test_close_twice_is_a_no_op(subject: Subject):
    model, inputs = make(subject)
    before = model_snapshot(model)
    start = registry_size()
    widget = finish(subject.build(model, inputs))
    if subject.drive is not None:
        subject.drive(widget)
    widget.close()
    assert_unchanged(model, before)
    assert registry_size() == start, "close() left widgets of the view in ipywidgets' registry"
    widget.close()
    assert_unchanged(model, before)
    assert registry_size() == start


@pytest.mark.parametrize("closing", [True, False], ids=["closed", "dropped"])
@pytest.mark.parametrize("subject", WIDGETS, ids=str)
def test_recreating_a_widget_twenty_times_keeps_the_hook_count(
    subject: Subject, closing: bool, new_widgets
):
    """A notebook cell run again and again: the previous widget is closed, or just dropped (its
    name rebound), and the model does not collect hooks (captum#834, pytorch-grad-cam#132)."""
    model, inputs = make(subject)
    before = model_snapshot(model)
    widget = finish(subject.build(model, inputs))
    counts = [hook_count(model)]
    for _ in range(19):
        if closing:
            widget.close()
        widget = finish(subject.build(model, inputs))
        counts.append(hook_count(model))
    assert counts == [counts[0]] * 20, f"{subject}: hook count per re-creation {counts}"
    widget.close()
    if closing:
        assert_unchanged(model, before)


@pytest.mark.parametrize("subject", WIDGETS, ids=str)
def test_a_closed_widget_lets_its_model_be_collected(subject: Subject):
    """After close(), del and gc.collect() nothing keeps the model or the widget alive: not the
    widget's callbacks (anywidget#929), not ipywidgets' registry (ipywidgets#1345). These are plain
    Python objects here: no IPython output cache (ipywidgets#3544) holds them."""
    model, inputs = make(subject)
    start = registry_size()
    widget = finish(subject.build(model, inputs))
    if subject.drive is not None:
        subject.drive(widget)
    model_ref, widget_ref = weakref.ref(model), weakref.ref(widget)
    widget.close()
    del widget, model
    collect()
    assert registry_size() == start
    assert widget_ref() is None, f"{subject}: the closed widget is still referenced"
    assert model_ref() is None, f"{subject}: the closed widget keeps the model alive"
