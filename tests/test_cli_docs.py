"""The commands shown in docs/cli.md run as written, in order, in an empty directory."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_cli_reference_commands_run(tmp_path: Path) -> None:
    text = (ROOT / "docs" / "cli.md").read_text()
    block = re.findall(r"```bash\n(.*?)```", text, re.DOTALL)[0]
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    env.pop("MEMORY_PLUGINS_PATH", None)
    outputs = []
    for line in block.strip().splitlines():
        done = subprocess.run(["bash", "-c", line], cwd=tmp_path, env=env, capture_output=True,
                              text=True, timeout=300)
        assert done.returncode == 0, f"{line}\n{done.stderr}"
        assert "Traceback" not in done.stderr
        outputs.append(done.stdout)
    assert "Potola restored from the log" in outputs[0]
    assert "user|dog|Potola" in outputs[2] or "My dog's name is Potola." in outputs[2]
    assert '"turns": 1' in outputs[-1]
