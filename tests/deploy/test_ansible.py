"""The Ansible playbook (deploy/ansible), checked without any remote host.

`ansible-playbook --syntax-check` and `ansible-lint` (production profile, offline: no collection,
role or schema downloads) run on a copy, so nothing they cache lands in the repository. Then Ansible
itself, on this machine with a local connection, runs the role's checks (a short token and a SQLite
store on a server host that is not the head are refused with their message) and renders every
template with the role's defaults and the example inventory; the rendered systemd units and the
podium-cluster script are then checked against the real CLIs of Ray and podium.
"""

from __future__ import annotations

import configparser
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml
from deploy_files import ANSIBLE, podium_accepts, ray_start_params

BIN = Path(sys.executable).parent
TOKEN = "0123456789abcdef" * 4
CHECK = """---
- name: Run the role's checks here
  hosts: all
  connection: local
  gather_facts: true
  gather_subset: ["!all", "min"]
  tasks:
    - name: Run the role's checks
      ansible.builtin.include_role:
        name: podium
        tasks_from: check
"""
RENDER = """
    - name: Render every template
      ansible.builtin.include_role:
        name: podium
        tasks_from: render_here
"""
RENDER_TASKS = """---
- name: Make the host's folder
  ansible.builtin.file:
    path: "{{ out }}/{{ inventory_hostname }}"
    state: directory
    mode: "0700"
- name: Render one template
  ansible.builtin.template:
    src: "{{ item | basename }}"
    dest: "{{ out }}/{{ inventory_hostname }}/{{ item | basename | regex_replace('\\\\.j2$', '') }}"
    mode: "0600"
  loop: "{{ query('ansible.builtin.fileglob', role_path + '/templates/*.j2') }}"
"""


def tool(name: str) -> str:
    path = BIN / name
    if not path.exists():
        pytest.skip(f"{name} is not installed (pip install 'podium[deploy]')")
    return str(path)


@pytest.fixture
def playbook(tmp_path: Path) -> Path:
    """A copy of deploy/ansible: the tools write caches into the project they check."""
    copy = tmp_path / "ansible"
    shutil.copytree(ANSIBLE, copy)
    return copy


Done = subprocess.CompletedProcess[str]


