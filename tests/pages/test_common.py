"""pages.common: the one workaround for Streamlit's legacy pages/ mode, guarded against a Streamlit that changes it."""

from __future__ import annotations

from pages.common import leave_legacy_pages_mode


def test_the_legacy_pages_mode_is_the_private_flag_it_was_and_leaving_it_holds_for_new_sessions(tmp_path):
    from streamlit.runtime.pages_manager import PagesManager

    (tmp_path / "pages").mkdir()
    (tmp_path / "app.py").write_text("")
    script = str(tmp_path / "app.py")
    wrapped = PagesManager.__init__
    PagesManager.__init__ = getattr(wrapped, "streamlits_own", wrapped)  # Streamlit's behaviour, unwrapped.
    try:
        PagesManager.uses_pages_directory = None  # As at a server's start (and before every AppTest run).
        PagesManager(script, setup_watcher=False)
        # Streamlit still turns its legacy mode on for a pages/ folder beside the main script, through this flag:
        # if this fails, Streamlit changed how it decides and leave_legacy_pages_mode must be looked at again.
        assert PagesManager.uses_pages_directory is True
        assert leave_legacy_pages_mode() is True and PagesManager.uses_pages_directory is False
        assert leave_legacy_pages_mode() is False
        PagesManager.uses_pages_directory = None
        PagesManager(script, setup_watcher=False)  # A new session (AppTest's next run) starts with it off.
        assert PagesManager.uses_pages_directory is False
    finally:
        PagesManager.__init__ = wrapped
        leave_legacy_pages_mode()
