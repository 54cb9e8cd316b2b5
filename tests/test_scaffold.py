"""``skyrl new env NAME``: the generated package installs, passes its own tests, and is found by skyrl."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from conftest import run_skyrl

from skyrl_core.errors import UserError
from skyrl_core.scaffold import EnvNames, render_env, validate_name

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

TEMPLATES = Path(__file__).resolve().parents[1] / "skyrl_core" / "src" / "skyrl_core" / "scaffold" / "templates"
EXPECTED_FILES = {
    "README.md",
    "pyproject.toml",
    "src/{pkg}/__init__.py",
    "src/{pkg}/dataset.py",
    "src/{pkg}/env.py",
    "src/{pkg}/plugin.py",
    "src/{pkg}/py.typed",
    "tests/test_contract.py",
    "tests/test_dataset.py",
}


def files_under(folder: Path) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def wordcount(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """``skyrl new env wordcount`` through the real CLI, then pip-installed into its own target folder."""
    root = tmp_path_factory.mktemp("scaffold")
    package = root / "skyrl-env-wordcount"
    result = run_skyrl("new", "env", "wordcount", "--output-dir", str(package))
    assert result.returncode == 0, result.stderr
    assert files_under(package) == {f.format(pkg="skyrl_env_wordcount") for f in EXPECTED_FILES}
    for line in ("src/skyrl_env_wordcount/env.py", f"pip install -e {package}", f"pytest {package / 'tests'}"):
        assert line in result.stdout, result.stdout
    target = root / "target"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--target", str(target),
         str(package)],
        check=True, capture_output=True, text=True, cwd=root, timeout=300,
    )
    return {"root": root, "package": package, "target": target}


def with_target(target: Path) -> dict[str, str]:
    """Environment entries that put the installed package (and its dist-info) on sys.path."""
    return {"PYTHONPATH": os.pathsep.join(filter(None, [str(target), os.environ.get("PYTHONPATH")]))}


@pytest.mark.slow
def test_generated_package_passes_its_own_tests(wordcount):
    env = {**os.environ, **with_target(wordcount["target"])}
    where = subprocess.run(
        [sys.executable, "-c", "import skyrl_env_wordcount as m; print(m.__file__)"],
        capture_output=True, text=True, env=env, cwd=wordcount["root"], timeout=120,
    )
    assert where.returncode == 0, where.stderr
    # the installed copy, not the src folder
    assert Path(where.stdout.strip()).resolve().is_relative_to(wordcount["target"].resolve()), where.stdout

    result = subprocess.run(
        [sys.executable, "-m", "pytest", str(wordcount["package"] / "tests"), "-v", "-p", "no:cacheprovider",
         "--import-mode=importlib"],
        capture_output=True, text=True, env=env, cwd=wordcount["root"], timeout=600,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output
    assert "SKIPPED" not in output and "FAILED" not in output, output
    for test in ("test_contract.py::TestWordcountEnvContract::test_registered_through_entry_points PASSED",
                 "test_contract.py::TestWordcountEnvContract::test_right_answer_reward PASSED",
                 "test_contract.py::TestWordcountEnvContract::test_wrong_answer_reward PASSED",
                 "test_dataset.py::test_builder_writes_train_and_validation PASSED",
                 "test_dataset.py::test_skyrl_data_command PASSED"):
        assert test in output, output


@pytest.mark.slow
def test_skyrl_plugins_lists_the_installed_package(wordcount):
    result = run_skyrl("plugins", "--json", env=with_target(wordcount["target"]))
    assert result.returncode == 0, result.stderr
    rows = {row["distribution"]: row for row in json.loads(result.stdout)}
    row = rows["skyrl-env-wordcount"]
    assert row["loaded"] is True and row["version"] == "0.1.0"
    assert row["entry_point"] == "skyrl:wordcount -> skyrl_env_wordcount.plugin"
    assert row["hooks"] == ["register_datasets", "register_environments"]
    assert row["registered"] == {"environments": ["wordcount"], "datasets": ["wordcount"]}


@pytest.mark.slow
def test_skyrl_data_builds_the_dataset(wordcount, tmp_path):
    out = tmp_path / "data"
    result = run_skyrl("data", "wordcount", "--output-dir", str(out), "--train-size", "12", "--val-size", "3",
                       env=with_target(wordcount["target"]))
    assert result.returncode == 0, result.stderr
    train = pq.read_table(out / "train.parquet").to_pylist()
    validation = pq.read_table(out / "validation.parquet").to_pylist()
    assert len(train) == 12 and len(validation) == 3
    for row in train + validation:
        assert set(row) == {"data_source", "prompt", "env_class", "reward_spec", "extra_info"}
        assert row["env_class"] == "wordcount"
        assert row["reward_spec"]["ground_truth"] == row["extra_info"]["word"][::-1]

    bad = run_skyrl("data", "wordcount", "--output-dir", str(out), "--min-length", "5", "--max-length", "4",
                    env=with_target(wordcount["target"]))
    assert bad.returncode == 2 and "--max-length" in bad.stderr and "Traceback" not in bad.stderr


def test_generated_pyproject(tmp_path):
    package = tmp_path / "pkg"
    result = run_skyrl("new", "env", "my-env2", "--output-dir", str(package))
    assert result.returncode == 0, result.stderr
    assert files_under(package) == {f.format(pkg="skyrl_env_my_env2") for f in EXPECTED_FILES}
    project = tomllib.loads((package / "pyproject.toml").read_text())
    assert project["project"]["name"] == "skyrl-env-my-env2"
    assert [d.split(">")[0] for d in project["project"]["dependencies"]] == ["skyrl-core"]
    assert project["project"]["entry-points"] == {"skyrl": {"my-env2": "skyrl_env_my_env2.plugin"}}
    assert project["tool"]["setuptools"]["packages"]["find"] == {"where": ["src"]}
    assert "pytest" in project["tool"]
    readme = (package / "README.md").read_text()
    for command in ("pip install", "skyrl data my-env2 --output-dir", "skyrl run --env my-env2 --algo grpo "
                    "trainer.policy.model.path=", "environment.my-env2.format_reward", "data.my-env2.", "pytest"):
        assert command in readme, command
    for path in package.rglob("*"):
        if path.is_file():
            assert "{{" not in path.read_text(), path


def test_hyphenated_name_gives_working_code(tmp_path):
    """The code of ``my-env2`` imports from its src folder, grades, and builds rows (no install needed here)."""
    package = tmp_path / "pkg"
    assert run_skyrl("new", "env", "my-env2", "--output-dir", str(package)).returncode == 0
    code = (
        "import sys\n"
        "import skyrl_env_my_env2.plugin\n"
        "assert 'pyarrow' not in sys.modules and 'torch' not in sys.modules\n"
        "from skyrl_env_my_env2 import MyEnv2Env, MyEnv2EnvConfig, MyEnv2DatasetBuilder, MyEnv2DataConfig\n"
        "from skyrl_env_my_env2.dataset import make_row\n"
        "row = make_row('stone', 'train')\n"
        "assert row['env_class'] == 'my-env2'\n"
        "extras = {k: v for k, v in row.items() if k not in ('prompt', 'env_class')}\n"
        "assert MyEnv2Env(None, extras).step('\\\\boxed{ENOTS}').reward == 1.0\n"
        "strict = MyEnv2EnvConfig(case_sensitive=True, format_reward=0.25)\n"
        "assert MyEnv2Env(strict, extras).step('\\\\boxed{ENOTS}').reward == 0.25\n"
        "assert MyEnv2Env(strict, extras).step('enots').reward == 0.0\n"
        f"files = MyEnv2DatasetBuilder().build(r'{tmp_path / 'data'}', MyEnv2DataConfig(train_size=4, val_size=2))\n"
        "print(files.train)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(package / "src")}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "data" / "train.parquet").is_file()


def test_default_output_dir(tmp_path):
    result = run_skyrl("new", "env", "reverse", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert files_under(tmp_path / "skyrl-env-reverse") == {f.format(pkg="skyrl_env_reverse") for f in EXPECTED_FILES}
    assert "pip install -e ./skyrl-env-reverse" in result.stdout


@pytest.mark.parametrize("name", ["Wordcount", "1env", "my env", "my--env", "env-", "_env", "my.env", "a/b", "é"])
def test_bad_names_are_refused(name):
    with pytest.raises(UserError, match="invalid env name"):
        validate_name(name)


def test_bad_name_through_the_cli(tmp_path):
    result = run_skyrl("new", "env", "My_Env", cwd=tmp_path)
    assert result.returncode == 2
    assert "invalid env name 'My_Env'" in result.stderr and "lowercase" in result.stderr
    assert "Traceback" not in result.stderr
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("name", ["wordcount", "my-env", "math_v2", "a"])
def test_good_names(name):
    validate_name(name)
    names = EnvNames.from_name(name)
    assert names.dist_name == f"skyrl-env-{name}"
    assert names.import_name.isidentifier() and names.class_prefix.isidentifier()


def test_refuses_to_overwrite_a_non_empty_folder(tmp_path):
    package = tmp_path / "taken"
    package.mkdir()
    (package / "keep.txt").write_text("mine")
    (package / "README.md").write_text("old readme")
    result = run_skyrl("new", "env", "wordcount", "--output-dir", str(package))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert str(package) in result.stderr and "--force" in result.stderr
    assert files_under(package) == {"keep.txt", "README.md"}
    assert (package / "README.md").read_text() == "old readme"

    forced = run_skyrl("new", "env", "wordcount", "--output-dir", str(package), "--force")
    assert forced.returncode == 0, forced.stderr
    assert files_under(package) == {"keep.txt"} | {f.format(pkg="skyrl_env_wordcount") for f in EXPECTED_FILES}
    assert (package / "keep.txt").read_text() == "mine"
    assert "skyrl-env-wordcount" in (package / "README.md").read_text()


def test_an_empty_folder_is_fine_and_a_file_is_not(tmp_path):
    (tmp_path / "empty").mkdir()
    assert run_skyrl("new", "env", "wordcount", "--output-dir", str(tmp_path / "empty")).returncode == 0
    (tmp_path / "file").write_text("x")
    result = run_skyrl("new", "env", "wordcount", "--output-dir", str(tmp_path / "file"))
    assert result.returncode == 2 and "not a folder" in result.stderr


def test_templates_are_package_data():
    """Every template ends in .tmpl, which skyrl-core's package-data ships (a wheel has them all)."""
    templates = [p for p in TEMPLATES.rglob("*") if p.is_file() and "__pycache__" not in p.parts]
    assert templates and all(p.name.endswith(".tmpl") for p in templates)
    core = tomllib.loads((TEMPLATES.parents[3] / "pyproject.toml").read_text())
    assert "templates/**/*.tmpl" in core["tool"]["setuptools"]["package-data"]["skyrl_core.scaffold"]
    assert len(render_env("wordcount")) == len(templates)


def test_notes_a_name_that_an_installed_plugin_registers(tmp_path, installed_fixture_plugins):
    # skyrl-env-dupetest registers the env 'echotest'
    target = installed_fixture_plugins["skyrl-env-dupetest"]
    result = run_skyrl("new", "env", "echotest", "--output-dir", str(tmp_path / "a"), env=with_target(target))
    assert result.returncode == 0, result.stderr
    assert "note: environment 'echotest' is already registered by skyrl-env-dupetest 0.3.0" in result.stdout
    # skyrl-env-multiply is installed: a new package of the same name would replace it
    result = run_skyrl("new", "env", "multiply", "--output-dir", str(tmp_path / "b"))
    assert result.returncode == 0, result.stderr
    assert "note: skyrl-env-multiply 0.1.0 is already installed; installing the new package replaces it" in (
        result.stdout)
    assert "note:" not in run_skyrl("new", "env", "brandnew", "--output-dir", str(tmp_path / "c")).stdout
