"""Build the project's egg with scrapyd-deploy, check it, and deploy it (scripts/deploy).

1. The target comes from the project's scrapy.cfg: ``[deploy]`` (the default target) or
   ``[deploy:NAME]``; ``--url`` or SCRAPYD_URL replaces its url.
2. The project's code (ckancrawl/, setup.py, scrapy.cfg) is copied to a temporary
   directory and the egg is built there (``scrapyd-deploy --build-egg``), so that builds
   never collide in the shared working tree and nothing else of the tree can slip in.
3. The egg is checked before it leaves: only ``ckancrawl/`` and ``EGG-INFO/``, the
   settings entry point, and none of the secrets present in this environment
   (CKAN_API_KEY, GITHUB_TOKEN(S), MONGODB_URI, SCRAPYD_PASSWORD,
   JOB_SUMMARY_WEBHOOK_URL) anywhere in its bytes.
4. ``scrapyd-deploy TARGET --egg EGG --version V`` uploads it (addversion.json). The
   credentials go to scrapyd-deploy through SCRAPYD_USERNAME and SCRAPYD_PASSWORD in
   its environment (scrapy.cfg expands ``${...}`` in the target), never on a command
   line. scrapyd-deploy exits 0 on an HTTP 200 that says ``"status": "error"``: the
   answer is checked here.
5. The version's spiders are listed from scrapyd and compared with the local ones.

The version is the deploy time in seconds since the epoch (as scrapyd-deploy's own
default), so that scrapyd's newest version, the one it runs, is the last deployed; the
git commit is printed beside it.
"""
from __future__ import annotations

import argparse
import configparser
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

from ckancrawl.scrapyd.client import ScrapydClient, ScrapydError, ScrapydUnauthorized, ScrapydUnavailable
from ckancrawl.scrapyd.jobs import check_name

PROJECT_ROOT = Path(__file__).resolve().parents[2]
#: Environment variables whose values must never be inside an egg.
SECRET_VARIABLES = (
    "CKAN_API_KEY",
    "GITHUB_TOKEN",
    "GITHUB_TOKENS",
    "MONGODB_URI",
    "SCRAPYD_PASSWORD",
    "JOB_SUMMARY_WEBHOOK_URL",
)
ALLOWED_TOP = ("ckancrawl/", "EGG-INFO/")


class DeployError(Exception):
    pass


@dataclass(frozen=True)
class Target:
    name: str
    url: str
    project: str


def read_target(name: str, url: str | None, project: str | None, root: Path = PROJECT_ROOT) -> Target:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(root / "scrapy.cfg", encoding="utf-8")
    base = dict(parser.items("deploy")) if parser.has_section("deploy") else {}
    if name != "default":
        section = f"deploy:{name}"
        if not parser.has_section(section):
            known = ["default"] * bool(base) + [s[7:] for s in parser.sections() if s.startswith("deploy:")]
            raise DeployError(f"no deploy target {name!r} in scrapy.cfg (known: {', '.join(known) or 'none'})")
        base.update(parser.items(section))
    resolved_url = url or base.get("url")
    if not resolved_url or "${" in resolved_url:
        raise DeployError(f"deploy target {name!r} has no url: give --url or SCRAPYD_URL, or set it in scrapy.cfg")
    return Target(name, resolved_url, check_name("project", project or base.get("project") or "ckancrawl"))


