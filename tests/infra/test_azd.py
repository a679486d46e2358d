"""The azd wiring: azure.yaml, the parameters file, the predeploy hook and the deployment package."""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from .bicep_model import INFRA, MAIN, REPO, template

HOOK = INFRA / "hooks" / "predeploy.sh"
FUNCTION_APP = INFRA / "modules" / "functionapp.bicep"


def azure_yaml() -> dict:
    return yaml.safe_load((REPO / "azure.yaml").read_text(encoding="utf-8"))


def test_azure_yaml_deploys_the_repo_root_as_a_python_function_app():
    doc = azure_yaml()
    assert doc["infra"] == {"provider": "bicep", "path": "infra", "module": "main"}
    (name, service), *rest = doc["services"].items()
    assert not rest
    assert service == {"project": ".", "language": "python", "host": "function"}
    # azd finds the app by its azd-service-name tag.
    site = template(FUNCTION_APP)
    assert site.parameters["serviceName"]["default"] == name
    assert "'azd-service-name': serviceName" in site.text
    for project_file in ("function_app.py", "host.json", "requirements.txt"):
        assert (REPO / project_file).exists()


def test_the_predeploy_hook_runs_the_script():
    hooks = azure_yaml()["hooks"]
    assert set(hooks) == {"predeploy"}
    for platform in hooks["predeploy"].values():
        assert platform["run"] == "bash ./infra/hooks/predeploy.sh"
        assert platform["continueOnError"] is False
    assert HOOK.exists()
    assert subprocess.run(["bash", "-n", str(HOOK)], check=False).returncode == 0


def test_parameters_file_maps_only_known_parameters_and_azd_can_fill_the_rest():
    main = template(MAIN)
    mapped = json.loads((INFRA / "main.parameters.json").read_text(encoding="utf-8"))["parameters"]
    assert set(mapped) <= set(main.parameters)
    assert mapped["workerImage"]["value"] == "${WORKER_IMAGE}"
    for name, param in main.parameters.items():
        if param["default"] is not None or name in mapped:
            continue
        # Otherwise azd would prompt: only the signing key, which azd generates.
        assert main.decorators(name).get("metadata", {}).get("azd", {}).get("type") == "generate", name


def test_the_hook_reads_only_outputs_the_template_provides():
    used = set(re.findall(r"\$\{([A-Z][A-Z0-9_]+)", HOOK.read_text(encoding="utf-8")))
    outputs = set(template(MAIN).outputs)
    own = {"FORCE_WORKER_BUILD"}
    assert used - own <= outputs, sorted(used - own - outputs)


# ---- the hook, run against stand-ins for az and azd ----

