"""Checks the runtime makes before it starts, and how it logs rejected requests."""

from __future__ import annotations

import logging
from dataclasses import replace

import pytest

from harpagon.errors import ConfigError
from harpagon.model.plan import SharedMachine, SharedMember
from harpagon.serving.metrics import RejectionLog
from harpagon.serving.server import ServingRuntime
from harpagon.serving.toy import ToyAdapter, toy_plan


def test_shared_machines_rejected_before_start() -> None:
    plan, profiles, hardware = toy_plan(20.0, batch_ms=1.0)
    machine = SharedMachine("cpu", 50.0, (SharedMember("square", 1, 5.0),))
    plan = replace(plan, policy="nexus", shared_machines=(machine,))
    with pytest.raises(ConfigError, match=r"places modules square on 1 shared machine\(s\).*--policy harpagon"):
        ServingRuntime(plan, ToyAdapter(batch_ms=0.0), profiles=profiles, hardware=hardware)


def test_rejection_log_summarises_per_interval(caplog: pytest.LogCaptureFixture) -> None:
    now = [0.0]
    log = RejectionLog(interval_s=10.0, clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, logger="harpagon.serving.metrics"):
        for second in range(5):
            now[0] = float(second)
            log.note(503, "overloaded")
        assert caplog.records == []
        now[0] = 12.0
        log.note(400, "image is not a PNG or JPEG file")
    assert len(caplog.records) == 1
    message = caplog.records[0].getMessage()
    assert "rejected 6 requests in the last 12 s" in message
    assert "HTTP 400: 1, HTTP 503: 5" in message
    assert message.endswith("latest: image is not a PNG or JPEG file")
