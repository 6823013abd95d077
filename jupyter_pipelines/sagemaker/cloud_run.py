"""A SageMaker execution followed on a background thread, so the kernel stays free while the cloud run goes on.

The live session keeps one of these after a promotion that started an execution: its events reach the widget
and the cell like a local run's, and the session's Stop cancels it, which makes the follow loop ask SageMaker to
stop the execution (``stop_pipeline_execution``) and follow it until it has stopped.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from ..engine.events import Event, RunNote, RunStatus
from ..engine.runs import CancelToken
from ..errors import PipelineError
from ..model import Pipeline
from .aws import Clients
from .promote import Promoted, follow

__all__ = ["CloudRun", "follow_in_background"]


@dataclass
class CloudRun:
    promoted: Promoted
    thread: threading.Thread
    cancel: CancelToken = field(default_factory=CancelToken)
    status: RunStatus | None = None
    error: BaseException | None = None

    def running(self) -> bool:
        return self.thread.is_alive()

    def stop(self) -> bool:
        """Ask the follow loop to stop the execution; whether it was still being followed."""
        if not self.running():
            return False
        self.cancel.cancel()
        return True


def follow_in_background(
    promoted: Promoted, pipeline: Pipeline, clients: Clients, publish: Callable[[Event], None]
) -> CloudRun:
    """Follow ``promoted``'s execution on a daemon thread, publishing its events; a failure becomes a RunNote."""
    assert promoted.execution_arn is not None
    arn = promoted.execution_arn

    def work() -> None:
        try:
            run.status = follow(promoted, pipeline, clients, publish, cancel=run.cancel)
        except PipelineError as error:
            run.error = error
            publish(RunNote(arn, f"stopped following the SageMaker execution: {error}", level="error"))
        except BaseException as error:  # a bug: kept for the session, said once, never lost
            run.error = error
            publish(RunNote(arn, f"following the SageMaker execution failed: {error!r}", level="error"))

    run = CloudRun(promoted, threading.Thread(target=work, name="jupyter-pipelines-follow", daemon=True))
    run.thread.start()
    return run
