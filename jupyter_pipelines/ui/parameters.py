"""Typed inputs for the pipeline's parameters, shown above the graph: what Run and the node menu run with.

One input per parameter, of the parameter's type (text, whole number, number, checkbox), starting at its default.
When the pipeline changes, inputs of parameters that kept their name and type keep what the user typed. Names
are shown as plain text (ipywidgets descriptions are not HTML unless asked).
"""

from __future__ import annotations

from collections.abc import Sequence

import ipywidgets

from ..model import Parameter, ParameterValue

_INPUTS = {
    "str": ipywidgets.Text,
    "int": ipywidgets.IntText,
    "float": ipywidgets.FloatText,
    "bool": ipywidgets.Checkbox,
}


class ParameterInputs(ipywidgets.HBox):  # type: ignore[misc]
    """The parameters as inputs; hidden while the pipeline has none."""

    def __init__(self) -> None:
        super().__init__([], layout=ipywidgets.Layout(flex_flow="row wrap", display="none"))
        self.add_class("jp-Pipelines-parameters")
        self._parameters: tuple[Parameter, ...] = ()
        self.inputs: dict[str, ipywidgets.ValueWidget] = {}

    def set_parameters(self, parameters: Sequence[Parameter]) -> None:
        """Show these parameters; an input whose parameter kept its name and type keeps its value."""
        parameters = tuple(parameters)
        if parameters == self._parameters:
            return
        kept = {p.name: self.inputs[p.name].value for p in self._parameters if p.name in self.inputs}
        known_types = {p.name: p.type for p in self._parameters}
        inputs: dict[str, ipywidgets.ValueWidget] = {}
        for parameter in parameters:
            same = known_types.get(parameter.name) == parameter.type and parameter.name in kept
            value = kept[parameter.name] if same else parameter.default
            inputs[parameter.name] = _INPUTS[parameter.type](
                value=value,
                description=parameter.name,
                tooltip=f"{parameter.name}: {parameter.type} (default {parameter.default!r})",
                style={"description_width": "initial"},
                layout=ipywidgets.Layout(width="auto", margin="0 12px 0 0"),
            )
        self._parameters = parameters
        self.inputs = inputs
        self.children = list(inputs.values())
        self.layout.display = "flex" if inputs else "none"

    def values(self) -> dict[str, ParameterValue]:
        """The values the user set that differ from the defaults (what a run overrides)."""
        defaults = {p.name: p.default for p in self._parameters}
        return {name: w.value for name, w in self.inputs.items() if w.value != defaults.get(name)}
