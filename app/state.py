"""Typed access to st.session_state: the only place that knows its keys."""

from __future__ import annotations

import streamlit as st

from core.domain.access import Session

_SESSION = "modelboard_session"
_NOTICE = "modelboard_notice"
_FLASH = "modelboard_flash"


def current_session() -> Session | None:
    value = st.session_state.get(_SESSION)
    return value if isinstance(value, Session) else None


def set_session(session: Session) -> None:
    st.session_state[_SESSION] = session


def end_session(notice: str | None = None) -> None:
    st.session_state.pop(_SESSION, None)
    if notice:
        st.session_state[_NOTICE] = notice


def take_notice() -> str | None:
    """A message for the login page (e.g. why the last session ended), shown once."""
    value = st.session_state.pop(_NOTICE, None)
    return value if isinstance(value, str) else None


def set_flash(messages: list[str]) -> None:
    """Messages for the next run of this page: what an action just did, shown above the refreshed page."""
    st.session_state[_FLASH] = list(messages)


def take_flash() -> list[str]:
    value = st.session_state.pop(_FLASH, None)
    return [m for m in value if isinstance(m, str)] if isinstance(value, list) else []


def viewer() -> Session:
    """The logged-in session; pages run only behind the login gate."""
    session = current_session()
    if session is None:
        st.stop()
        raise AssertionError("unreachable")
    return session
