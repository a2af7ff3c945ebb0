"""MEGA's ``.megaignore`` format, rule by rule as MEGA's SDK (syncfilter.cpp) reads it, and
per-folder ``.megafastignore`` files; then a sync honouring them in nested folders."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from megafast.sync import sync
from megafast.sync._ignore import IgnoreRules
from megafast.sync._megaignore import MegaIgnoreError, parse_megaignore
from support.sync import fresh_client, remote_children, running_emulator, write

emu = pytest.fixture(scope="module", name="emu")(running_emulator)
mega = pytest.fixture(name="mega")(fresh_client)


def rules_for(tmp_path: Path, files: dict[str, str], patterns: Any = ()) -> IgnoreRules:
    for rel, text in files.items():
        write(tmp_path / rel, text)
    return IgnoreRules.build(tmp_path, list(patterns))


def test_exclude_and_include_names_last_rule_wins(tmp_path):
    r = rules_for(tmp_path, {".megaignore": "-:*.tmp\n+:keep.tmp\n"})
    assert r.ignored("a.tmp", False) and r.ignored("sub/b.tmp", False)
    assert not r.ignored("keep.tmp", False) and not r.ignored("a.txt", False)


def test_globs_ignore_case_by_default_and_G_minds_it(tmp_path):
    r = rules_for(tmp_path, {".megaignore": "-:*.JPG\n-G:Secret*\n"})
    assert r.ignored("photo.jpg", False) and r.ignored("photo.Jpg", False)
    assert r.ignored("Secret.txt", False) and not r.ignored("secret.txt", False)


def test_glob_star_question_and_literal_brackets(tmp_path):
    r = rules_for(tmp_path, {".megaignore": "-:file?.[ab]\n"})
    assert r.ignored("file1.[ab]", False)
    assert not r.ignored("file1.a", False) and not r.ignored("file12.[ab]", False)


def test_targets_files_folders_all(tmp_path):
    r = rules_for(tmp_path, {".megaignore": "-f:build\n-d:cache\n-a:both\n"})
    assert r.ignored("build", False) and not r.ignored("build", True)
    assert r.ignored("cache", True) and not r.ignored("cache", False)
    assert r.ignored("both", True) and r.ignored("both", False)


def test_symlink_target_only_matches_links(tmp_path):
    r = rules_for(tmp_path, {".megaignore": "-s:*\n"})
    assert r.ignored("link", False, link=True) and not r.ignored("file", False)


def test_path_rules_and_a_slash_makes_a_path_rule(tmp_path):
    r = rules_for(tmp_path, {".megaignore": "-p:docs/draft*\n-:logs/*.log\n"})
    assert r.ignored("docs/draft1.txt", False) and not r.ignored("draft1.txt", False)
    assert not r.ignored("other/docs/draft1.txt", False)  # a path from the rule's folder
    assert r.ignored("logs/a.log", False) and r.ignored("logs/deep/a.log", False)  # * takes /


def test_name_rules_reach_every_depth_but_N_only_its_own_folder(tmp_path):
    r = rules_for(tmp_path, {".megaignore": "-n:node_modules\n-N:top-only\n"})
    assert r.ignored("a/b/node_modules", True)
    assert r.ignored("top-only", False) and not r.ignored("sub/top-only", False)


def test_regular_expressions_ignoring_and_minding_case(tmp_path):
    r = rules_for(tmp_path, {".megaignore": "-r:.*\\.(bak|old)\n-R:Temp[0-9]+\n"})
    assert r.ignored("a.BAK", False) and r.ignored("x.old", False)
    assert r.ignored("Temp12", False) and not r.ignored("temp12", False)
    assert not r.ignored("a.bak2", False)  # the whole name must match


def test_comments_blank_lines_bom_crlf_and_trailing_space(tmp_path):
    text = "\ufeff# a comment\r\n\r\n   \r\n-:*.tmp   \r\n"
    r = rules_for(tmp_path, {".megaignore": text})
    assert r.ignored("x.tmp", False) and not r.ignored("x.tmp   x", False)


def test_size_rules_with_units_and_a_band(tmp_path):
    f = parse_megaignore(b"exclude-larger:10k\nexclude-smaller:  2\n")
    assert f.upper == 10 * 1024 and f.lower == 2
    r = rules_for(tmp_path, {".megaignore": "exclude-larger:1k\n"})
    assert r.ignored("big.bin", False, size=1025) and not r.ignored("ok.bin", False, size=1024)
    assert not r.ignored("folder", True)
    band = parse_megaignore(b"exclude-larger:100\nexclude-smaller:200\n")
    assert band.size_excluded(150) and not band.size_excluded(99) and not band.size_excluded(201)
    assert parse_megaignore(b"exclude-larger:1M\n").upper == 1 << 20
    assert parse_megaignore(b"exclude-larger:3t  \n").upper == 3 << 40


def test_an_include_rule_beats_a_size_rule_only_for_names_it_matches(tmp_path):
    r = rules_for(tmp_path, {".megaignore": "exclude-larger:10\n+:big-but-wanted.bin\n"})
    assert r.ignored("big-but-wanted.bin", False, size=100)  # the SDK checks the size too
    assert r.ignored("other.bin", False, size=100)


@pytest.mark.parametrize(
    "line",
    [
        "*.tmp",  # no + or -
        "-x:foo",  # an unknown letter
        "-f",  # no ':'
        "-:",  # an empty pattern
        "-r:(unclosed",  # a bad regular expression
        "-r:(a+)+$",  # nested quantifiers: exponential time on a name made for it
        "-R:(x|y*){2,}",
        "exclude-larger:10q",  # an unknown unit
        "exclude-larger:-5",  # a sign
        "exclude-larger:10 ",  # a space before the end (the SDK refuses it)
        "exclude-bigger:10",  # an unknown size rule
        "exclude-larger:99999999999999999999",  # too large
    ],
)
def test_lines_the_sdk_refuses_fail_the_whole_file(line):
    with pytest.raises(MegaIgnoreError):
        parse_megaignore(f"-:ok\n{line}\n".encode())


def test_equal_size_bounds_are_refused():
    with pytest.raises(MegaIgnoreError):
        parse_megaignore(b"exclude-larger:10\nexclude-smaller:10\n")


def test_a_refused_file_leaves_its_folder_alone(tmp_path):
    r = rules_for(tmp_path, {"sub/.megaignore": "not a rule\n"})
    assert r.folder_problem("sub") and "cannot be read" in str(r.folder_problem("sub"))
    assert r.folder_problem("") is None


def test_the_nearest_folder_with_a_match_decides(tmp_path):
    r = rules_for(
        tmp_path,
        {".megaignore": "-:*.log\n", "keep/.megaignore": "+:*.log\n", "keep/deep/x": ""},
    )
    assert r.ignored("a.log", False) and r.ignored("other/a.log", False)
    assert not r.ignored("keep/a.log", False) and not r.ignored("keep/deep/a.log", False)


def test_a_child_folder_N_rule_is_not_inherited_but_its_n_rule_is(tmp_path):
    r = rules_for(tmp_path, {"sub/.megaignore": "-N:only-here\n-n:everywhere-below\n"})
    assert r.ignored("sub/only-here", False) and not r.ignored("sub/x/only-here", False)
    assert r.ignored("sub/x/everywhere-below", False)
    assert not r.ignored("everywhere-below", False)


def test_the_megaignore_file_is_synced_only_when_it_says_so(tmp_path):
    r = rules_for(tmp_path, {".megaignore": "-:x\n", "sub/.megaignore": "+sync:.megaignore\n"})
    assert r.ignored(".megaignore", False) and not r.ignored("sub/.megaignore", False)
    assert r.ignored(".megafastignore", False) and r.ignored("sub/.megafastignore", False)


def test_a_remote_megaignore_may_come_down_where_there_is_no_local_one(tmp_path):
    r = rules_for(tmp_path, {"sub/x.txt": "x", "bad/.megaignore": "oops\n"})
    assert not r.ignored(".megaignore", False) and not r.ignored("sub/.megaignore", False)
    assert r.ignored("bad/.megaignore", False)


def test_files_megas_sdk_never_syncs(tmp_path):
    r = rules_for(tmp_path, {})
    for name in ("desktop.ini", ".DS_Store", ".Spotlight-V100", "Icon\r"):
        assert r.ignored(name, False) and r.ignored(f"sub/{name}", False)
    assert not r.ignored("Icon", False)


def test_megafastignore_in_every_folder_is_relative_to_it(tmp_path):
    r = rules_for(
        tmp_path,
        {".megafastignore": "*.tmp\n", "sub/.megafastignore": "/local-only\n!keep.tmp\n"},
        [("exclude", "forced")],
    )
    assert r.ignored("sub/local-only", False) and not r.ignored("local-only", False)
    assert r.ignored("a.tmp", False) and not r.ignored("sub/keep.tmp", False)
    assert r.ignored("sub/forced", False)


def test_a_sync_honours_nested_megaignore_files_on_both_sides(mega, tmp_path):
    src = tmp_path / "src"
    write(src / ".megaignore", "+sync:.megaignore\n-:*.tmp\nexclude-larger:1k\n")
    write(src / "a.txt", "a")
    write(src / "a.tmp", "tmp")
    write(src / "big.bin", b"x" * 2000)
    write(src / "photos" / ".megaignore", "-N:thumbs\n+:*.tmp\n")
    write(src / "photos" / "thumbs" / "t.jpg", "t")
    write(src / "photos" / "keep.tmp", "kept")
    write(src / "photos" / "deeper" / "thumbs" / "t.jpg", "t2")
    write(src / "broken" / ".megaignore", "garbage\n")
    write(src / "broken" / "x.txt", "x")
    report = sync(mega, src, "/backup", direction="both", state_dir=tmp_path / "st")
    assert "broken" in report.skipped
    assert set(remote_children(mega, "backup")) == {".megaignore", "a.txt", "photos"}
    assert set(remote_children(mega, "backup/photos")) == {"keep.tmp", "deeper"}
    # ignored remote files are never deleted, even though the local side "lacks" them
    assert report.count("delete") == 0
