"""``skyrl_core.testing.EnvContract``: collection, a passing real env, and the messages of broken envs.

Each case writes a test module that subclasses the contract and runs pytest on it in-process (``pytester``).
Envs defined in that module are not installed, so they override ``load_env_class`` and their registration test
is deselected (``-k "not registered"``) or expected to fail.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from skyrl_core.testing import EnvContract, EnvSample

pytest_plugins = ["pytester"]

CONTRACT_TESTS = [
    "test_samples_are_given",
    "test_registered_through_entry_points",
    "test_is_a_base_text_env",
    "test_constructs_from_dataset_row",
    "test_init_returns_conversation",
    "test_step_output_types",
    "test_right_answer_reward",
    "test_wrong_answer_reward",
    "test_metrics_aggregate",
    "test_close_is_safe",
]

#: A module with a contract for an env ``ENV`` defined in the module itself; cases append the env class.
IN_FILE = '''
from skyrl_core import BaseTextEnv, BaseTextEnvStepOutput
from skyrl_core.testing import EnvContract, EnvSample

ROW = {{"data_source": "t", "prompt": [{{"role": "user", "content": "2 * 3?"}}], "env_class": "{name}",
       "reward_spec": {{"method": "rule", "ground_truth": "6"}}, "extra_info": {{}}}}


class GoodEnv(BaseTextEnv):
    def step(self, action):
        right = action.strip() == self.ground_truth
        self.right = right
        return BaseTextEnvStepOutput(observations=[], reward=1.0 if right else 0.0, done=True)

    def get_metrics(self):
        return {{"correct": float(self.right)}}

{env}

class TestInFileContract(EnvContract):
    env_name = "{name}"
    samples = [EnvSample(row=ROW, right="6", wrong="7")]

    def load_env_class(self, plugin_manager):
        return ENV
'''


def _in_file(pytester: pytest.Pytester, env: str, name: str = "myenv") -> None:
    pytester.makepyfile(test_in_file=IN_FILE.format(env=env, name=name))


def test_base_class_collects_no_tests(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_base="""
        from skyrl_core.testing import EnvContract, EnvSample
        TestAliasOfBase = EnvContract

        class TestIntermediate(EnvContract):
            __test__ = False
    """)
    result = pytester.runpytest("--collect-only", "-q")
    assert result.ret == pytest.ExitCode.NO_TESTS_COLLECTED


def test_subclass_collects_every_contract_test(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_sub="""
        from skyrl_core.testing import EnvContract

        class TestIntermediate(EnvContract):
            __test__ = False

        class TestMine(TestIntermediate):
            env_name = "multiply"
    """)
    result = pytester.runpytest("--collect-only", "-q")
    result.stdout.fnmatch_lines([f"test_sub.py::TestMine::{name}" for name in CONTRACT_TESTS], consecutive=False)
    assert sum("::TestMine::" in line for line in result.outlines) == len(CONTRACT_TESTS)
    assert "TestIntermediate::" not in result.stdout.str()


def test_installed_env_passes_everything(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_multiply="""
        from skyrl_core.testing import EnvContract, EnvSample
        from skyrl_env_multiply.dataset import make_row

        class TestMultiply(EnvContract):
            env_name = "multiply"
            samples = [EnvSample(row=make_row(2, 3, 1, "train"), right="\\\\boxed{6}", wrong="\\\\boxed{7}")]
    """)
    pytester.runpytest().assert_outcomes(passed=len(CONTRACT_TESTS))


def test_correct_in_file_env_passes_all_but_registration(pytester: pytest.Pytester) -> None:
    _in_file(pytester, "ENV = GoodEnv")
    pytester.runpytest("-k", "not registered").assert_outcomes(passed=len(CONTRACT_TESTS) - 1, deselected=1)
    result = pytester.runpytest("-k", "registered")
    result.assert_outcomes(failed=1, deselected=len(CONTRACT_TESTS) - 1)
    result.stdout.fnmatch_lines(["*unknown environment 'myenv'*", "*[[]project.entry-points.skyrl]*pip install -e .*"])


def test_dict_step_output_is_accepted(pytester: pytest.Pytester) -> None:
    _in_file(pytester, """
