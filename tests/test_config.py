"""params.yaml validation: typos and wrong types fail with the key's name."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from tsp_pretrain.config import ConfigError, load_params, parse_params

ROOT = Path(__file__).resolve().parents[1]


def _repo_params() -> dict:
    with (ROOT / "params.yaml").open() as f:
        return yaml.safe_load(f)


def test_repository_params_load():
    params = load_params(ROOT / "params.yaml")
    assert params.clip_len == 16
    assert params.clip.seconds == pytest.approx(16 / 15)
    assert params.clip.clip_len == 16 and params.clip.crop_size == params.transform.crop_size
    assert params.dataset("target").format == "activitynet"


def test_unknown_key_is_named():
    data = _repo_params()
    data["decode"]["worker"] = 4
    with pytest.raises(ConfigError, match=r"decode\.worker: unknown key"):
        parse_params(data)


def test_unknown_top_level_key_is_named():
    with pytest.raises(ConfigError, match=r"clip_length: unknown key"):
        parse_params({**_repo_params(), "clip_length": 32})


def test_wrong_type_is_named():
    data = _repo_params()
    data["train"]["epochs"] = "many"
    with pytest.raises(ConfigError, match=r"train\.epochs: .*integer"):
        parse_params(data)


def test_bad_choice_is_named():
    with pytest.raises(ConfigError, match=r"objective: "):
        parse_params({**_repo_params(), "objective": "tssp"})


def test_unknown_dataset_lists_known_ones():
    with pytest.raises(ConfigError, match="known: pretrain, target"):
        parse_params(_repo_params()).dataset("anet")


def test_tsp_csv_needs_csv_files_and_builds_paths():
    data = _repo_params()
    data["datasets"]["target"] = {"format": "tsp_csv", "annotations": "ann", "videos": "v"}
    with pytest.raises(ConfigError, match="csv_files is required"):
        parse_params(data)
    data["datasets"]["target"]["csv_files"] = {"training": "train.csv"}
    source = parse_params(data).dataset("target").annotation_source()
    assert source == {"training": str(Path("ann") / "train.csv")}


def test_params_are_frozen():
    params = parse_params(_repo_params())
    with pytest.raises(ValueError):
        params.clip_len = 3


def test_unreadable_file(tmp_path):
    (tmp_path / "p.yaml").write_text("clip_len: [1\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_params(tmp_path / "p.yaml")
    with pytest.raises(ConfigError, match="not found"):
        load_params(tmp_path / "missing.yaml")


def test_code_digest_tracks_the_named_sources():
    from tsp_pretrain.digest import code_digest

    assert code_digest() == code_digest()
    assert code_digest("video/decode.py") != code_digest("video/store.py")
    assert code_digest("video/decode.py", "video/store.py") != code_digest("video/decode.py")


def test_code_digest_covers_the_imported_modules_only():
    """Without names, the digest covers the library modules the process imported (what dvc.yaml
    lists as the stage's deps), not files the stage never runs."""
    import subprocess
    import sys

    def digest(imports: str) -> str:
        code = f"{imports}\nfrom tsp_pretrain.digest import code_digest\nprint(code_digest())"
        done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        return done.stdout.strip()

    base = digest("import tsp_pretrain.tables")
    assert digest("import tsp_pretrain.tables") == base
    assert digest("import tsp_pretrain.tables, tsp_pretrain.localization.segments") != base
    from tsp_pretrain.digest import code_digest

    assert base == code_digest("__init__.py", "digest.py", "tables.py")


@pytest.mark.parametrize(
    ("section", "change", "named"),
    [
        ("train", {"epochs": 2, "lr_milestones": [10]}, "lr_milestones [10]"),
        ("train", {"epochs": 4, "lr_milestones": [2, 4]}, "[4] outside 1 .. epochs - 1 = 3"),
        ("pretrain", {"epochs": 3, "warmup_epochs": 3, "lr_milestones": []}, "warmup_epochs 3"),
    ],
)
def test_a_schedule_that_does_not_fit_the_epochs_is_refused(section, change, named):
    data = yaml.safe_load((ROOT / "params.yaml").read_text())
    data[section] |= change
    with pytest.raises(ConfigError) as err:
        parse_params(data)
    assert f"  {section}: " in str(err.value) and named in str(err.value)
    assert "git checkout params.yaml" in str(err.value)  # a rejected `-S` stays in the file
    data[section] |= {"epochs": 12, "warmup_epochs": 1, "lr_milestones": [10]}
    parse_params(data)


def test_params_yaml_spells_out_every_parameter():
    """docs/experiments.md says every parameter lives in params.yaml: a key only in config.py (a
    default nobody sees) would change a run without showing in `dvc params diff`."""
    from pydantic import BaseModel

    from tsp_pretrain.config import Params

    raw = yaml.safe_load((ROOT / "params.yaml").read_text())

    def missing(model: type[BaseModel], values: dict, prefix: str) -> list[str]:
        out = []
        for name, field in model.model_fields.items():
            if name not in values:
                out.append(prefix + name)
            elif isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
                out += missing(field.annotation, values[name], f"{prefix}{name}.")
        return out

    assert missing(Params, raw, "") == []
