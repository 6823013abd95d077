"""The widget's Promote path end to end: a real JupyterLab whose kernel talks to moto's server on 127.0.0.1.

The lab is started with the moto endpoint and fake credentials in its environment (``AWS_ENDPOINT_URL`` ...), the
way a user's shell would point the standard boto3 chain somewhere, so the kernel's promotion code never knows it
talks to moto. The tests share one page and run in order: the form refuses a missing field next to it; a missing
bucket is one clear notice (no traceback); a good promotion creates the pipeline in moto and the same graph shows
the SageMaker run (badge, console link, the run's status); moto cannot list execution steps, so the run's note
says step statuses are unavailable and the steps keep the state the cloud run gave them (pending: no step status
arrived); reopening the form shows the remembered values. Screenshots go to test-artifacts/.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from ..aws_support import ACCESS_KEY, REGION, ROLE_ARN, SECRET_KEY, MotoServer
from ..notebooks import write_notebook
from .lab import LabPage, LabServer, check_browser, expect, opened_notebook

pytestmark = pytest.mark.browser

NOTEBOOK = "cloud.ipynb"
WORKSPACE = "promote-e2e"
BUCKET = "jp-e2e-bucket"
MISSING_BUCKET = "jp-e2e-no-such-bucket"
STEPS = ["prepare", "total"]
CELLS = [
    "%load_ext jupyter_pipelines",
    "%pipeline show",
    '%%step prepare\nrows = [1, 2, 3]\nprint("rows", len(rows))',
    "%%step total\nresult = sum(rows)\nprint(result)",
]
FORM = ".jp-Pipelines-promoteForm"


def aws_client(moto: MotoServer, service: str) -> Any:
    import boto3

    return boto3.client(
        service,
        endpoint_url=moto.endpoint,
        region_name=REGION,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
    )


@pytest.fixture(scope="module")
def moto(moto_server: MotoServer) -> MotoServer:
    moto_server.reset()
    aws_client(moto_server, "s3").create_bucket(Bucket=BUCKET)
    return moto_server


@pytest.fixture(scope="module")
def cloud_lab(moto: MotoServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LabServer]:
    """A lab of its own: its kernels inherit the moto endpoint (the shared lab must not talk to AWS at all)."""
    check_browser()
    root = tmp_path_factory.mktemp("cloud-lab-root")
    env: dict[str, str | None] = {**moto.env(), "AWS_PROFILE": None, "AWS_SESSION_TOKEN": None}
    server = LabServer.start(root, tmp_path_factory.mktemp("cloud-lab-home"), env)
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="module")
def lab(cloud_lab: LabServer, browser: Any) -> Iterator[LabPage]:
    write_notebook(cloud_lab.root / NOTEBOOK, CELLS)
    with opened_notebook(
        cloud_lab, browser, NOTEBOOK, workspace=WORKSPACE, viewport=(1300, 1000), screenshot="promote-last"
    ) as lab:
        yield lab


def field(lab: LabPage, key: str) -> Any:
    return lab.page.locator(f"{FORM} .jp-Pipelines-promote-{key} input")


def field_error(lab: LabPage, key: str) -> Any:
    return lab.page.locator(f"{FORM} .jp-Pipelines-promoteError-{key}")


def fill_form(lab: LabPage, **values: str) -> None:
    for key, value in values.items():
        field(lab, key).fill(value)
        field(lab, key).press("Tab")


def submit(lab: LabPage) -> None:
    lab.page.locator(f"{FORM} button.jp-Pipelines-promoteSubmit").click()


def test_the_form_names_a_missing_field_next_to_it(lab: LabPage) -> None:
    for index in range(len(CELLS)):
        lab.run_cell(index)
    lab.wait_statuses({"prepare": "cached", "total": "succeeded"}, timeout=60_000)  # upstream from the cache
    promote = lab.button("Promote")
    expect(promote).to_be_enabled()
    promote.click()
    form = lab.page.locator(FORM)
    expect(form).to_be_visible()
    fill_form(lab, role_arn="", bucket=BUCKET, region=REGION)
    submit(lab)
    expect(field_error(lab, "role_arn")).to_have_text("Role ARN is required.")
    expect(field_error(lab, "bucket")).to_have_text("")
    expect(form).to_be_visible()
    lab.screenshot_widget("promote-form-missing-role")


def test_a_missing_bucket_is_one_clear_notice(lab: LabPage, moto: MotoServer) -> None:
    fill_form(lab, role_arn=ROLE_ARN, bucket=MISSING_BUCKET, region=REGION)
    submit(lab)
    notice = lab.page.locator('.jp-Pipelines-notice[data-kind="error"]')
    expect(notice).to_contain_text(MISSING_BUCKET, timeout=30_000)
    text = notice.inner_text()
    assert "Traceback" not in text and "botocore" not in text, text
    assert aws_client(moto, "sagemaker").list_pipelines()["PipelineSummaries"] == []
    lab.screenshot_widget("promote-missing-bucket")


def test_promote_creates_the_pipeline_and_the_graph_shows_the_cloud_run(lab: LabPage, moto: MotoServer) -> None:
    if not lab.page.locator(FORM).is_visible():
        lab.button("Promote").click()
    fill_form(lab, role_arn=ROLE_ARN, bucket=BUCKET, region=REGION)
    submit(lab)
    run = lab.page.locator('.jp-Pipelines-run[data-location="sagemaker"]')
    expect(run).to_be_visible(timeout=60_000)
    expect(lab.page.locator(FORM)).to_be_hidden()
    expect(run.locator(".jp-Pipelines-runBadge")).to_have_text("SageMaker run")
    link = run.locator("a.jp-Pipelines-runLink")
    href = link.get_attribute("href") or ""
    assert href.startswith("https://") and "console.aws.amazon.com/sagemaker" in href, href
    assert link.get_attribute("target") == "_blank"
    assert link.get_attribute("rel") == "noopener noreferrer"
    # moto: the execution is Succeeded at once and ListPipelineExecutionSteps answers 500, so the run finishes
    # with a note and no step status; the cloud run reset the steps, which keep the state it gave them.
    expect(run).to_have_attribute("data-status", "succeeded", timeout=60_000)
    expect(run.locator(".jp-Pipelines-runNote").first).to_contain_text("step statuses are unavailable")
    lab.wait_not_running()
    assert lab.statuses() == dict.fromkeys(STEPS, "pending")
    assert lab.page.locator(".jp-Pipelines-notice[data-kind='error']").count() == 0
    expect(lab.page.locator(".jp-Pipelines-status")).to_contain_text("SageMaker run")
    lab.screenshot_widget("promote-cloud-run")

    sagemaker = aws_client(moto, "sagemaker")
    pipelines = sagemaker.list_pipelines()["PipelineSummaries"]
    assert len(pipelines) == 1, pipelines
    described = sagemaker.describe_pipeline(PipelineName=pipelines[0]["PipelineName"])
    assert described["RoleArn"] == ROLE_ARN
    definition = described["PipelineDefinition"]
    assert all(name in definition for name in STEPS)
    executions = sagemaker.list_pipeline_executions(PipelineName=pipelines[0]["PipelineName"])
    assert len(executions["PipelineExecutionSummaries"]) == 1


def test_reopening_the_form_shows_the_remembered_values(lab: LabPage) -> None:
    lab.button("Promote").click()
    expect(lab.page.locator(FORM)).to_be_visible()
    assert field(lab, "role_arn").input_value() == ROLE_ARN
    assert field(lab, "bucket").input_value() == BUCKET
    assert field(lab, "region").input_value() == REGION
    # remembered by the notebook, not only by the form: they are in its metadata (saved with it)
    settings = lab.page.evaluate(
        "() => window.jupyterapp.shell.currentWidget.context.model.getMetadata('jupyter_pipelines') ?? null"
    )
    assert settings is not None and settings.get("bucket") == BUCKET, settings
    lab.screenshot_widget("promote-form-remembered")
    lab.page.locator(f"{FORM} button.jp-Pipelines-promoteCancel").click()
    expect(lab.page.locator(FORM)).to_be_hidden()