class ENV(GoodEnv):
    def step(self, action):
        out = super().step(action)
        return {"observations": [], "reward": out.reward, "done": True}
""")
    pytester.runpytest("-k", "not registered").assert_outcomes(passed=len(CONTRACT_TESTS) - 1, deselected=1)


def test_string_reward_fails_step_output_types(pytester: pytest.Pytester) -> None:
    _in_file(pytester, """
class ENV(GoodEnv):
    def step(self, action):
        return BaseTextEnvStepOutput(observations=[], reward="1.0", done=True)
""", name="strreward")
    result = pytester.runpytest("-k", "test_step_output_types")
    result.assert_outcomes(failed=1, deselected=len(CONTRACT_TESTS) - 1)
    result.stdout.fnmatch_lines([
        "*env 'strreward': step() reward must be a finite real number, got '1.0' on sample 0 (right answer)*",
        "Troubleshooting: return BaseTextEnvStepOutput(*reward=<float>*",
    ])


@pytest.mark.parametrize(("body", "message"), [
    ("return BaseTextEnvStepOutput(observations=[], reward=True, done=True)", "*reward must be a finite real*True*"),
    ("return BaseTextEnvStepOutput(observations=[], reward=float('nan'), done=True)", "*reward must be a finite*nan*"),
    ("return BaseTextEnvStepOutput(observations=[], reward=1.0, done='yes')", "*done must be a bool, got 'yes'*"),
    ("return BaseTextEnvStepOutput(observations='hi', reward=1.0, done=True)", "*observations must be a list*str*"),
    ("return {'reward': 1.0, 'done': True}", "*step() returned a dict without observations*"),
    ("return 1.0", "*step() must return a BaseTextEnvStepOutput*got float*"),
])
def test_malformed_step_outputs_name_the_field(pytester: pytest.Pytester, body: str, message: str) -> None:
    _in_file(pytester, f"class ENV(GoodEnv):\n    def step(self, action):\n        {body}\n")
    result = pytester.runpytest("-k", "test_step_output_types")
    result.assert_outcomes(failed=1, deselected=len(CONTRACT_TESTS) - 1)
    result.stdout.fnmatch_lines([message, "Troubleshooting: *"])


def test_step_that_raises_names_env_sample_and_error(pytester: pytest.Pytester) -> None:
    _in_file(pytester, """
class ENV(GoodEnv):
    def step(self, action):
        raise ValueError("cannot parse " + action)
""", name="raiser")
    result = pytester.runpytest("-k", "not registered")
    result.assert_outcomes(passed=4, failed=5, deselected=1)
    result.stdout.fnmatch_lines([
        "*env 'raiser' step() raised ValueError: cannot parse 6 on sample 0 (right answer)*",
        "Troubleshooting: *",
        "*The error was raised here:*",
        '*raise ValueError("cannot parse " + action)*',
    ])


def test_constructor_and_init_errors(pytester: pytest.Pytester) -> None:
    _in_file(pytester, """
class ENV(GoodEnv):
    def init(self, prompt):
        return prompt
""", name="badinit")
    result = pytester.runpytest("-k", "test_init_returns_conversation")
    result.assert_outcomes(failed=1, deselected=len(CONTRACT_TESTS) - 1)
    result.stdout.fnmatch_lines(["*env 'badinit': init() must return a (messages, info) tuple, got list on sample 0*"])


def test_missing_super_init_is_reported(pytester: pytest.Pytester) -> None:
    _in_file(pytester, """
class ENV(GoodEnv):
    def __init__(self, env_config=None, extras=None):
        self.extras = extras
""", name="nosuper")
    result = pytester.runpytest("-k", "test_constructs_from_dataset_row")
    result.assert_outcomes(failed=1, deselected=len(CONTRACT_TESTS) - 1)
    result.stdout.fnmatch_lines(["*env.ground_truth is '<unset>', expected *'6'*",
                                 "*super().__init__(env_config, extras)*"])


def test_wrong_reward_is_reported_with_the_action(pytester: pytest.Pytester) -> None:
    _in_file(pytester, """
class ENV(GoodEnv):
    def step(self, action):
        self.right = True
        return BaseTextEnvStepOutput(observations=[], reward=1.0, done=True)
