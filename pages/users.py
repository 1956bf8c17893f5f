"""Users (administrators): accounts, roles, locks."""

import pandas as pd
import streamlit as st

from app import cache, state
from app.wording import plain
from core.domain.access import ROLE_LABELS, ROLES
from core.domain.clock import utc_now
from core.errors import ValidationError
from core.services import auth

admin = state.viewer().user
store = cache.store()
st.title("Users")
users = auth.list_users(store, admin)
now = utc_now()
st.dataframe(pd.DataFrame([{
    "Username": u.username, "Full name": u.full_name, "Role": ROLE_LABELS[u.role],
    "Account": "active" if u.active else "disabled",
    "Locked": f"locked until {u.locked_until:%H:%M} UTC" if u.is_locked(now) else "no",
    "Last login (UTC)": f"{u.last_login_at:%d %b %Y %H:%M}" if u.last_login_at else "never",
} for u in users]), hide_index=True, width="stretch")

st.subheader("Add a user")
with st.form("add_user", clear_on_submit=True):
    username = st.text_input("Username", help="lower-case letters, digits, '.', '_' or '-'")
    full_name = st.text_input("Full name", help="as it should appear on electronic signatures")
    role = st.selectbox("Role", ROLES, format_func=lambda r: ROLE_LABELS[r])
    password = st.text_input("Initial password", type="password", help="at least 12 characters")
    if st.form_submit_button("Add user", type="primary"):
        try:
            added = auth.add_user(store, admin, username=username, full_name=full_name, role=role, password=password)
        except ValidationError as exc:
            st.error(f"Not added: {exc}.", icon=":material/error:")
        else:
            st.success(f"Added {plain(added.full_name)} as {ROLE_LABELS[added.role].lower()}.", icon=":material/check:")

st.subheader("Unlock, disable or enable an account")
target = st.selectbox("Account", [u.username for u in users])
c1, c2, c3 = st.columns(3)
if c1.button("Unlock"):
    auth.unlock_user(store, admin, target)
    st.success(f"{target} unlocked.")
if c2.button("Disable"):
    auth.set_user_active(store, admin, target, False)
    st.success(f"{target} disabled; their signatures and history stay.")
if c3.button("Enable"):
    auth.set_user_active(store, admin, target, True)
    st.success(f"{target} enabled.")
