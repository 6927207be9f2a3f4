"""Atomic writes through symlinks: the link stays a link and its target gets the new content.

A config kept in a dotfiles repo (`~/.config/skillchat/config.toml -> dotfiles/skillchat.toml`) must
be updated where it lives, not replaced by a regular file that silently forks it.
"""

from __future__ import annotations

import os

import pytest

from skillchat import atomic, config, paths
from skillchat.cli import main
from skillchat.errors import ConfigError


def test_a_write_through_a_symlink_replaces_the_target_and_keeps_the_link(tmp_path):
    target = tmp_path / "dotfiles" / "skillchat.toml"
    target.parent.mkdir()
    target.write_text("old\n")
    link = tmp_path / "config.toml"
    link.symlink_to(target)
    atomic.write_text(link, "new\n")
    assert link.is_symlink() and os.readlink(link) == str(target)
    assert target.read_text() == "new\n"
    assert sorted(p.name for p in target.parent.iterdir()) == ["skillchat.toml"]  # no temp file left


def test_a_chain_of_relative_links_and_a_link_to_a_file_not_made_yet(tmp_path):
    (tmp_path / "real").mkdir()
    (tmp_path / "b").symlink_to("real/file.txt")  # dangling: the write creates the file it names
    (tmp_path / "a").symlink_to("b")
    atomic.write_text(tmp_path / "a", "made\n")
    assert (tmp_path / "a").is_symlink() and (tmp_path / "b").is_symlink()
    assert (tmp_path / "real" / "file.txt").read_text() == "made\n"


def test_a_symlink_loop_is_an_error_and_nothing_is_written(tmp_path):
    (tmp_path / "a").symlink_to("b")
    (tmp_path / "b").symlink_to("a")
    with pytest.raises(OSError):
        atomic.write_text(tmp_path / "a", "x")
    assert (tmp_path / "a").is_symlink() and (tmp_path / "b").is_symlink()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b"]


def test_handbook_use_updates_a_symlinked_config_in_place(tmp_path, tiny_path):
    target = tmp_path / "dotfiles" / "skillchat.toml"
    target.parent.mkdir()
    target.write_text("# mine\nlambda = 0.3\n")
    link = paths.config_file()
    link.symlink_to(target)
    assert main(["handbook", "use", str(tiny_path)]) == 0
    assert link.is_symlink()
    assert target.read_text() == f'# mine\nlambda = 0.3\nhandbook = "{tiny_path}"\n'
    assert config.load().handbook == str(tiny_path)


def test_a_config_that_is_a_symlink_loop_is_one_clear_error(capsys):
    link = paths.config_file()
    link.symlink_to(link.name + ".loop")
    (link.parent / (link.name + ".loop")).symlink_to(link.name)
    with pytest.raises(ConfigError, match="config.toml: cannot read it .*symbolic links"):
        config.load()
    assert main(["route", "hello"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "config.toml: cannot read it (Too many levels of symbolic links)" in err
    assert main(["handbook", "use", "general"]) == 2
    assert "symbolic links" in capsys.readouterr().err
    assert link.is_symlink()  # still the user's (broken) link, not replaced