""", name="always")
    result = pytester.runpytest("-k", "reward")
    result.assert_outcomes(passed=1, failed=1, deselected=len(CONTRACT_TESTS) - 2)
    result.stdout.fnmatch_lines(["*env 'always' gave reward 1.0 for the wrong answer of sample 0, expected 0.0*'7'*"])


def test_bad_metrics_and_close(pytester: pytest.Pytester) -> None:
    _in_file(pytester, """
class ENV(GoodEnv):
    def get_metrics(self):
        return {"answer": "six"}

    def close(self):
        raise RuntimeError("double free")
""", name="messy")
    result = pytester.runpytest("-k", "metrics or close")
    result.assert_outcomes(failed=2, deselected=len(CONTRACT_TESTS) - 2)
    result.stdout.fnmatch_lines([
        "*get_metrics() value 'answer' must be a number (int or float), got str 'six'*",
        "*env 'messy' close() raised RuntimeError: double free on sample 0 (after an episode)*",
    ], consecutive=False)


def test_bad_aggregate_metrics(pytester: pytest.Pytester) -> None:
    _in_file(pytester, """
class ENV(GoodEnv):
    @staticmethod
    def aggregate_metrics(metrics):
        return {"accuracy": float("inf")}
""", name="inf")
    result = pytester.runpytest("-k", "metrics")
    result.stdout.fnmatch_lines(["*aggregate_metrics() value 'accuracy' must be a finite float, got float inf*"])


def test_not_a_base_text_env(pytester: pytest.Pytester) -> None:
    _in_file(pytester, "ENV = GoodEnv()", name="instance")
    result = pytester.runpytest("-k", "test_is_a_base_text_env")
    result.assert_outcomes(failed=1, deselected=len(CONTRACT_TESTS) - 1)
    result.stdout.fnmatch_lines(["*registered as an instance of GoodEnv, not a BaseTextEnv subclass*"])


def test_no_samples(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_empty="""
        from skyrl_core.testing import EnvContract

        class TestEmpty(EnvContract):
            env_name = "multiply"
    """)
    result = pytester.runpytest("-rs")
    result.assert_outcomes(passed=2, failed=1, skipped=len(CONTRACT_TESTS) - 3)
    result.stdout.fnmatch_lines(["*TestEmpty.samples is empty*", "Troubleshooting: set samples = [[]EnvSample(*"])


def test_bad_row_and_env_class_mismatch(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_rows="""
        from skyrl_core.testing import EnvContract, EnvSample

        class TestRows(EnvContract):
            env_name = "multiply"
            samples = [EnvSample(row={"prompt": "What is 2 * 3?", "env_class": "multiply"}, right="", wrong="")]

        class TestOther(EnvContract):
            env_name = "multiply"
            samples = [EnvSample(row={"prompt": [{"role": "user", "content": "hi"}], "env_class": "gsm8k"},
                                 right="", wrong="")]
    """)
    result = pytester.runpytest("-k", "test_constructs_from_dataset_row")
    result.assert_outcomes(failed=2, deselected=2 * (len(CONTRACT_TESTS) - 1))
    result.stdout.fnmatch_lines([
        "*sample 0: the row is not a valid dataset row: column 'prompt': expected a list of {role, content}*",
        "*sample 0: the row's env_class is 'gsm8k', but env_name is 'multiply'*",
    ], consecutive=False)


def test_sample_fields_are_checked() -> None:
    sample = EnvSample(row={"prompt": []}, right="a", wrong="b")
    assert (sample.right_reward, sample.wrong_reward, sample.max_turns) == (1.0, 0.0, 1)
    with pytest.raises(TypeError):
        EnvSample(row=[], right="a", wrong="b")  # type: ignore[arg-type]
    assert EnvContract.__test__ is False


def test_package_import_does_not_need_pytest() -> None:
    """``skyrl model tiny`` imports ``skyrl_core.testing.tiny_model``: the contract (and pytest) load on first use."""
    code = ("import sys, skyrl_core.testing\n"
            "assert 'skyrl_core.testing.env_contract' not in sys.modules and 'pytest' not in sys.modules\n"
            "assert skyrl_core.testing.EnvContract.__name__ == 'EnvContract'\n")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
