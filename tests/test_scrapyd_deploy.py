"""./scripts/deploy against a real scrapyd: the egg, what is in it, and what can go wrong."""
from __future__ import annotations

import io
import shutil
import subprocess
import sys
import zipfile

import pytest

from ckancrawl.scrapyd.deploy import DeployError, check_egg, deploy
from tests.crawl import PROJECT_ROOT
from tests.fixtures.mongo import free_port
from tests.fixtures.scrapyd import DEPLOYING_SHELL_SECRETS, run_deploy

def test_deploy_uploads_an_egg_with_every_spider_of_the_project(scrapyd_server, deployed_version):
    local = subprocess.run(
        [sys.executable, "-m", "scrapy", "list"], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    with scrapyd_server.client() as client:
        assert deployed_version in client.list_versions()
        assert sorted(client.list_spiders(deployed_version)) == sorted(local)
    assert {"sites", "extensions", "harvest"} <= set(local)


def test_the_egg_holds_only_the_package_and_none_of_the_deploying_shells_secrets(scrapyd_server, deployed_version):
    egg = scrapyd_server.directory / "eggs" / "ckancrawl" / f"{deployed_version}.egg"
    with zipfile.ZipFile(egg) as archive:
        names = archive.namelist()
        contents = b"".join(archive.read(name) for name in names)
    assert all(name.startswith(("ckancrawl/", "EGG-INFO/")) for name in names)
    assert {"ckancrawl/settings.py", "ckancrawl/spiders/sites.py", "EGG-INFO/entry_points.txt"} <= set(names)
    for value in [*DEPLOYING_SHELL_SECRETS.values(), scrapyd_server.password]:
        assert value.encode() not in contents


def test_a_wrong_password_fails_the_deploy_and_uploads_nothing(scrapyd_server, deployed_version):
    with scrapyd_server.client() as client:
        before = client.list_versions()
    done = run_deploy(scrapyd_server, "--version", "2", env={"SCRAPYD_PASSWORD": "wrong-password-123"})
    assert done.returncode == 1
    assert "refused the login (HTTP 401): check SCRAPYD_USERNAME/SCRAPYD_PASSWORD" in done.stderr
    assert "wrong-password-123" not in done.stdout + done.stderr
    with scrapyd_server.client() as client:
        assert client.list_versions() == before


def test_a_scrapyd_that_does_not_run_is_named_in_the_error(scrapyd_server):
    done = run_deploy(scrapyd_server, env={"SCRAPYD_URL": f"http://127.0.0.1:{free_port()}/"})
    assert done.returncode == 1
    assert "could not be reached (connection refused): is it running?" in done.stderr


def test_an_egg_scrapyd_cannot_load_is_an_error_although_scrapyd_answers_http_200(scrapyd_server, tmp_path):
    # scrapyd-deploy itself exits 0 here: scrapyd says {"status": "error"} with HTTP 200.
    root = tmp_path / "broken"
    shutil.copytree(PROJECT_ROOT / "ckancrawl", root / "ckancrawl", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy2(PROJECT_ROOT / "setup.py", root / "setup.py")
    shutil.copy2(PROJECT_ROOT / "scrapy.cfg", root / "scrapy.cfg")
    (root / "ckancrawl" / "spiders" / "broken.py").write_text("raise RuntimeError('this spider module is broken')\n")
    environ = {"SCRAPYD_USERNAME": scrapyd_server.username, "SCRAPYD_PASSWORD": scrapyd_server.password}
    with pytest.raises(DeployError, match="refused the egg: scrapy list failed in the egg: RuntimeError: this spider module is broken"):
        deploy(url=scrapyd_server.url, project="brokenproject", version="1", root=root, environ=environ, out=io.StringIO())


def _egg(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return buffer.getvalue()


GOOD_EGG = {
    "ckancrawl/__init__.py": "",
    "ckancrawl/settings.py": "BOT_NAME = 'ckancrawl'\n",
    "EGG-INFO/entry_points.txt": "[scrapy]\nsettings = ckancrawl.settings\n",
}


def test_the_egg_check_passes_a_clean_egg(tmp_path):
    egg = tmp_path / "good.egg"
    egg.write_bytes(_egg(GOOD_EGG))
    assert check_egg(egg, dict(DEPLOYING_SHELL_SECRETS)) == []


def test_the_egg_check_finds_a_secret_of_the_environment_and_foreign_files(tmp_path):
    egg = tmp_path / "leaky.egg"
    egg.write_bytes(_egg({**GOOD_EGG, "ckancrawl/local.py": f"TOKEN = '{DEPLOYING_SHELL_SECRETS['GITHUB_TOKEN']}'\n", ".env": "X=1"}))
    problems = check_egg(egg, dict(DEPLOYING_SHELL_SECRETS))
    assert "the egg contains the value of GITHUB_TOKEN; secrets must stay in the environment" in problems
    assert "unexpected files in the egg: .env" in problems