STUB_AZ = r"""#!/usr/bin/env bash
echo "az $*" >> "$STUB_LOG"
case "$1 $2" in
  "acr repository") [ "${STUB_IMAGE_EXISTS:-0}" = 1 ] && exit 0 || exit 3 ;;
  "acr build")
    context="${@: -1}"
    (cd "$context" && find . -type f | sort) > "$STUB_CONTEXT"
    exit 0 ;;
  "functionapp config")
    if [ "$4" = list ]; then echo "${STUB_CURRENT_IMAGE:-}"; fi
    exit 0 ;;
esac
exit 9
"""
STUB_AZD = """#!/usr/bin/env bash
echo "azd $*" >> "$STUB_LOG"
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "infra" / "hooks").mkdir(parents=True)
    shutil.copy(HOOK, root / "infra" / "hooks" / "predeploy.sh")
    for rel, text in {
        "worker/Dockerfile": "FROM python:3.11-slim\n",
        "worker/__main__.py": "print('worker')\n",
        "videojob/__init__.py": "",
        "videojob/contract/wire.py": "WIRE = 1\n",
        "videojob/domain/settings.py": "SETTINGS = 1\n",
        "README.md": "readme\n",
        ".gitignore": "node_modules/\nlocal.settings.json\n.venv/\n",
        "node_modules/big/index.js": "x\n",
        ".venv/lib/site.py": "x\n",
        "local.settings.json": '{"Values": {"CALLBACK_SIGNING_KEY": "secret"}}\n',
    }.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for name, body in (("az", STUB_AZ), ("azd", STUB_AZD)):
        (bin_dir / name).write_text(body)
        (bin_dir / name).chmod(0o755)
    return root


def run_hook(root: Path, **extra: str) -> tuple[subprocess.CompletedProcess, list[str], list[str]]:
    log = root.parent / "calls.log"
    context = root.parent / "context.txt"
    log.unlink(missing_ok=True)
    context.unlink(missing_ok=True)
    env = {
        "PATH": f"{root.parent / 'bin'}{os.pathsep}{os.environ['PATH']}",
        "HOME": str(root.parent),
        "STUB_LOG": str(log),
        "STUB_CONTEXT": str(context),
        "AZURE_CONTAINER_REGISTRY_NAME": "crtest",
        "AZURE_CONTAINER_REGISTRY_ENDPOINT": "crtest.azurecr.io",
        "AZURE_RESOURCE_GROUP": "rg-test",
        "AZURE_FUNCTION_APP_NAME": "func-test",
        **extra,
    }
    run = subprocess.run(
        ["bash", str(root / "infra" / "hooks" / "predeploy.sh")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    calls = log.read_text().splitlines() if log.exists() else []
    files = context.read_text().splitlines() if context.exists() else []
    return run, calls, files


def _image(calls: list[str]) -> str:
    (line,) = [c for c in calls if c.startswith("azd env set WORKER_IMAGE ")]
    return line.split()[-1]


def test_hook_builds_a_content_tagged_image_and_points_the_app_at_it(project: Path):
    run, calls, files = run_hook(project)
    assert run.returncode == 0, run.stderr
    image = _image(calls)
    assert re.fullmatch(r"crtest\.azurecr\.io/video-worker:src-[0-9a-f]{16}", image)
    tag = image.split("/", 1)[1]
    (build,) = [c for c in calls if c.startswith("az acr build ")]
    assert f"--registry crtest --image {tag} " in build
    assert "--file worker/Dockerfile" in build
    # The upload holds the sources, never ignored files (virtualenvs, node_modules, local secrets).
    assert "./worker/Dockerfile" in files and "./videojob/__init__.py" in files
    assert not any(f.startswith(("./node_modules", "./.venv")) or "local.settings.json" in f for f in files), files
    (update,) = [c for c in calls if "appsettings set" in c]
    assert f"--settings WORKER_IMAGE={image}" in update
    assert "--output none" in update


def test_hook_skips_an_image_that_exists_and_an_app_already_pointing_at_it(project: Path):
    _, first, _ = run_hook(project)
    image = _image(first)
    run, calls, _ = run_hook(project, STUB_IMAGE_EXISTS="1", STUB_CURRENT_IMAGE=image)
    assert run.returncode == 0, run.stderr
    assert not any(c.startswith("az acr build") for c in calls)
    assert not any("appsettings set" in c for c in calls)
    assert _image(calls) == image  # the azd environment still records it for the next provision


def test_the_tag_follows_the_worker_sources_only(project: Path):
    _, calls, _ = run_hook(project)
    before = _image(calls)
    (project / "README.md").write_text("changed\n")
    _, calls, _ = run_hook(project)
    assert _image(calls) == before
    # The image holds worker/ and videojob/contract/ only (issue 20): the app's domain is not in it.
    (project / "videojob" / "domain" / "settings.py").write_text("SETTINGS = 2\n")
    _, calls, _ = run_hook(project)
    assert _image(calls) == before
    (project / "videojob" / "contract" / "wire.py").write_text("WIRE = 2\n")
    _, calls, _ = run_hook(project)
    assert _image(calls) != before
    before = _image(calls)
    (project / "worker" / "__main__.py").write_text("print('changed')\n")
    _, calls, _ = run_hook(project)
    changed = _image(calls)
    assert changed != before
    (project / "worker" / "__main__.py").rename(project / "worker" / "main.py")
    _, calls, _ = run_hook(project)
    assert _image(calls) not in (before, changed)


def test_hook_stops_before_provisioning_has_run(project: Path):
    run, calls, _ = run_hook(project, AZURE_CONTAINER_REGISTRY_NAME="")
    assert run.returncode != 0
    assert "AZURE_CONTAINER_REGISTRY_NAME" in run.stderr
    assert calls == []


# ---- the deployment package ----


def _funcignore_patterns() -> list[str]:
    lines = (REPO / ".funcignore").read_text(encoding="utf-8").splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.startswith("#")]


def _ignored(rel: str, patterns: list[str]) -> bool:
    parts = rel.split("/")
    for p in patterns:
        if p.endswith("/"):
            if any(fnmatch.fnmatch(d, p[:-1]) for d in parts[:-1]):
                return True
        elif any(fnmatch.fnmatch(part, p) for part in parts):
            return True
    return False


def test_funcignore_keeps_everything_the_function_app_imports():
    probe = (
        "import json, sys; import function_app; "
        "print(json.dumps(sorted({m.__file__ for m in list(sys.modules.values()) if getattr(m, '__file__', None)})))"
    )
    run = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    ours = []
    for f in json.loads(run.stdout):
        path = Path(f).resolve()
        if path.is_relative_to(REPO) and not path.is_relative_to(REPO / ".venv"):
            ours.append(path.relative_to(REPO).as_posix())
    assert "function_app.py" in ours and any(p.startswith("videojob/") for p in ours)
    patterns = _funcignore_patterns()
    needed = ours + ["host.json", "requirements.txt"]
    assert not [p for p in needed if _ignored(p, patterns)], "the package would miss these"
    # ...and the bulky or secret local files stay out.
    for local in ("node_modules/x/index.js", ".venv/bin/python", "local.settings.json", "tests/x.py", ".azure/e/.env"):
        assert _ignored(local, patterns), local
