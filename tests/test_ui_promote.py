"""The widget's Promote form: prefilled from the remembered settings, checked before the action runs, values
handed over keyed as the session expects, errors shown next to the field or as the notice."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from jupyter_pipelines.engine.events import RunStarted
from jupyter_pipelines.errors import PipelineError
from jupyter_pipelines.sagemaker.config import setting_problem
from jupyter_pipelines.ui import PipelineWidget
from jupyter_pipelines.ui.promote_form import field_errors
from jupyter_pipelines.ui.widget import BUSY, PROMOTE_TOOLTIP

from .test_ui_widget import Calls, pipeline

ROLE = "arn:aws:iam::123456789012:role/SageMakerRole"
REMEMBERED = {"role_arn": ROLE, "bucket": "team-bucket", "region": "eu-west-1", "name": "demo"}


class Promotion:
    def __init__(self, settings: Mapping[str, str] | None = None, error: str | None = None) -> None:
        self.settings = dict(settings or {})
        self.error = error
        self.calls: list[dict[str, str]] = []

    def promote(self, values: Mapping[str, str]) -> str:
        self.calls.append(dict(values))
        if self.error:
            raise PipelineError(self.error)
        return f"promoting to {values['bucket']}: execution starting"

    def widget(self, **extra: Any) -> PipelineWidget:
        actions = Calls().actions(
            promote=self.promote, promote_settings=lambda: self.settings, check_setting=setting_problem, **extra
        )
        return PipelineWidget(pipeline(), actions)


def fill(widget: PipelineWidget, **values: str) -> None:
    for key, value in values.items():
        widget.promote_form.inputs[key].value = value


def errors_shown(widget: PipelineWidget) -> dict[str, str]:
    return {key: label.value for key, label in widget.promote_form.errors.items() if label.value}


def test_promote_opens_the_form_prefilled_from_the_remembered_settings() -> None:
    promotion = Promotion(REMEMBERED)
    widget = promotion.widget()
    assert not widget.promote_button.disabled and widget.promote_button.tooltip == PROMOTE_TOOLTIP
    assert not widget.promote_form.is_open
    widget.promote_button.click()
    form = widget.promote_form
    assert form.is_open
    assert {k: t.value for k, t in form.inputs.items()} == {
        "role_arn": ROLE,
        "bucket": "team-bucket",
        "region": "eu-west-1",
        "prefix": "",
        "profile": "",
    }
    form.cancel_button.click()
    assert not form.is_open and promotion.calls == []


def test_submit_hands_over_the_values_and_closes() -> None:
    promotion = Promotion(REMEMBERED)
    widget = promotion.widget()
    widget.promote_button.click()
    fill(widget, prefix=" team/churn ", profile="dev")
    widget.promote_form.submit_button.click()
    assert promotion.calls == [
        {"role_arn": ROLE, "bucket": "team-bucket", "region": "eu-west-1", "prefix": "team/churn", "profile": "dev"}
    ]
    assert widget.graph.notice == {"text": "promoting to team-bucket: execution starting", "kind": "info"}
    assert not widget.promote_form.is_open
    # Reopened with remembered settings lacking the profile: the field keeps what was typed.
    widget.promote_button.click()
    assert widget.promote_form.inputs["profile"].value == "dev"


def test_empty_optional_fields_are_left_out() -> None:
    promotion = Promotion()
    widget = promotion.widget()
    widget.promote_button.click()
    fill(widget, role_arn=ROLE, bucket="b-1", region="us-east-1")
    widget.promote_form.submit_button.click()
    assert promotion.calls == [{"role_arn": ROLE, "bucket": "b-1", "region": "us-east-1"}]


def test_missing_fields_are_named_next_to_them_and_nothing_is_called() -> None:
    promotion = Promotion()
    widget = promotion.widget()
    widget.promote_button.click()
    fill(widget, bucket="b-1")
    widget.promote_form.submit_button.click()
    assert promotion.calls == [] and widget.promote_form.is_open
    assert errors_shown(widget) == {"role_arn": "Role ARN is required.", "region": "Region is required."}
    fill(widget, role_arn=ROLE, region="us-east-1")
    widget.promote_form.submit_button.click()
    assert len(promotion.calls) == 1 and errors_shown(widget) == {}


def test_malformed_values_get_the_exporters_message_without_the_flag_hint() -> None:
    errors = field_errors(
        {"role_arn": "arn:aws:iam::12:role/x", "bucket": "Bad_Bucket", "region": "mars", "prefix": "/lead"},
        setting_problem,
    )
    assert set(errors) == {"role_arn", "bucket", "region", "prefix"}
    assert "not a valid IAM role ARN" in errors["role_arn"] and "%pipeline config" not in errors["role_arn"]
    assert "not a valid S3 bucket name" in errors["bucket"]
    assert "not a valid AWS region" in errors["region"]
    assert "not a valid S3 key prefix" in errors["prefix"]
    good = {"role_arn": ROLE, "bucket": "b-1", "region": "us-east-1", "profile": "any thing"}
    assert field_errors(good, setting_problem) == {}


def test_a_promotion_error_is_the_notice_and_the_form_stays_open() -> None:
    promotion = Promotion(REMEMBERED, error="the bucket 'team-bucket' does not exist in eu-west-1.")
    widget = promotion.widget()
    widget.promote_button.click()
    widget.promote_form.submit_button.click()
    assert widget.graph.notice == {"text": "the bucket 'team-bucket' does not exist in eu-west-1.", "kind": "error"}
    assert widget.promote_form.is_open and len(promotion.calls) == 1


def test_unreadable_settings_still_open_the_form() -> None:
    def broken() -> Mapping[str, str]:
        raise PipelineError("cannot read the notebook's settings.")

    widget = PipelineWidget(pipeline(), Calls().actions(promote=lambda v: "ok", promote_settings=broken))
    widget.promote_button.click()
    assert widget.promote_form.is_open
    assert widget.graph.notice == {"text": "cannot read the notebook's settings.", "kind": "error"}


def test_promote_is_disabled_during_a_run() -> None:
    promotion = Promotion(REMEMBERED)
    widget = promotion.widget()
    widget.promote_button.click()
    widget.handle_event(RunStarted("r1", "demo", ("load",)))
    widget.flush()
    assert widget.promote_button.disabled and widget.promote_button.tooltip == BUSY
    assert widget.promote_form.submit_button.disabled


def test_no_secret_reaches_widget_state() -> None:
    """The form has no secret fields: credentials come from the boto3 chain, never from the widget."""
    from jupyter_pipelines.ui.promote_form import KEYS

    assert KEYS == ("role_arn", "bucket", "region", "prefix", "profile")
    widget = Promotion(REMEMBERED).widget()
    assert all(type(t).__name__ == "Text" for t in widget.promote_form.inputs.values())


def test_the_background_promotions_outcome_is_the_notice() -> None:
    """The session's promotion thread reports as ``RunNote("promote", ...)``: no run of the graph's own."""
    from jupyter_pipelines.engine.events import RunNote

    promotion = Promotion(REMEMBERED)
    widget = promotion.widget()
    widget.promote_button.click()
    widget.promote_form.submit_button.click()
    assert not widget.promote_form.is_open
    widget.handle_event(
        RunNote("promote", "promotion failed: the S3 bucket 'team-bucket' does not exist.", level="error")
    )
    assert widget.graph.notice == {
        "text": "promotion failed: the S3 bucket 'team-bucket' does not exist.",
        "kind": "error",
    }
    assert widget.promote_form.is_open  # to fix the bucket
    assert widget.state.notes == [] and widget.state.run_id is None  # no run was shown or invented
    widget.promote_form.submit_button.click()
    widget.handle_event(RunStarted("arn:aws:sagemaker:us-east-1:1:pipeline/demo/execution/e1", "demo", ("load",)))
    widget.handle_event(RunNote("promote", "uploaded 2 objects;\ncreated pipeline demo"))
    assert widget.graph.notice == {"text": "uploaded 2 objects; created pipeline demo", "kind": "info"}
    assert not widget.promote_form.is_open