def stage(root: Path, directory: Path, target: Target) -> None:
    """Copy what the egg is built from into ``directory``, with a scrapy.cfg for ``target``."""
    shutil.copytree(root / "ckancrawl", directory / "ckancrawl", ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    shutil.copy2(root / "setup.py", directory / "setup.py")
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read(root / "scrapy.cfg", encoding="utf-8")
    for section in [s for s in cfg.sections() if s == "deploy" or s.startswith("deploy:")]:
        cfg.remove_section(section)
    cfg["deploy"] = {
        "url": target.url,
        "project": target.project,
        # Expanded by scrapyd-deploy from its environment (scrapyd_client.utils.EnvInterpolation).
        "username": "${SCRAPYD_USERNAME}",
        "password": "${SCRAPYD_PASSWORD}",
    }
    with open(directory / "scrapy.cfg", "w", encoding="utf-8") as handle:
        cfg.write(handle)


def scrapyd_deploy() -> list[str]:
    beside = Path(sys.executable).with_name("scrapyd-deploy")
    found = str(beside) if beside.exists() else shutil.which("scrapyd-deploy")
    if not found:
        raise DeployError("scrapyd-deploy is not installed: it comes with scrapyd-client (requirements-dev.txt)")
    return [found]


def build_egg(directory: Path, egg: Path) -> None:
    done = subprocess.run(
        [*scrapyd_deploy(), "--build-egg", str(egg)], cwd=directory, capture_output=True, text=True,
        stdin=subprocess.DEVNULL,
    )
    if done.returncode != 0 or not egg.is_file():
        raise DeployError(f"building the egg failed:\n{(done.stderr + done.stdout)[-2000:]}")


def check_egg(egg: Path, environ: dict[str, str]) -> list[str]:
    """Problems with the egg: foreign files, no settings entry point, secrets inside."""
    problems = []
    with zipfile.ZipFile(egg) as archive:
        names = archive.namelist()
        foreign = [n for n in names if not n.startswith(ALLOWED_TOP)]
        if foreign:
            problems.append(f"unexpected files in the egg: {', '.join(foreign[:10])}")
        if "ckancrawl/settings.py" not in names:
            problems.append("the egg has no ckancrawl/settings.py")
        entry_points = archive.read("EGG-INFO/entry_points.txt").decode() if "EGG-INFO/entry_points.txt" in names else ""
        if "settings = ckancrawl.settings" not in entry_points:
            problems.append("the egg has no 'scrapy' settings entry point (setup.py entry_points)")
        contents = b"".join(archive.read(name) for name in names)
    for variable in SECRET_VARIABLES:
        value = environ.get(variable, "")
        for secret in [v for v in value.replace(",", " ").split() if len(v) >= 8]:
            if secret.encode() in contents:
                problems.append(f"the egg contains the value of {variable}; secrets must stay in the environment")
                break
    return problems


def upload(directory: Path, egg: Path, target: Target, version: str, environ: dict[str, str]) -> dict:
    env = dict(environ)
    # Both must be set, even empty, or scrapy.cfg's ${...} would be sent literally.
    env.setdefault("SCRAPYD_USERNAME", "")
    env.setdefault("SCRAPYD_PASSWORD", "")
    if not env["SCRAPYD_USERNAME"]:
        env["SCRAPYD_PASSWORD"] = ""
    done = subprocess.run(
        [*scrapyd_deploy(), "default", "--egg", str(egg), "--version", version],
        cwd=directory, env=env, capture_output=True, text=True, stdin=subprocess.DEVNULL,
    )
    text = done.stdout.strip()
    try:
        answer = json.loads(text.splitlines()[0]) if text else None
    except ValueError:
        answer = None
    if done.returncode != 0 or not isinstance(answer, dict):
        detail = (done.stderr + done.stdout).strip()
        if "(401)" in detail:
            hint = "set SCRAPYD_USERNAME and SCRAPYD_PASSWORD" if not env["SCRAPYD_USERNAME"] else "check SCRAPYD_USERNAME/SCRAPYD_PASSWORD"
            raise DeployError(f"scrapyd at {target.url} refused the login (HTTP 401): {hint}")
        if "Connection refused" in detail or "NewConnectionError" in detail:
            raise DeployError(f"scrapyd at {target.url} could not be reached (connection refused): is it running?")
        raise DeployError(f"deploying to {target.url} failed:\n{detail[-2000:]}")
    if answer.get("status") != "ok":
        message = str(answer.get("message", answer)).strip()
        if "Traceback (most recent call last)" in message:
            # addversion.json runs "scrapy list" in the egg; its last line says what failed.
            message = f"scrapy list failed in the egg: {message.splitlines()[-1]}"
        raise DeployError(f"scrapyd at {target.url} refused the egg: {message}")
    return answer


def local_spiders(root: Path) -> list[str]:
    done = subprocess.run(
        [sys.executable, "-m", "scrapy", "list"], cwd=root, capture_output=True, text=True, stdin=subprocess.DEVNULL
    )
    return sorted(done.stdout.split()) if done.returncode == 0 else []


def git_commit(root: Path) -> str:
    done = subprocess.run(
        ["git", "describe", "--always", "--dirty", "--abbrev=12"], cwd=root, capture_output=True, text=True
    )
    return done.stdout.strip() if done.returncode == 0 else "unknown"


def deploy(
    target_name: str = "default",
    url: str | None = None,
    project: str | None = None,
    version: str | None = None,
    build_only: Path | None = None,
    root: Path = PROJECT_ROOT,
    environ: dict[str, str] | None = None,
    out=sys.stdout,
) -> str:
    environ = dict(os.environ if environ is None else environ)
    target = read_target(target_name, url or environ.get("SCRAPYD_URL"), project, root)
    version = version or str(int(time.time()))
    client = ScrapydClient(
        target.url, environ.get("SCRAPYD_USERNAME") or None, environ.get("SCRAPYD_PASSWORD") or None, target.project
    )
    try:
        if build_only is None:
            preflight(client)
        with tempfile.TemporaryDirectory(prefix="ckancrawl-deploy-") as tmp:
            directory = Path(tmp)
            stage(root, directory, target)
            egg = directory / f"{target.project}-{version}.egg"
            build_egg(directory, egg)
            problems = check_egg(egg, environ)
            if problems:
                raise DeployError("the egg was not deployed:\n- " + "\n- ".join(problems))
            if build_only is not None:
                shutil.copyfile(egg, build_only)
                print(f"Egg written to {build_only} (not deployed)", file=out)
                return version
            answer = upload(directory, egg, target, version, environ)
        try:
            deployed = sorted(client.list_spiders(version))
        except ScrapydError as exc:
            raise DeployError(f"deployed, but the spiders of version {version} could not be listed: {exc}") from None
    finally:
        client.close()
    print(
        f"Deployed {target.project} version {version} (git {git_commit(root)}) to {target.url}: "
        f"{answer.get('spiders')} spiders ({', '.join(deployed)})",
        file=out,
    )
    missing = sorted(set(local_spiders(root)) - set(deployed))
    if missing:
        raise DeployError(f"scrapyd does not list these spiders of the working tree: {', '.join(missing)}")
    return version


def preflight(client: ScrapydClient) -> None:
    """scrapyd answers and accepts the login: checked before anything is built."""
    try:
        client.daemon_status()
    except ScrapydUnauthorized:
        hint = "check SCRAPYD_USERNAME/SCRAPYD_PASSWORD" if client.has_credentials else "set SCRAPYD_USERNAME and SCRAPYD_PASSWORD"
        raise DeployError(f"scrapyd at {client.url} refused the login (HTTP 401): {hint}") from None
    except ScrapydUnavailable:
        raise DeployError(f"scrapyd at {client.url} could not be reached (connection refused): is it running?") from None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="scripts/deploy",
        description="Build the ckancrawl egg (scrapyd-deploy), check it, and deploy it to scrapyd.",
        epilog=(
            "Environment: SCRAPYD_URL (else the target's url in scrapy.cfg), SCRAPYD_USERNAME and "
            "SCRAPYD_PASSWORD (HTTP Basic auth of scrapyd). Crawl secrets (MONGODB_URI, CKAN_API_KEY, "
            "GITHUB_TOKEN...) are not deployed: they belong in the environment of the scrapyd process."
        ),
    )
    parser.add_argument("target", nargs="?", default="default", help="scrapy.cfg deploy target (default: [deploy])")
    parser.add_argument("--url", help="scrapyd's URL, replacing the target's")
    parser.add_argument("--project", help="project name on scrapyd (default: the target's, ckancrawl)")
    parser.add_argument("--version", help="version to deploy (default: seconds since the epoch)")
    parser.add_argument("--build-only", type=Path, metavar="EGG", help="build and check the egg, write it here, do not deploy")
    args = parser.parse_args(argv)
    try:
        deploy(args.target, args.url, args.project, args.version, args.build_only)
    except (DeployError, ScrapydError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
