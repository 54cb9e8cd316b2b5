"""The env runner: per-call time limits, failure counting and logging, and step/init output checks."""

from __future__ import annotations

import asyncio
import logging
import threading
import time

import pytest

from skyrl_core import BaseTextEnvStepOutput
from skyrl_core.generator.env_runner import (
    EnvCall,
    EnvFailure,
    EnvOutputError,
    EnvRunner,
    check_init_output,
    check_step_output,
)


@pytest.fixture
def release():
    event = threading.Event()
    yield event
    event.set()  # let hung calls finish so no thread outlives the test


def _raise(message):
    raise ValueError(message)


def run_all(runner, calls):
    async def main():
        return await asyncio.gather(*(runner.call(call) for call in calls))

    return asyncio.run(main())


def test_results_in_call_order_with_errors_counted(caplog):
    calls = [EnvCall("e", "step", lambda i=i: i * 10) for i in range(6)]
    calls[2] = EnvCall("e_bad", "step", lambda: _raise("first"))
    calls[4] = EnvCall("e_bad", "step", lambda: _raise("second"))
    runner = EnvRunner(max_workers=3, timeout_s=5)
    with caplog.at_level(logging.ERROR, logger="skyrl.env"):
        results = run_all(runner, calls)
    assert [results[i] for i in (0, 1, 3, 5)] == [0, 10, 30, 50]
    assert all(isinstance(results[i], EnvFailure) and results[i].kind == "error" for i in (2, 4))
    assert "step of env 'e_bad' failed: ValueError" in results[2].message
    assert runner.num_errors == 2 and runner.num_timeouts == 0
    assert len(caplog.records) == 1 and caplog.records[0].exc_info is not None


def test_timeout_is_counted_and_waiting_calls_still_run(release):
    # One slot: the hung call holds it until its time limit, then gives it back to the calls waiting behind it.
    calls = [EnvCall("slow", "step", lambda: release.wait(10))] + [EnvCall("e", "step", lambda: "ok")] * 3
    start = time.monotonic()
    runner = EnvRunner(max_workers=1, timeout_s=0.2)
    results = run_all(runner, calls)
    assert time.monotonic() - start < 1.5
    assert isinstance(results[0], EnvFailure) and results[0].kind == "timeout"
    assert "step of env 'slow' took longer than 0.2s" == results[0].message
    assert results[1:] == ["ok"] * 3
    assert runner.num_timeouts == 1 and runner.num_errors == 0


def test_time_limit_counts_from_the_start_of_each_call():
    # One slot, four calls of 0.15 s each and a 0.3 s limit: the last call waits 0.45 s for the slot but succeeds.
    calls = [EnvCall("e", "step", lambda: time.sleep(0.15) or "done")] * 4
    runner = EnvRunner(max_workers=1, timeout_s=0.3)
    assert run_all(runner, calls) == ["done"] * 4
    assert runner.num_timeouts == 0


def test_calls_run_concurrently_without_blocking_the_event_loop():
    # Three 0.3 s calls on three slots take about 0.3 s, and the event loop keeps running meanwhile.
    ticks = []

    async def main(runner):
        async def tick():
            for _ in range(5):
                ticks.append(time.monotonic())
                await asyncio.sleep(0.05)

        calls = [runner.call(EnvCall("e", "step", lambda: time.sleep(0.3) or "done")) for _ in range(3)]
        results, _ = await asyncio.gather(asyncio.gather(*calls), tick())
        return results

    start = time.monotonic()
    assert asyncio.run(main(EnvRunner(max_workers=3, timeout_s=5))) == ["done"] * 3
    assert time.monotonic() - start < 0.8 and len(ticks) == 5 and ticks[-1] - start < 0.5


def test_inline_mode_catches_errors_without_time_limit():
    calls = [EnvCall("e", "init", lambda: time.sleep(0.05) or 1), EnvCall("e", "init", lambda: _raise("x"))]
    runner = EnvRunner(max_workers=0, timeout_s=0.01)
    first, second = run_all(runner, calls)
    assert first == 1 and isinstance(second, EnvFailure) and runner.num_errors == 1


def test_close_failures_are_logged_not_counted(caplog):
    runner = EnvRunner(max_workers=2, timeout_s=1)

    async def main():
        await asyncio.gather(*(runner.close(EnvCall("e", "close", lambda: _raise("leak"))) for _ in range(2)))

    with caplog.at_level(logging.WARNING, logger="skyrl.env"):
        asyncio.run(main())
    assert runner.num_errors == 0
    assert len(caplog.records) == 1 and "close of env 'e' failed" in caplog.records[0].getMessage()


@pytest.mark.parametrize(("workers", "timeout"), [(-1, 1.0), (1, 0.0)])
def test_invalid_settings(workers, timeout):
    with pytest.raises(ValueError):
        EnvRunner(max_workers=workers, timeout_s=timeout)


# -- output checks ------------------------------------------------------------------------------------------------


def test_step_output_attrs_and_dict_forms():
    out = BaseTextEnvStepOutput(observations=[{"role": "user", "content": "hi"}], reward=1, done=False)
    checked = check_step_output(out, "e")
    assert checked.reward == 1.0 and isinstance(checked.reward, float) and checked.observations == out.observations
    checked = check_step_output({"observations": [], "reward": 0.5, "done": True, "metadata": {"a": 1}}, "e")
    assert checked == BaseTextEnvStepOutput(observations=[], reward=0.5, done=True, metadata={"a": 1})


@pytest.mark.parametrize(
    ("output", "message"),
    [
        (None, "step() must return a BaseTextEnvStepOutput (or a dict with keys observations, reward, done), got "
               "NoneType"),
        ({"reward": 1.0}, "step() returned a dict without observations, done"),
        ({"observations": [], "reward": "1", "done": True}, "reward must be a finite real number, got '1'"),
        ({"observations": [], "reward": float("nan"), "done": True}, "reward must be a finite real number"),
        ({"observations": [], "reward": True, "done": True}, "reward must be a finite real number"),
        ({"observations": "hi", "reward": 0.0, "done": True}, "step() observations must be a list of messages"),
        ({"observations": [{"role": "user"}], "reward": 0.0, "done": True}, "{'role': str, 'content': str}"),
        ({"observations": [], "reward": 0.0, "done": True, "postprocessed_action": 3}, "postprocessed_action"),
    ],
)
def test_bad_step_outputs_name_the_env_and_the_problem(output, message):
    with pytest.raises(EnvOutputError, match="^env 'my_env': ") as info:
        check_step_output(output, "my_env")
    assert message in str(info.value)


def test_init_output_check():
    messages = [{"role": "user", "content": "q"}]
    assert check_init_output((messages, None), "e") == (messages, {})
    with pytest.raises(EnvOutputError, match=r"env 'e': init\(\) must return a \(messages, info\) tuple, got list"):
        check_init_output(messages, "e")
