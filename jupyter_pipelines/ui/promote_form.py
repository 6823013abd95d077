"""The Promote form: role ARN, bucket, region, prefix and profile, checked here before promotion starts.

The widget opens it from the Promote button, prefilled with the notebook's remembered settings; on submit it
hands the values (keyed ``role_arn``, ``bucket``, ``region``, ``prefix``, ``profile``; empty optional fields left
out) to the widget, which calls the session's promote action. Obviously bad values (a missing or malformed role
ARN, bucket or region, a bad prefix) are refused next to their field with the exporter's own checks, which the
session hands over (``WidgetActions.check_setting``), so the user fixes them without a round trip to AWS. None of
these values is a secret: credentials come from the boto3 chain.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

import ipywidgets


@dataclass(frozen=True)
class Field:
    key: str
    label: str
    required: bool
    placeholder: str


FIELDS = (
    Field("role_arn", "Role ARN", True, "arn:aws:iam::123456789012:role/SageMakerRole"),
    Field("bucket", "S3 bucket", True, "my-ml-bucket"),
    Field("region", "Region", True, "us-east-1"),
    Field("prefix", "S3 prefix", False, "optional (default: the pipeline name)"),
    Field("profile", "AWS profile", False, "optional (default: the standard credential chain)"),
)
KEYS = tuple(f.key for f in FIELDS)
Check = Callable[[str, str], str]  # (field key, value) -> what is wrong with it, "" if nothing


def field_errors(values: Mapping[str, str], check: Check | None = None) -> dict[str, str]:
    """Per field, what is wrong with its value: missing, or refused by ``check`` (the session hands the widget
    the exporter's own checks; the widget layer does not import the sagemaker one); {} when all is well."""
    errors: dict[str, str] = {}
    for spec in FIELDS:
        value = values.get(spec.key, "")
        if spec.required and not value:
            errors[spec.key] = f"{spec.label} is required."
        elif value and check is not None:
            problem = check(spec.key, value)
            if problem:
                errors[spec.key] = problem
    return errors


class PromoteForm(ipywidgets.VBox):  # type: ignore[misc]
    """A hidden-by-default form; ``show_form(settings)`` shows it, Promote hands the checked values to ``submit``."""

    def __init__(self, submit: Callable[[dict[str, str]], None], check: Check | None = None) -> None:
        self._submit = submit
        self._check = check
        self.inputs: dict[str, ipywidgets.Text] = {}
        self.errors: dict[str, ipywidgets.Label] = {}
        rows = []
        for spec in FIELDS:
            text = ipywidgets.Text(
                description=spec.label,
                placeholder=spec.placeholder,
                style={"description_width": "100px"},
                layout=ipywidgets.Layout(width="440px"),
            )
            text.add_class(f"jp-Pipelines-promote-{spec.key}")
            error = ipywidgets.Label(value="")
            error.add_class("jp-Pipelines-promoteError")
            error.add_class(f"jp-Pipelines-promoteError-{spec.key}")
            self.inputs[spec.key], self.errors[spec.key] = text, error
            rows.append(ipywidgets.HBox([text, error], layout=ipywidgets.Layout(align_items="center")))
        self.submit_button = ipywidgets.Button(
            description="Promote", button_style="primary", icon="cloud-upload", tooltip="upload, create and start"
        )
        self.cancel_button = ipywidgets.Button(description="Cancel", tooltip="close this form")
        self.submit_button.add_class("jp-Pipelines-promoteSubmit")
        self.cancel_button.add_class("jp-Pipelines-promoteCancel")
        self.submit_button.on_click(lambda _: self.submit())
        self.cancel_button.on_click(lambda _: self.close_form())
        title = ipywidgets.Label(value="Promote to SageMaker Pipelines (credentials come from the AWS chain)")
        buttons = ipywidgets.HBox([self.submit_button, self.cancel_button])
        super().__init__([title, *rows, buttons], layout=ipywidgets.Layout(display="none", padding="4px 0"))
        self.add_class("jp-Pipelines-promoteForm")

    @property
    def is_open(self) -> bool:
        return bool(self.layout.display != "none")

    def show_form(self, settings: Mapping[str, object]) -> None:
        """Show the form; fields with a remembered value take it, the others keep what was typed before."""
        for key, text in self.inputs.items():
            value = settings.get(key)
            if isinstance(value, str) and value:
                text.value = value
            self.errors[key].value = ""
        self.layout.display = "flex"

    def close_form(self) -> None:
        self.layout.display = "none"

    def values(self) -> dict[str, str]:
        """The fields' values, stripped; empty optional fields left out."""
        values = {key: text.value.strip() for key, text in self.inputs.items()}
        return {key: value for key, value in values.items() if value or key in ("role_arn", "bucket", "region")}

    def submit(self) -> bool:
        """Check the values and hand them on; returns whether they passed (errors show next to their fields)."""
        values = self.values()
        errors = field_errors(values, self._check)
        for key, label in self.errors.items():
            label.value = errors.get(key, "")
        if errors:
            return False
        self._submit(values)
        return True