def run(argv: list[str], cwd: Path, timeout: float = 240) -> Done:
    home = cwd.parent / "home"
    home.mkdir(exist_ok=True)
    env = {
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "HOME": str(home),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "ANSIBLE_HOME": str(home / ".ansible"),
        "ANSIBLE_LOCAL_TEMP": str(home / ".ansible-tmp"),
        "ANSIBLE_NOCOLOR": "1",
        "NO_COLOR": "1",
        "ANSIBLE_LINT_SKIP_SCHEMA_UPDATE": "1",
        # any attempt to download (collections, schemas, version checks) fails at once
        "HTTP_PROXY": "http://127.0.0.1:9",
        "HTTPS_PROXY": "http://127.0.0.1:9",
        "LANG": "C.UTF-8",
    }
    return subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def test_syntax_check_passes(playbook: Path) -> None:
    done = run(
        [tool("ansible-playbook"), "-i", "inventory.example.yml", "--syntax-check", "site.yml"], playbook
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_syntax_check_catches_an_unknown_module(playbook: Path) -> None:
    broken = playbook / "broken.yml"
    broken.write_text(
        "---\n- name: Broken\n  hosts: all\n  tasks:\n    - name: X\n      ansible.builtin.aptt: {}\n"
    )
    done = run(
        [tool("ansible-playbook"), "-i", "inventory.example.yml", "--syntax-check", "broken.yml"], playbook
    )
    assert done.returncode != 0 and "aptt" in done.stdout + done.stderr


def lint(playbook: Path) -> Done:
    return run([tool("ansible-lint"), "--offline", "--profile", "production"], playbook)


def test_ansible_lint_passes_the_production_profile_offline(playbook: Path) -> None:
    done = lint(playbook)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Profile 'production' was required, and it passed" in done.stdout + done.stderr


def test_ansible_lint_catches_a_sloppy_task(playbook: Path) -> None:
    tasks = playbook / "roles/podium/tasks/server.yml"
    tasks.write_text(tasks.read_text() + "\n- name: restart it\n  command: systemctl restart podium-server\n")
    done = lint(playbook)
    out = done.stdout + done.stderr
    assert done.returncode != 0
    assert "fqcn" in out and "no-changed-when" in out and "name[casing]" in out, out


def test_inventory_example_has_the_groups_the_playbook_uses(playbook: Path) -> None:
    done = run([tool("ansible-inventory"), "-i", "inventory.example.yml", "--list"], playbook)
    assert done.returncode == 0, done.stderr
    groups = {g: set(v.get("hosts", [])) for g, v in json.loads(done.stdout).items() if isinstance(v, dict)}
    assert len(groups["head"]) == 1 and groups["workers"]
    assert groups["server"] <= groups["head"]  # the default store is SQLite on the head
    plays = yaml.safe_load((playbook / "site.yml").read_text())
    assert {p["hosts"] for p in plays} == {"head:workers:server", "head", "workers", "server"}


def local_play(
    playbook: Path, *extra: str, inventory: str = "inventory.example.yml", render: bool = False
) -> Done:
    """Run the role's checks for every inventory host, here; then, with ``render``, render its
    templates into out/HOST/."""
    (playbook / "local.yml").write_text(CHECK + (RENDER if render else ""))
    (playbook / "roles/podium/tasks/render_here.yml").write_text(RENDER_TASKS)
    (playbook / "out").mkdir(exist_ok=True)
    local = ["-e", f"out={playbook / 'out'}", "-e", f"ansible_python_interpreter={sys.executable}"]
    return run([tool("ansible-playbook"), "-i", inventory, "local.yml", *local, *extra], playbook)


@pytest.fixture(scope="module")
def rendered(tmp_path_factory: pytest.TempPathFactory) -> Path:
    copy = tmp_path_factory.mktemp("rendered") / "ansible"
    shutil.copytree(ANSIBLE, copy)
    # the head and one worker hold every kind of unit
    done = local_play(
        copy, "-e", f"podium_ray_auth_token={TOKEN}", "-l", "podium-head,podium-worker-1", render=True
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return copy / "out"


def unit(path: Path) -> tuple[dict[str, str], list[str]]:
    parser = configparser.ConfigParser(strict=False, interpolation=None)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read(path)
    service = dict(parser["Service"])
    return service, shlex.split(service["ExecStart"])


def test_ray_units_run_ray_start_as_podium_with_options_ray_accepts(rendered: Path) -> None:
    defaults = yaml.safe_load((ANSIBLE / "roles/podium/defaults/main.yml").read_text())
    found = []
    for host_dir in sorted(rendered.iterdir()):
        for name in ("podium-ray-head.service", "podium-ray-worker.service"):
            service, argv = unit(host_dir / name)
            assert service["User"] == defaults["podium_user"] != "root"
            assert service["EnvironmentFile"] == f"{defaults['podium_config_dir']}/podium.env"
            assert argv[:2] == [f"{defaults['podium_venv']}/bin/ray", "start"]
            found.append((host_dir.name, name, argv[2:]))
    assert len(found) == 4
    for (host, name, _), parsed in zip(found, ray_start_params(*(a for _, _, a in found)), strict=True):
        params = parsed["params"]
        assert params["block"] and params["node_ip_address"].startswith("10.0.0.")
        assert parsed["labels"] == {"podium-node": host}
        if name == "podium-ray-worker.service":
            assert params["address"] == f"10.0.0.10:{defaults['podium_ray_port']}"
        else:
            assert params["head"] and params["num_cpus"] == 0


def test_server_unit_runs_podium_server_as_podium(rendered: Path) -> None:
    service, argv = unit(rendered / "podium-head" / "podium-server.service")
    assert service["User"] == "podium" and service["WorkingDirectory"] == "/etc/podium"
    assert argv[:2] == ["/opt/podium/bin/podium", "server"]
    assert argv[2:] == ["--host", "127.0.0.1", "--port", "8765"]
    podium_accepts(argv[1:])


def test_environment_file_and_podium_toml_render_to_what_podium_reads(rendered: Path, tmp_path: Path) -> None:
    from podium.load.config import load_config

    values = dict(
        line.split("=", 1)
        for line in (rendered / "podium-head" / "podium.env").read_text().splitlines()
        if line and not line.startswith("#")
    )
    assert values == {
        "RAY_AUTH_MODE": "token",
        "RAY_AUTH_TOKEN": TOKEN,
        "RAY_USAGE_STATS_ENABLED": "0",
        "PODIUM_STORE": "sqlite:////var/lib/podium/podium.db",
    }
    shutil.copy(rendered / "podium-head" / "podium.toml", tmp_path / "podium.toml")
    assert load_config(tmp_path).allow_modules == ()


def test_podium_cluster_script_is_valid_sh_and_refuses_other_programs(rendered: Path) -> None:
    script = rendered / "podium-worker-1" / "podium-cluster"
    assert subprocess.run(["sh", "-n", str(script)], capture_output=True).returncode == 0
    refused = subprocess.run(["sh", str(script), "bash", "-c", "id"], capture_output=True, text=True)
    assert refused.returncode == 2 and "usage: podium-cluster podium|ray|python" in refused.stderr
    assert "RAY_ADDRESS=10.0.0.10:6379" in script.read_text()


def test_the_role_refuses_a_short_token_with_its_message(playbook: Path) -> None:
    done = local_play(playbook, "-e", "podium_ray_auth_token=short")
    assert done.returncode != 0
    assert "podium_ray_auth_token: set it (at least 32 characters" in done.stdout


def test_the_role_refuses_sqlite_on_a_server_that_is_not_the_head(playbook: Path) -> None:
    inventory: dict[str, Any] = yaml.safe_load((playbook / "inventory.example.yml").read_text())
    inventory["all"]["children"]["server"]["hosts"] = {"podium-worker-1": None}
    (playbook / "elsewhere.yml").write_text(yaml.safe_dump(inventory))
    done = local_play(playbook, "-e", f"podium_ray_auth_token={TOKEN}", inventory="elsewhere.yml")
    assert done.returncode != 0 and "podium_store_url is SQLite" in done.stdout
    fine = local_play(
        playbook,
        "-e",
        f"podium_ray_auth_token={TOKEN}",
        "-e",
        "podium_store_url=postgresql://podium@db.internal/podium",
        inventory="elsewhere.yml",
    )
    assert fine.returncode == 0, fine.stdout


def test_secret_settings_are_only_written_by_tasks_that_log_nothing() -> None:
    tasks_dir = ANSIBLE / "roles/podium/tasks"
    templates = ANSIBLE / "roles/podium/templates"
    secret_templates = {
        p.name
        for p in templates.glob("*.j2")
        if "podium_ray_auth_token" in p.read_text() or "podium_store_url" in p.read_text()
    }
    assert secret_templates == {"podium.env.j2"}
    for path in tasks_dir.glob("*.yml"):
        for task in yaml.safe_load(path.read_text()) or []:
            src = (task.get("ansible.builtin.template") or {}).get("src")
            if src in secret_templates:
                assert task.get("no_log") is True, f"{path.name}: {task['name']}"
    assert (
        yaml.safe_load((ANSIBLE / "roles/podium/defaults/main.yml").read_text())["podium_ray_auth_token"]
        == ""
    )


def test_rendered_units_pass_systemd_analyze_verify(rendered: Path, tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.skip("systemd-analyze is not installed: the units were checked by parsing only")
    units = []
    for path in sorted(rendered.glob("*/*.service")):
        # the virtualenv does not exist here; its command lines are checked by the tests above
        text = re.sub(r"^ExecStart=\S+", "ExecStart=/bin/true", path.read_text(), flags=re.M)
        units.append(tmp_path / f"{path.parent.name}-{path.name}")
        units[-1].write_text(text)
    assert len(units) == 6  # three units on each of two hosts
    done = subprocess.run([analyze, "verify", *map(str, units)], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and not re.search(r"Unknown|Failed|[Ii]nvalid", done.stderr), done.stderr
    bad = tmp_path / "bad.service"
    bad.write_text(units[0].read_text().replace("KillMode=mixed", "KillMode=mixed\nRestartSecs=5"))
    caught = subprocess.run([analyze, "verify", str(bad)], capture_output=True, text=True, timeout=60)
    assert "Unknown key 'RestartSecs'" in caught.stderr
