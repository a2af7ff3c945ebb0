"""The usage shown in mega.py 1.0.8's README runs unchanged after ``from megafast import Mega``.

The script below is the README's calls, in an order that can run (folders are created before
they are exported), with the README's placeholders filled in: the account, the Desktop
directory and the public link (made on the emulator). It runs in a fresh interpreter that
only knows the server through ``MEGAFAST_API_URL``, as a mega.py user's script would.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from megafast import Mega
from megafast.testing import MegaEmulator

README_SCRIPT = textwrap.dedent(
    """
    import json, os, sys
    from megafast import Mega

    email, password, desktop, link = sys.argv[1:5]

    mega = Mega()
    m = mega.login(email, password)
    details = m.get_user()
    balance = m.get_balance()
    quota = m.get_quota()
    space = m.get_storage_space(kilo=True)
    files = m.get_files()

    file = m.upload('myfile.doc')
    upload_link = m.get_upload_link(file)

    m.create_folder('new_folder')
    m.create_folder('new_folder/sub_folder/subsub_folder')
    m.create_folder('my_mega_folder/my_sub_folder_to_share')
    m.create_folder('Documents')

    public_exported_web_link = m.export('myfile.doc')
    public_exported_web_link_folder = m.export('my_mega_folder/my_sub_folder_to_share')

    folder = m.find('my_mega_folder')
    folder = m.find('my_mega_folder', exclude_deleted=True)
    m.upload('myfile.doc', folder[0])

    file = m.find('myfile.doc')
    m.download(file)
    m.download_url(link)
    m.download(file, desktop)
    m.download(file, desktop, 'myfile.zip')

    m.import_public_url(link)
    folder_node = m.find('Documents')[1]
    m.import_public_url(link, dest_node=folder_node)

    file = m.find('myfile.doc')
    m.rename(file, 'my_file.doc')

    result = {
        "email": details.get("email"),
        "quota": quota,
        "space": space,
        "upload_link": upload_link,
        "file_link": public_exported_web_link,
        "folder_link": public_exported_web_link_folder,
        "renamed": m.find('my_file.doc') is not None,
        "in_documents": sorted(n['a']['n'] for n in m.get_files_in_node(folder_node['h']).values()),
        "in_my_mega_folder": sorted(n['a']['n'] for n in m.get_files_in_node(folder[0]).values()),
        "cwd": sorted(os.listdir('.')),
        "desktop": sorted(os.listdir(desktop)),
    }

    # login using a temporary anonymous account (the same object, as in mega.py)
    m = mega.login()
    result["anonymous_roots"] = len(m.get_files())
    print(json.dumps(result))
    """
)


def test_megapy_readme_usage_runs_unchanged(tmp_path: Path) -> None:
    import json

    with MegaEmulator() as emu:
        emu.create_account("john-smith@example.com", "mega.py password", version=1)
        owner = "owner@example.com"
        emu.create_account(owner, "pw")
        h, _ = emu.add_file(owner, b"shared by someone else", "shared.zip")
        link = emu.export(h)
        # the README's link style: https://mega.co.nz/#!<handle>!<key>
        ph, key = link.split("/file/")[1].split("#")
        legacy_link = f"https://mega.co.nz/#!{ph}!{key}"

        work = tmp_path / "work"
        work.mkdir()
        (work / "myfile.doc").write_bytes(b"my document " * 1000)
        desktop = tmp_path / "Desktop"
        desktop.mkdir()
        script = tmp_path / "readme_usage.py"
        script.write_text(README_SCRIPT, encoding="utf-8")
        env = dict(os.environ, MEGAFAST_API_URL=emu.api_url)
        src = str(Path(__file__).resolve().parents[1] / "src")
        env["PYTHONPATH"] = os.pathsep.join(p for p in (src, env.get("PYTHONPATH")) if p)
        run = subprocess.run(
            [
                sys.executable,
                str(script),
                "john-smith@example.com",
                "mega.py password",
                str(desktop),
                legacy_link,
            ],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert run.returncode == 0, run.stderr[-3000:]
        out = json.loads(run.stdout.strip().splitlines()[-1])

        assert out["email"] == "john-smith@example.com"
        assert out["quota"] > 0 and out["space"]["total"] > 0
        assert out["upload_link"] == out["file_link"]
        assert "/folder/" in out["folder_link"]
        assert out["renamed"] is True
        assert out["in_documents"] == ["shared.zip"]
        assert out["in_my_mega_folder"] == ["my_sub_folder_to_share", "myfile.doc"]
        assert out["anonymous_roots"] == 3
        assert out["cwd"] == ["myfile.doc", "shared.zip"]
        assert out["desktop"] == ["myfile.doc", "myfile.zip"]
        assert (work / "shared.zip").read_bytes() == b"shared by someone else"
        assert (desktop / "myfile.zip").read_bytes() == (work / "myfile.doc").read_bytes()

        # the exported links work for someone else
        other = Mega(api_url=emu.api_url)
        assert other.get_public_url_info(out["file_link"])["name"] == "my_file.doc"
        assert other.get_public_url_info(out["folder_link"])["name"] == "my_sub_folder_to_share"
